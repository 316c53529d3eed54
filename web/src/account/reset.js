// Password reset: ask for a link by address, then (from the mailed link) set a new password.
import { h } from '../dom.js'
import { api } from '../api.js'
import { form, notice } from './form.js'

/** The reset page's content: the request form, or with ?token= the new-password form. */
export function resetPage ({ token }) {
  const box = h('div', { class: 'reset' })
  if (!token) {
    const ask = form({
      label: 'Reset your password',
      submit: 'Mail me a link',
      fields: [{ name: 'email', label: 'Email', type: 'email', autocomplete: 'email', required: true }],
      onSubmit: async ({ email }) => (await api('/auth/reset', { method: 'POST', body: { email: email.trim() } })).status
    })
    box.append(notice('We will mail you a link to choose a new password.'), ask.el)
    return box
  }
  const choose = form({
    label: 'Choose a new password',
    submit: 'Set password',
    fields: [
      { name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10, hint: 'At least 10 characters, and not your email address.' },
      { name: 'again', label: 'New password again', type: 'password', autocomplete: 'new-password', required: true }
    ],
    onSubmit: async ({ password, again }) => {
      if (password !== again) throw new Error('the two passwords differ: type the same one twice')
      const person = await api('/auth/reset/confirm', { method: 'POST', body: { token, password } })
      box.replaceChildren(notice(`Your password is changed and every session of ${person.email} has ended.`),
        h('p', {}, h('a', { class: 'button primary', href: '/account/sign-in' }, 'Sign in')))
      return ''
    }
  })
  box.append(choose.el)
  return box
}
