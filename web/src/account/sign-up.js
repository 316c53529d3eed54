// Sign up: name, address and password; the verification link comes by mail.
import { h } from '../dom.js'
import { api } from '../api.js'
import { form, notice } from './form.js'
import { withNext } from './next.js'

/** The sign-up page's content. */
export function signUpPage () {
  const box = h('div', { class: 'sign-up' })
  const made = form({
    label: 'Sign up',
    submit: 'Create account',
    fields: [
      { name: 'name', label: 'Your name', autocomplete: 'name' },
      { name: 'email', label: 'Email', type: 'email', autocomplete: 'email', required: true },
      { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10, hint: 'At least 10 characters, and not your email address.' }
    ],
    onSubmit: async ({ name, email, password }) => {
      await api('/auth/sign-up', { method: 'POST', body: { name: name.trim(), email: email.trim(), password } })
      box.replaceChildren(notice(`Check your mail: we sent a link to ${email.trim()}. Follow it to verify your address, then sign in.`),
        h('p', {}, h('a', { href: withNext('/account/sign-in') }, 'Sign in')))
      return ''
    }
  })
  box.append(made.el, h('p', {}, 'Have an account? ', h('a', { href: withNext('/account/sign-in') }, 'Sign in')))
  return box
}
