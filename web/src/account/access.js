// Who may open a project besides its owning account: roles granted to people, teams or
// organisations. The project's owners grant and take away; anyone on it sees the list.
import { h } from '../dom.js'
import { call } from './client.js'
import { form, notice } from './form.js'

export const PROJECT_ROLES = ['viewer', 'editor', 'owner']
const project = (id, rest = '') => `/projects/${encodeURIComponent(id)}${rest}`

/** The people and organisations the person knows by name: id → name. */
async function directory (me) {
  const names = new Map([[me.person.id, `${me.person.name || me.person.email} (you)`]])
  for (const org of me.organisations) names.set(org.id, `${org.name} (${org.kind || 'organisation'})`)
  const people = new Map()
  await Promise.all(me.organisations.map(async (org) => {
    try {
      for (const m of await call(`/accounts/${encodeURIComponent(org.id)}/members`)) {
        if (m.id !== me.person.id) people.set(m.id, m.email ? `${m.name} <${m.email}>` : m.name)
      }
    } catch { /* a member list we may not read: its people are typed by id */ }
  }))
  for (const [id, name] of people) names.set(id, name)
  return { names, people }
}

/** The access page (`/account/access?project=ID`), or the list of one's projects to pick from. */
export function accessPage ({ me }) {
  const box = h('div', { class: 'grants' })
  const projectId = new URLSearchParams(window.location.search).get('project') || ''
  const draw = async () => {
    const mine = await call('/me/projects')
    const entry = mine.find((p) => p.id === projectId)
    if (!entry) {
      box.replaceChildren(projectId ? notice(`You have no project ${projectId}.`, 'alert') : '',
        h('p', {}, 'Pick a project to see who may open it:'),
        h('ul', {}, mine.map((p) => h('li', {}, h('a', { href: `/account/access?project=${encodeURIComponent(p.id)}` }, p.name),
          ` (${p.role})`))))
      return
    }
    box.replaceChildren(await grantsOf(entry, me))
  }
  draw().catch((err) => box.replaceChildren(notice(err.message, 'alert')))
  return box
}

async function grantsOf (entry, me) {
  const { names, people } = await directory(me)
  const owner = entry.role === 'owner'
  const rows = h('tbody')
  const said = h('div', { 'aria-live': 'polite' })
  const load = async () => {
    const grants = await call(project(entry.id, '/grants'))
    rows.replaceChildren(...grants.map((g) => grantRow(g, names, owner, remove)))
    if (!grants.length) rows.replaceChildren(h('tr', {}, h('td', { colspan: 4 }, 'No one else: only the owning account\'s people.')))
  }
  const remove = async (grantee) => {
    try {
      await call(project(entry.id, `/grants/${encodeURIComponent(grantee)}`), { method: 'DELETE' })
      said.replaceChildren(notice(`${names.get(grantee) || grantee} no longer has a role on ${entry.name}`))
      await load()
    } catch (err) { said.replaceChildren(notice(err.message, 'alert')) }
  }
  const choices = [['', 'Choose…'],
    ...me.organisations.map((o) => [o.id, names.get(o.id)]),
    ...[...people].map(([id, name]) => [id, name])]
  const add = form({
    label: `Grant a role on ${entry.name}`,
    submit: 'Grant',
    fields: [
      { name: 'who', label: 'Person or team', type: 'select', options: choices },
      { name: 'id', label: 'Or an account id', autocomplete: 'off', hint: 'p_… for a person, o_… for a team or organisation' },
      { name: 'role', label: 'Role', type: 'select', options: PROJECT_ROLES.map((r) => [r, r]) }
    ],
    onSubmit: async ({ who, id, role }) => {
      const grantee = id.trim() || who
      if (!grantee) throw new Error('Choose a person or team, or type an account id')
      await call(project(entry.id, `/grants/${encodeURIComponent(grantee)}`), { method: 'PUT', body: { role } })
      add.inputs.id.value = ''
      await load()
      return `${names.get(grantee) || grantee} is now ${role} on ${entry.name}`
    }
  })
  add.inputs.role.value = 'editor'
  await load()
  return h('section', { class: 'card', dataset: { project: entry.id } },
    h('h2', {}, entry.name, ' ', h('span', { class: `role-badge role-${entry.role}` }, entry.role)),
    h('table', {}, h('caption', {}, 'Roles granted on this project'),
      h('thead', {}, h('tr', {}, ['Who', 'Role', 'Granted by', ''].map((t) => h('th', { scope: 'col' }, t)))),
      rows),
    said,
    owner ? add.el : notice('Only the project\'s owners grant roles.'))
}

function grantRow (g, names, owner, remove) {
  const name = names.get(g.grantee) || g.grantee
  return h('tr', { dataset: { grantee: g.grantee } },
    h('td', { title: g.grantee }, name), h('td', {}, g.role), h('td', {}, names.get(g.granted_by) || g.granted_by),
    h('td', {}, owner
      ? h('button', { type: 'button', 'aria-label': `Remove ${name}`, onclick: () => remove(g.grantee) }, 'Remove')
      : ''))
}
