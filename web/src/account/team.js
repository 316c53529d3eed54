// The team: organisations the person is in, their members and roles, invitations.
import { h } from '../dom.js'
import { call, me as whoAmI } from './client.js'
import { form, notice, when } from './form.js'

export const ROLES = ['owner', 'admin', 'member', 'viewer']
const ADMINS = new Set(['owner', 'admin'])
const path = (id, rest = '') => `/accounts/${encodeURIComponent(id)}${rest}`

/** The team page's content: a new-organisation form and one section per organisation. */
export function teamPage ({ me }) {
  const list = h('div', { class: 'organisations' })
  const create = form({
    label: 'New organisation',
    submit: 'Create',
    fields: [
      { name: 'name', label: 'Organisation name', required: true },
      { name: 'kind', label: 'Kind', type: 'select', options: [['organisation', 'Organisation (artist, label)'], ['team', 'Team']] }
    ],
    onSubmit: async ({ name, kind }) => {
      const org = await call('/accounts', { method: 'POST', body: { name: name.trim(), kind } })
      create.inputs.name.value = ''
      await redraw()
      return `${org.name} created; you are its owner`
    }
  })
  const redraw = async () => {
    const fresh = await whoAmI()
    const orgs = fresh ? fresh.organisations : []
    if (!orgs.length) list.replaceChildren(notice('You are in no organisation yet: create one, or accept an invitation from its mail.'))
    else list.replaceChildren(...orgs.map((org) => organisation(org, fresh.person, redraw)))
  }
  redraw().catch((err) => list.replaceChildren(notice(err.message, 'alert')))
  return h('div', { class: 'team' }, list, h('section', { class: 'card' }, h('h2', {}, 'Create an organisation'), create.el))
}

function organisation (org, person, redraw) {
  const admin = ADMINS.has(org.role)
  const members = h('tbody')
  const invitations = h('tbody')
  const problem = h('div', { 'aria-live': 'polite' })
  const fail = (err) => problem.replaceChildren(notice(err.message, 'alert'))
  const load = async () => {
    problem.replaceChildren()
    const found = await call(path(org.id, '/members'))
    members.replaceChildren(...found.map((m) => member(org, m, person, admin, { reload: load, redraw, fail })))
    if (admin) invitations.replaceChildren(...(await call(path(org.id, '/invitations'))).map(invitation))
  }
  const invite = form({
    label: `Invite to ${org.name}`,
    submit: 'Send invitation',
    fields: [
      { name: 'email', label: 'Email to invite', type: 'email', autocomplete: 'off', required: true },
      { name: 'role', label: 'Role', type: 'select', options: ROLES.slice(1).concat(org.role === 'owner' ? ['owner'] : []).map((r) => [r, r]) }
    ],
    onSubmit: async ({ email, role }) => {
      const sent = await call(path(org.id, '/invitations'), { method: 'POST', body: { email: email.trim(), role } })
      invite.inputs.email.value = ''
      await load()
      return `Invitation mailed to ${sent.email}`
    }
  })
  invite.inputs.role.value = 'member'
  load().catch(fail)
  return h('section', { class: 'card organisation', dataset: { org: org.id } },
    h('h2', {}, org.name, ' ', h('span', { class: `role-badge role-${org.role}` }, org.role)),
    h('table', { class: 'members' }, h('caption', {}, 'Members'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Email'), h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      members),
    problem,
    admin
      ? h('div', { class: 'invitations' },
        h('table', {}, h('caption', {}, 'Invitations'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Email'), h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col' }, 'Sent'), h('th', { scope: 'col' }, 'State'))),
          invitations),
        invite.el)
      : '')
}

function member (org, m, person, admin, { reload, redraw, fail }) {
  const self = m.id === person.id
  const role = h('select', { 'aria-label': `Role of ${m.name}`, disabled: !admin, onchange: async () => {
    try {
      await call(path(org.id, `/members/${encodeURIComponent(m.id)}`), { method: 'PUT', body: { role: role.value } })
      await (self ? redraw() : reload())
    } catch (err) {
      role.value = m.role
      fail(err)
    }
  } }, [...new Set([...ROLES, m.role])].map((r) => h('option', { value: r, selected: r === m.role }, r)))
  const remove = (admin || self)
    ? h('button', { type: 'button', onclick: async () => {
      try {
        await call(path(org.id, `/members/${encodeURIComponent(m.id)}`), { method: 'DELETE' })
        await (self ? redraw() : reload())
      } catch (err) { fail(err) }
    } }, self ? 'Leave' : 'Remove')
    : ''
  return h('tr', { dataset: { member: m.id } }, h('td', {}, m.name, self ? ' (you)' : ''), h('td', {}, m.email || ''), h('td', {}, role), h('td', {}, remove))
}

function invitation (i) {
  const now = Date.now() / 1000
  const state = i.accepted_at ? `accepted ${when(i.accepted_at)}` : i.revoked_at ? 'withdrawn' : i.expires_at < now ? 'expired' : 'pending'
  return h('tr', { dataset: { invitation: i.id, state: state.split(' ')[0] } },
    h('td', {}, i.email), h('td', {}, i.role), h('td', {}, when(i.created_at)), h('td', {}, state))
}
