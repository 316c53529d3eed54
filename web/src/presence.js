// Presence through Yjs awareness: who is here, their colour, what they touch, their playhead.
//
// Local awareness state: {user: {name, colour, role}, touching, selected, playhead}.
// `touching` names a control ("track:ID:gain_db", "clip:ID"); elements carry the
// same key in `data-touch` so remote users' touches can be outlined in their colour.
import { h } from './dom.js'

const COLOURS = ['#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231', '#911eb4', '#46f0f0',
  '#f032e6', '#bcf60c', '#fabebe']

/** A stable colour for a user name. */
export function userColour (name) {
  let hash = 0
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0
  return COLOURS[hash % COLOURS.length]
}

export class Presence {
  constructor (awareness, user, role) {
    this.awareness = awareness
    this.user = { name: user, colour: userColour(user), role }
    awareness.setLocalState({ user: this.user, touching: null, selected: null, playhead: null,
      dragging: null })
    this._release = null
    this.listeners = []
    awareness.on('change', () => this.listeners.forEach((fn) => fn(this.others())))
  }

  /** Remote users: [{clientId, user, touching, selected, playhead}]. */
  others () {
    const out = []
    this.awareness.getStates().forEach((state, clientId) => {
      if (clientId !== this.awareness.clientID && state && state.user) out.push({ clientId, ...state })
    })
    return out
  }

  /** Everyone, the local user first. */
  everyone () {
    const me = { clientId: this.awareness.clientID, ...this.awareness.getLocalState(), me: true }
    return [me, ...this.others()]
  }

  onChange (fn) { this.listeners.push(fn) }

  set (field, value) {
    const state = this.awareness.getLocalState()
    if (state && state[field] !== value) this.awareness.setLocalStateField(field, value)
  }

  /** Announce that the user touches `key` (until `release`). */
  touch (key) {
    clearTimeout(this._release)
    this.set('touching', key)
  }

  release (delay = 400) {
    clearTimeout(this._release)
    this._release = setTimeout(() => this.set('touching', null), delay)
  }

  /** Wire focus/pointer events of a control to touch/release. */
  bind (el, key) {
    el.dataset.touch = key
    el.addEventListener('pointerdown', () => this.touch(key))
    el.addEventListener('focus', () => this.touch(key))
    el.addEventListener('pointerup', () => this.release())
    el.addEventListener('blur', () => this.release(0))
  }
}

/** The "who's here" list in the header. */
export function renderPeople (container, presence, describe = (key) => key) {
  const people = presence.everyone().map((state) => {
    const { name, colour, role } = state.user || {}
    const touching = state.touching && !state.me ? describe(state.touching) : ''
    return h('li', { class: 'person', title: `${name} (${role})`, dataset: { user: name } },
      h('span', { class: 'dot', style: `background:${colour}` }),
      h('span', { class: 'name' }, state.me ? `${name} (you)` : name),
      role === 'viewer' ? h('span', { class: 'tag' }, 'viewer') : null,
      touching ? h('span', { class: 'touching' }, touching) : null)
  })
  container.replaceChildren(...people)
}

/** Outline controls that other users touch, in their colour. */
export function markTouched (root, others) {
  for (const el of root.querySelectorAll('.touched')) {
    el.classList.remove('touched')
    el.style.removeProperty('--touch-colour')
    el.removeAttribute('data-touched-by')
  }
  for (const other of others) {
    if (!other.touching) continue
    for (const el of root.querySelectorAll(`[data-touch="${CSS.escape(other.touching)}"]`)) {
      el.classList.add('touched')
      el.style.setProperty('--touch-colour', other.user.colour)
      el.dataset.touchedBy = other.user.name
    }
  }
}
