// The security log: one's own (sign-ins, password and second-factor changes, keys...) and,
// for an organisation one administers, the organisation's. Newest first, older on demand.
import { h } from '../dom.js'
import { call } from './client.js'
import { notice, when } from './form.js'

/** Events a page asks for at once (the route gives at most 200). */
export const PAGE_SIZE = 50
const ADMINS = new Set(['owner', 'admin'])

/** What each logged action means, in words (unknown ones, from plug-ins, show as named). */
export const ACTIONS = {
  sign_in: 'Signed in',
  'sign_in.failed': 'Failed sign-in',
  sign_out: 'Signed out',
  'password.changed': 'Password changed',
  'password.reset': 'Password reset by mail',
  'two_factor.enabled': 'Two-step sign-in turned on',
  'two_factor.disabled': 'Two-step sign-in turned off',
  'key.created': 'API key created',
  'key.revoked': 'API key revoked',
  'role.changed': 'Role changed',
  'member.removed': 'Member removed',
  'invitation.sent': 'Invitation sent',
  'invitation.accepted': 'Invitation accepted',
  'email.verified': 'Email verified',
  'identity.linked': 'Provider sign-in linked',
  'account.disabled': 'Account disabled',
  'plan.changed': 'Plan changed',
  'sso.configured': 'Single sign-on set up',
  'sso.removed': 'Single sign-on removed',
  'sso.joined': 'Joined through single sign-on',
  'sso.domain_added': 'Single sign-on domain added',
  'sso.domain_verified': 'Single sign-on domain proven',
  'sso.domain_removed': 'Single sign-on domain removed',
  'sso.domain_lapsed': 'Single sign-on domain proof lapsed',
  'project.deleted': 'Project deleted',
  'project.role_granted': 'Project role given',
  'project.role_revoked': 'Project role taken away',
  export: 'Data export asked for',
  deletion: 'Account deleted'
}

/** The security-log page's content: whose log (oneself, or an organisation one runs). */
export function securityPage ({ me }) {
  const names = new Map([[me.person.id, `${me.person.name || me.person.email} (you)`],
    ...me.organisations.map((o) => [o.id, o.name])])
  const logs = [[me.person.id, `Yours (${me.person.email || me.person.name})`],
    ...me.organisations.filter((o) => ADMINS.has(o.role)).map((o) => [o.id, o.name])]
  const whose = h('select', { id: 'audit-of', onchange: () => show(whose.value) },
    logs.map(([id, text]) => h('option', { value: id }, text)))
  const box = h('div', { class: 'audit-log' })
  const show = (accountId) => box.replaceChildren(auditTable(accountId, names))
  show(me.person.id)
  return h('div', { class: 'security' },
    h('p', {}, 'Who signed in, from where, and what changed. Organisations you administer have a log of their own.'),
    logs.length > 1 ? h('div', { class: 'field' }, h('label', { for: 'audit-of' }, 'Log of'), whose) : '',
    box)
}

function auditTable (accountId, names) {
  const rows = h('tbody')
  const said = h('div', { 'aria-live': 'polite' })
  let oldest = null
  const more = h('button', { type: 'button', class: 'older', hidden: true, onclick: () => load() }, 'Older events')
  const load = async () => {
    more.disabled = true
    try {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) })
      if (oldest !== null) query.set('before', String(oldest))
      const events = await call(`/accounts/${encodeURIComponent(accountId)}/audit?${query}`)
      rows.append(...events.map((e) => row(e, names)))
      if (events.length) oldest = events[events.length - 1].at
      more.hidden = events.length < PAGE_SIZE
      if (!rows.children.length) said.replaceChildren(notice('Nothing logged yet.'))
    } catch (err) {
      said.replaceChildren(notice(err.message, 'alert'))
    } finally {
      more.disabled = false
    }
  }
  load()
  return h('div', { class: 'audit', dataset: { account: accountId } },
    h('table', {}, h('caption', {}, 'Security log, newest first'),
      h('thead', {}, h('tr', {}, ['When', 'Event', 'By', 'Concerning', 'From', 'Details'].map((t) => h('th', { scope: 'col' }, t)))),
      rows),
    said, h('p', {}, more))
}

function row (e, names) {
  const who = (id) => (id ? names.get(id) || id : '—')
  const detail = Object.entries(e.detail || {}).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ')
  return h('tr', { dataset: { event: e.id, action: e.action } },
    h('td', {}, when(e.at)), h('td', { title: e.action }, ACTIONS[e.action] || e.action),
    h('td', {}, who(e.actor)), h('td', {}, who(e.target)), h('td', {}, e.address || '—'),
    h('td', { class: 'detail' }, detail || '—'))
}
