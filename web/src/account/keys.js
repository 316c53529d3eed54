// API keys: make one with scopes and an expiry (its secret shown once), list, revoke.
import { h } from '../dom.js'
import { call } from './client.js'
import { field, notice, when } from './form.js'

const EXPIRIES = [['30', '30 days'], ['90', '90 days'], ['365', 'a year'], ['', 'never']]
const path = (id, rest = '') => `/accounts/${encodeURIComponent(id)}/keys${rest}`

/** The keys page's content, for the person or an organisation they administer. */
export function keysPage ({ me }) {
  const owners = [[me.person.id, `${me.person.name || me.person.email} (you)`],
    ...me.organisations.filter((o) => o.role === 'owner' || o.role === 'admin').map((o) => [o.id, o.name])]
  const owner = field({ name: 'owner', label: 'Keys of', type: 'select', options: owners })
  const name = field({ name: 'name', label: 'Key name', required: true, hint: 'What uses it, e.g. "mix export script".' })
  const expiry = field({ name: 'expiry', label: 'Expires after', type: 'select', options: EXPIRIES })
  const test = h('input', { type: 'checkbox', id: 'key-test' })
  const scopes = h('fieldset', { class: 'scopes' }, h('legend', {}, 'Scopes (what the key may do)'))
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true })
  const made = h('div', { class: 'made', 'aria-live': 'polite' })
  const rows = h('tbody')
  const fail = (err) => { error.textContent = err.message; error.hidden = false }
  const load = async () => {
    const id = owner.input.value
    const [allowed, keys] = await Promise.all([call(path(id, '/scopes')), call(path(id))])
    const ticked = new Set([...scopes.querySelectorAll('input:checked')].map((i) => i.value))
    scopes.replaceChildren(scopes.firstChild, ...allowed.map((s) => h('label', { class: 'scope' },
      h('input', { type: 'checkbox', value: s.name, checked: ticked.has(s.name) }), ` ${s.name} `, h('span', { class: 'field-hint' }, s.description))))
    rows.replaceChildren(...keys.map((k) => row(k, async () => {
      try {
        await call(path(id, `/${encodeURIComponent(k.id)}`), { method: 'DELETE' })
        await load()
      } catch (err) { fail(err) }
    })))
  }
  owner.input.addEventListener('change', () => { made.replaceChildren(); load().catch(fail) })
  const create = h('form', { 'aria-label': 'New API key', novalidate: true, onsubmit: async (event) => {
    event.preventDefault()
    error.hidden = true
    const chosen = [...scopes.querySelectorAll('input:checked')].map((i) => i.value)
    if (!name.input.value.trim()) return fail(new Error('Key name is required'))
    if (!chosen.length) return fail(new Error('Tick at least one scope: a key holds only the scopes it is given'))
    try {
      const key = await call(path(owner.input.value), { method: 'POST', body: {
        name: name.input.value.trim(), scopes: chosen, test: test.checked,
        expires_in_days: expiry.input.value ? Number(expiry.input.value) : null
      } })
      name.input.value = ''
      made.replaceChildren(shownOnce(key))
      await load()
    } catch (err) { fail(err) }
  } }, owner.el, name.el, scopes, expiry.el,
  h('div', { class: 'field' }, h('label', { for: 'key-test' }, test, ' Test key (mbk_test_…)')), error,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create key')))
  load().catch(fail)
  return h('div', { class: 'keys' }, h('section', { class: 'card' }, h('h2', {}, 'New key'), create, made),
    h('table', {}, h('caption', {}, 'Keys'),
      h('thead', {}, h('tr', {}, ['Name', 'Key', 'Scopes', 'Created', 'Expires', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))),
      rows))
}

function shownOnce (key) {
  const secret = h('input', { type: 'text', readonly: true, class: 'secret', value: key.key, 'aria-label': `Secret of ${key.name}` })
  return h('div', { class: 'shown-once', role: 'status' },
    h('p', {}, h('strong', {}, `Copy the key ${key.name} now: it is shown only this once.`)),
    secret, ' ',
    h('button', { type: 'button', onclick: async () => {
      secret.select()
      await navigator.clipboard?.writeText(key.key).catch(() => {})
    } }, 'Copy'))
}

function row (k, revoke) {
  const state = k.revoked_at ? `revoked ${when(k.revoked_at)}` : ''
  return h('tr', { dataset: { key: k.id, revoked: String(Boolean(k.revoked_at)) } },
    h('td', {}, k.name, k.test ? ' (test)' : ''), h('td', {}, h('code', {}, `${k.prefix}…`)),
    h('td', {}, k.scopes.join(', ')), h('td', {}, when(k.created_at)), h('td', {}, k.expires_at ? when(k.expires_at) : 'never'),
    h('td', {}, k.last_used_at ? when(k.last_used_at) : 'never'),
    h('td', {}, state || h('button', { type: 'button', class: 'revoke', 'aria-label': `Revoke ${k.name}`, onclick: revoke }, 'Revoke')))
}
