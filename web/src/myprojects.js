// The project list of a signed-in person (GET /me/projects): create in one's own account or
// an organisation's, open one (the project view derives a collaboration token from the session),
// and, for its owners, who else may open it (/account/access).
import { h } from './dom.js'
import { call, signOut } from './account/client.js'
import { deleteButton } from './projects.js'

/** The page URL that opens `projectId` as the signed-in person (no token in the URL). */
export function sessionProjectUrl (projectId) {
  return `/?project=${encodeURIComponent(projectId)}`
}

/** Render the signed-in person's projects into `root`. */
export async function showMyProjects (root, { me, notify }) {
  const list = h('ul', { class: 'project-list' })
  const name = h('input', { type: 'text', placeholder: 'New project name', class: 'new-name', 'aria-label': 'New project name' })
  const owner = h('select', { class: 'new-owner', 'aria-label': 'Owner of the new project' },
    h('option', { value: me.person.id }, 'Mine'),
    me.organisations.map((o) => h('option', { value: o.id }, o.name)))
  const create = h('button', { class: 'create', onclick: async () => {
    create.disabled = true
    try {
      const project = await call(`/accounts/${encodeURIComponent(owner.value)}/projects`, {
        method: 'POST', body: { name: name.value.trim() || 'Untitled' }
      })
      window.location.assign(sessionProjectUrl(project.id))
    } catch (err) {
      create.disabled = false
      notify(err.message, true)
    }
  } }, 'Create project')
  root.replaceChildren(h('div', { class: 'projects-page' },
    h('h1', {}, 'Max Booster Studio'),
    h('p', { class: 'signed-in' }, `Signed in as ${me.person.name || me.person.email} · `,
      h('a', { href: '/account' }, 'Account'), ' · ', h('a', { href: '/account/team' }, 'Team'), ' · ',
      h('button', { class: 'sign-out', onclick: async () => {
        await signOut().catch(() => {})
        window.location.assign('/account/sign-in')
      } }, 'Sign out')),
    h('h2', {}, 'Projects'),
    h('div', { class: 'create-row' }, name, owner, create),
    list))
  const owners = new Map([[me.person.id, 'you'], ...me.organisations.map((o) => [o.id, o.name])])
  try {
    const projects = await call('/me/projects')
    if (!projects.length) list.replaceChildren(h('li', { class: 'hint' }, 'No projects yet: create one.'))
    else {
      list.replaceChildren(...projects.map((p) => {
        const item = h('li', { class: 'project', dataset: { project: p.id } },
          h('a', { class: 'open', href: sessionProjectUrl(p.id) }, 'Open'), ' ',
          h('span', { class: 'name' }, p.name), ' ',
          h('span', { class: `role-badge role-${p.role}` }, p.role),
          p.owner && owners.has(p.owner) ? h('span', { class: 'hint' }, ` ${owners.get(p.owner)}`) : '')
        if (p.role === 'owner') {
          item.append(' ', h('a', {
            class: 'access', href: `/account/access?project=${encodeURIComponent(p.id)}`, 'aria-label': `Who may open ${p.name}`
          }, 'Access'), ' ', deleteButton(p, {
            remove: (path) => call(path, { method: 'DELETE' }), onDeleted: () => item.remove(), notify
          }))
        }
        return item
      }))
    }
  } catch (err) {
    list.replaceChildren(h('li', { class: 'hint' }, err.message))
  }
}
