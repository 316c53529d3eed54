// The mailed verification link (/account/verify?token=...): verifies on arrival.
import { h } from '../dom.js'
import { api } from '../api.js'
import { form, notice } from './form.js'

/** The verify page's content: the outcome of the link, or a form to mail a new one. */
export function verifyPage ({ token }) {
  const box = h('div', { class: 'verify' }, notice('Verifying your address…'))
  const again = form({
    label: 'Mail a new link',
    submit: 'Mail a new link',
    fields: [{ name: 'email', label: 'Email', type: 'email', autocomplete: 'email', required: true }],
    onSubmit: async ({ email }) => (await api('/auth/verify/resend', { method: 'POST', body: { email: email.trim() } })).status
  })
  if (!token) {
    box.replaceChildren(notice('This page verifies an address from the link we mailed. Lost the mail? Ask for a new one:'), again.el)
    return box
  }
  api('/auth/verify', { method: 'POST', body: { token } }).then((person) => {
    box.replaceChildren(notice(`Thank you: ${person.email} is verified.`),
      h('p', {}, h('a', { class: 'button primary', href: '/account/sign-in' }, 'Sign in')))
  }, (err) => {
    box.replaceChildren(notice(err.message, 'alert'), again.el)
  })
  return box
}
