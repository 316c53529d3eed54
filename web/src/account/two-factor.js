// Two-step sign-in: turn on (scan the QR code, or open the otpauth link or type the secret;
// then a first code), recovery codes shown once; turn off with the password.
import { h } from '../dom.js'
import { call } from './client.js'
import { form, notice } from './form.js'
import { qrCode } from './qr.js'

/** The secret in groups of four, as authenticator apps show it. */
export function grouped (secret) {
  return secret.replace(/(.{4})(?=.)/g, '$1 ')
}

/** The two-factor page's content. */
export function twoFactorPage ({ me }) {
  const box = h('div', { class: 'two-factor' })
  if (me.person.two_factor) box.append(turnOff(box))
  else box.append(turnOn(box))
  return box
}

function turnOn (box) {
  const said = h('div', { 'aria-live': 'polite' })
  const start = h('button', { type: 'button', class: 'primary start', onclick: async () => {
    start.disabled = true
    try {
      box.replaceChildren(setUp(await call('/me/two-factor', { method: 'POST', body: {} }), box))
    } catch (err) {
      start.disabled = false
      said.replaceChildren(notice(err.message, 'alert'))
    }
  } }, 'Turn on two-step sign-in')
  return h('div', {}, notice('Two-step sign-in is off. With it on, signing in also asks for a code from an authenticator app on your phone.'),
    h('p', {}, start), said)
}

function setUp ({ secret, uri }, box) {
  const confirm = form({
    label: 'Confirm two-step sign-in',
    submit: 'Turn on',
    fields: [{ name: 'code', label: 'Code the app shows', autocomplete: 'one-time-code', inputmode: 'numeric', required: true }],
    onSubmit: async ({ code }) => {
      const { recovery_codes: codes } = await call('/me/two-factor/enable', { method: 'POST', body: { code: code.replace(/\s+/g, '') } })
      box.replaceChildren(recovery(codes))
      return ''
    }
  })
  return h('div', { class: 'setup' },
    h('ol', {},
      h('li', {}, 'In your authenticator app, add an account: scan this code with the phone,',
        h('figure', { class: 'qr-code' }, qrCode(uri, { label: 'QR code for your authenticator app' })),
        'or open ', h('a', { class: 'otpauth', href: uri }, 'this otpauth link'),
        ' on the phone, or type the secret ', h('code', { class: 'secret', dataset: { secret } }, grouped(secret)), '.'),
      h('li', {}, 'Enter the 6-digit code the app then shows.')),
    h('details', {}, h('summary', {}, 'The full otpauth URI'), h('code', { class: 'uri' }, uri)),
    confirm.el)
}

function recovery (codes) {
  return h('div', { class: 'recovery', role: 'status' },
    h('p', {}, h('strong', {}, 'Two-step sign-in is on. Save these recovery codes now: they are shown only this once.'),
      ' Each signs you in once if you lose the phone.'),
    h('ul', { class: 'recovery-codes' }, codes.map((c) => h('li', {}, h('code', {}, c)))),
    h('p', {}, h('a', { class: 'button primary', href: '/account/two-factor' }, 'I have saved them')))
}

function turnOff (box) {
  const off = form({
    label: 'Turn off two-step sign-in',
    submit: 'Turn off',
    fields: [{ name: 'password', label: 'Your password', type: 'password', autocomplete: 'current-password', required: true }],
    onSubmit: async ({ password }) => {
      await call('/me/two-factor/disable', { method: 'POST', body: { password } })
      box.replaceChildren(notice('Two-step sign-in is off.'), turnOn(box))
      return ''
    }
  })
  return h('div', {}, notice('Two-step sign-in is on: signing in asks for a code from your app.'), off.el)
}
