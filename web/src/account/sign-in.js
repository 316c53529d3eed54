// Sign in: address and password, then a code when two-step sign-in is on; or a provider,
// which comes back to ?next= (or, with two-step sign-in on, to #second_factor=TOKEN here).
import { h } from '../dom.js'
import { api } from '../api.js'
import { useCsrf } from './client.js'
import { form, notice } from './form.js'
import { destination, forget, peek, withNext } from './next.js'

const PROVIDER_NAMES = { google: 'Google', microsoft: 'Microsoft', github: 'GitHub', apple: 'Apple' }

/** "Sign in with Google" for provider `google`; other names capitalised. */
export function providerLabel (name) {
  return `Sign in with ${PROVIDER_NAMES[name] || name.charAt(0).toUpperCase() + name.slice(1)}`
}

/** `/auth/oidc/NAME/start`, with the page to come back to when there is one. */
export function providerStart (name, next = '') {
  const start = `/auth/oidc/${encodeURIComponent(name)}/start`
  return next ? `${start}?next=${encodeURIComponent(next)}` : start
}

/** The sign-in page's content. */
export function signInPage ({ features }) {
  const box = h('div', { class: 'sign-in' })
  const finish = (answer) => {
    useCsrf(answer.csrf_token)
    window.location.assign(destination())
  }
  // Back from a provider with two-step sign-in on: the code is all that is left to give.
  const fragment = new URLSearchParams(window.location.hash.slice(1))
  if (fragment.get('second_factor')) {
    window.history.replaceState(null, '', window.location.pathname + window.location.search) // the token leaves the address bar
    box.append(secondFactor(fragment.get('second_factor'), finish))
    return box
  }
  const password = form({
    label: 'Sign in',
    submit: 'Sign in',
    fields: [
      { name: 'email', label: 'Email', type: 'email', autocomplete: 'username', required: true },
      { name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', required: true }
    ],
    onSubmit: async ({ email, password: secret }) => {
      let answer
      try {
        answer = await api('/auth/sign-in', { method: 'POST', body: { email: email.trim(), password: secret } })
      } catch (err) {
        if (err.status === 403 && /verify/.test(err.message)) resend.hidden = false
        throw err
      }
      if (answer.second_factor) {
        box.replaceChildren(secondFactor(answer.second_factor, finish))
        box.querySelector('input').focus()
        return ''
      }
      finish(answer)
      return 'Signed in'
    }
  })
  const resend = h('button', { type: 'button', class: 'link-button', hidden: true, onclick: async () => {
    await api('/auth/verify/resend', { method: 'POST', body: { email: password.inputs.email.value.trim() } })
      .then((r) => password.showStatus(`Sent: ${r.status}`), (err) => password.showError(err.message))
  } }, 'Mail me the verification link again')
  const providers = (features.sign_in_providers || []).map((name) =>
    h('a', { class: 'provider button', href: providerStart(name, peek()), dataset: { provider: name }, onclick: forget }, providerLabel(name)))
  box.append(
    providers.length ? h('div', { class: 'providers' }, providers, h('p', { class: 'or' }, 'or with your email')) : '',
    password.el, resend,
    h('p', {}, h('a', { href: '/account/reset' }, 'Forgotten your password?')),
    h('p', {}, 'No account yet? ', h('a', { href: withNext('/account/sign-up') }, 'Sign up')))
  return box
}

function secondFactor (token, finish) {
  const code = form({
    label: 'Second factor',
    submit: 'Continue',
    fields: [{ name: 'code', label: 'Code from your authenticator app', autocomplete: 'one-time-code', inputmode: 'numeric', required: true, hint: 'Or one of your recovery codes.' }],
    onSubmit: async ({ code: value }) => {
      finish(await api('/auth/sign-in/second-factor', { method: 'POST', body: { token, code: value.replace(/\s+/g, '') } }))
      return 'Signed in'
    }
  })
  return h('div', { class: 'second-factor' }, notice('Two-step sign-in is on for this account: enter the 6-digit code your app shows.'), code.el)
}
