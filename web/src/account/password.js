// Change one's password (the current one is asked again); the other sessions end.
import { h } from '../dom.js'
import { call } from './client.js'
import { form } from './form.js'

/** The password change form, for the overview page. */
export function passwordSection () {
  const change = form({
    label: 'Change your password',
    submit: 'Change password',
    fields: [
      { name: 'current', label: 'Current password', type: 'password', autocomplete: 'current-password', required: true },
      { name: 'new', label: 'New password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10, hint: 'At least 10 characters, and not your email address.' }
    ],
    onSubmit: async ({ current, new: chosen }) => {
      await call('/me/password', { method: 'PUT', body: { current, new: chosen } })
      change.inputs.current.value = change.inputs.new.value = ''
      return 'Password changed; your other sessions have ended.'
    }
  })
  return h('section', { class: 'card' }, h('h2', {}, 'Password'), change.el)
}
