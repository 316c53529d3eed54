// The project list (create, open, rename, delete) and the share panel (links by role, revoke).
import { h } from './dom.js'
import { api } from './api.js'
import { projectUrl } from './session.js'
import { Project } from './project.js'

/** Rename through the document (`meta.name`): join, edit, wait until the server has it. */
export async function renameInDocument (projectId, token, name) {
  const project = new Project(projectId, token)
  let failure = null
  const synced = project.connect((status, final) => { if (final) failure = status })
  try {
    await Promise.race([synced, until(() => failure)])
    if (failure) throw new Error(failure)
    project.setName(name)
    await until(async () => {
      const data = await api(`/projects/${encodeURIComponent(projectId)}`, { token })
      return data.document.meta.name === name
    })
  } finally {
    project.provider.destroy()
  }
}

async function until (check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the server did not confirm in time')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return true
}

/** Render the project list into `root`. */
export async function showProjectList (root, { token, claims, features, notify }) {
  const list = h('ul', { class: 'project-list' })
  const name = h('input', { type: 'text', placeholder: 'New project name', class: 'new-name' })
  const create = h('button', { class: 'create', onclick: async () => {
    try {
      const project = await api('/projects', { token, method: 'POST', body: { name: name.value.trim() || 'Untitled' } })
      window.location.href = projectUrl(project.id, token)
    } catch (err) { notify(err.message, true) }
  } }, 'Create project')
  root.replaceChildren(h('div', { class: 'projects-page' },
    h('h1', {}, 'Max Booster Studio'),
    h('h2', {}, 'Projects'),
    h('div', { class: 'create-row' }, name, create),
    list))
  if (!token) {
    list.replaceChildren(features.accounts
      ? h('li', { class: 'hint sign-in-hint' }, h('a', { href: '/account/sign-in' }, 'Sign in'), ' or ',
        h('a', { href: '/account/sign-up' }, 'sign up'), ' to see your projects, or open the page with ?token=… (dawserver token).')
      : h('li', { class: 'hint' }, 'Open the page with ?token=… (dawserver token, or the URL printed by "dawserver serve --demo").'))
    return
  }
  let projects
  try {
    projects = await api('/projects', { token })
  } catch (err) {
    create.disabled = true
    name.disabled = true
    const only = claims.project && claims.project !== '*'
      ? h('li', {}, h('a', { href: projectUrl(claims.project, token) }, `Open ${claims.project}`),
        h('span', { class: 'hint' }, ` (your ${claims.role} token opens this project only)`))
      : h('li', { class: 'hint' }, err.message)
    list.replaceChildren(only)
    return
  }
  if (!projects.length) list.replaceChildren(h('li', { class: 'hint' }, 'No projects yet: create one.'))
  else list.replaceChildren(...projects.map((p) => projectItem(p, { token, features, notify })))
}

function projectItem (project, { token, features, notify }) {
  const title = h('input', { type: 'text', class: 'rename', value: project.name, title: 'Rename',
    onchange: async (e) => {
      const name = e.target.value.trim() || 'Untitled'
      try {
        if (features.rename) {
          await api(`/projects/${encodeURIComponent(project.id)}`, { token, method: 'PATCH', body: { name } })
        } else {
          await renameInDocument(project.id, token, name)
        }
        notify(`renamed to ${name}`)
      } catch (err) { notify(err.message, true) }
    }
  })
  const item = h('li', { class: 'project', dataset: { project: project.id } },
    h('a', { class: 'open', href: projectUrl(project.id, token) }, 'Open'), title,
    h('span', { class: 'hint' }, project.id), ' ')
  // the list is an administrator's (GET /projects): owner of every project
  item.append(deleteButton(project, {
    remove: (path) => api(path, { token, method: 'DELETE' }), onDeleted: () => item.remove(), notify
  }))
  return item
}

/**
 * An owner's "Delete" for a project of a list: asks to confirm, then DELETE /projects/{id}
 * through `remove(path)` (a token's or the session's call) and `onDeleted()`.
 */
export function deleteButton (project, { remove, onDeleted, notify }) {
  const button = h('button', { class: 'delete-project', title: 'Delete this project for good',
    onclick: async () => {
      const sure = window.confirm(`Delete "${project.name}" for good? Its document, audio and ` +
        'bounces go, and everyone connected to it is disconnected. This cannot be undone.')
      if (!sure) return
      button.disabled = true
      try {
        await remove(`/projects/${encodeURIComponent(project.id)}`)
        onDeleted()
        notify(`deleted ${project.name}`)
      } catch (err) {
        button.disabled = false
        notify(err.message, true)
      }
    } }, 'Delete')
  return button
}

/**
 * The share panel of an owner: issue a link for a user and role; revoke a user. `token` is
 * the owner's token, or a function giving the current one (a signed-in person's is renewed).
 */
export function sharePanel ({ projectId, token: given, notify }) {
  const bearer = () => (typeof given === 'function' ? given() : given)
  const user = h('input', { type: 'text', placeholder: 'user name', class: 'share-user' })
  const role = h('select', { class: 'share-role' }, ['viewer', 'editor', 'owner'].map((r) => h('option', { value: r }, r)))
  const output = h('input', { type: 'text', readonly: true, class: 'share-link', placeholder: 'link appears here' })
  const share = h('button', { class: 'share', onclick: async () => {
    try {
      const issued = await api(`/projects/${encodeURIComponent(projectId)}/tokens`, {
        token: bearer(), method: 'POST', body: { user: user.value.trim() || 'guest', role: role.value }
      })
      output.value = projectUrl(projectId, issued.token)
      output.select()
      notify(`link for ${issued.user} (${issued.role}) created`)
    } catch (err) { notify(err.message, true) }
  } }, 'Create link')
  const revoke = h('button', { class: 'revoke', onclick: async () => {
    const name = user.value.trim()
    if (!name) return notify('type the user name to revoke', true)
    try {
      const result = await api(`/projects/${encodeURIComponent(projectId)}/members/${encodeURIComponent(name)}`, { token: bearer(), method: 'DELETE' })
      notify(`revoked ${result.revoked}`)
    } catch (err) { notify(err.message, true) }
  } }, 'Revoke')
  return h('section', { class: 'panel share-panel' }, h('h3', {}, 'Share'),
    h('div', { class: 'line' }, user, role, share, revoke), output)
}
