// One's sessions: where and since when one is signed in; end one, or every other.
import { h } from '../dom.js'
import { call } from './client.js'
import { notice, when } from './form.js'

/** A short name for a browser's User-Agent ("Chrome on Linux"). */
export function browserName (agent) {
  if (!agent) return 'Unknown browser'
  const browser = /Edg\//.test(agent) ? 'Edge' : /Firefox\//.test(agent) ? 'Firefox'
    : /Chrom(e|ium)\//.test(agent) ? 'Chrome' : /Safari\//.test(agent) ? 'Safari' : agent.split(/[\s/]/)[0]
  const system = /Windows/.test(agent) ? 'Windows' : /Android/.test(agent) ? 'Android'
    : /iPhone|iPad/.test(agent) ? 'iOS' : /Mac OS X/.test(agent) ? 'macOS' : /Linux/.test(agent) ? 'Linux' : ''
  return system ? `${browser} on ${system}` : browser
}

/** The sessions page's content. */
export function sessionsPage () {
  const rows = h('tbody')
  const said = h('div', { 'aria-live': 'polite' })
  const load = async () => {
    const sessions = await call('/me/sessions')
    rows.replaceChildren(...sessions.map((s) => row(s, end)))
    others.disabled = sessions.every((s) => s.current)
  }
  const end = async (what, label) => {
    try {
      const { ended } = await call(what, { method: 'DELETE' })
      said.replaceChildren(notice(`${label}: ${ended} ended`))
      await load()
    } catch (err) { said.replaceChildren(notice(err.message, 'alert')) }
  }
  const others = h('button', { type: 'button', class: 'end-others', onclick: () => end('/me/sessions', 'Other sessions') }, 'End all other sessions')
  load().catch((err) => said.replaceChildren(notice(err.message, 'alert')))
  return h('div', { class: 'sessions' },
    h('table', {}, h('caption', {}, 'Where you are signed in'),
      h('thead', {}, h('tr', {}, ['Browser', 'Address', 'Signed in', 'Last seen', ''].map((t) => h('th', { scope: 'col' }, t)))),
      rows),
    said, h('p', {}, others))
}

function row (s, end) {
  const action = s.current
    ? h('span', { class: 'current' }, 'This session')
    : h('button', { type: 'button', class: 'end', onclick: () => end(`/me/sessions/${encodeURIComponent(s.id)}`, 'Session') }, 'End')
  return h('tr', { dataset: { session: s.id, current: String(s.current) } },
    h('td', { title: s.user_agent }, browserName(s.user_agent)), h('td', {}, s.address || '—'),
    h('td', {}, when(s.created_at)), h('td', {}, when(s.last_seen_at)), h('td', {}, action))
}
