// One track's header: colour, name, fader, pan, mute, solo, arm (all document edits).
import { h, setProp, formatDb, formatPan } from './dom.js'

export const FADER_MIN = -60
export const FADER_MAX = 12

export class TrackHeader {
  constructor (trackId, { project, presence, editable, onSelect, onControl = () => false, onAutomation = () => {} }) {
    this.id = trackId
    const edit = (field, value) => project.setTrack(trackId, field, value)
    const key = (field) => `track:${trackId}:${field}`
    // Fader and pan moves also go to the automation writer (onControl answers whether a
    // touch/latch pass took the move): held from pointer down to up; a key press is a
    // touch and release at once.
    const held = { gain_db: false, pan: false }
    const press = (field) => () => { held[field] = true }
    const release = (field) => (e) => {
      if (!held[field]) return
      held[field] = false
      onControl(trackId, field, Number(e.target.value), false)
    }
    this.colour = h('input', { type: 'color', class: 'colour edit', title: 'Track colour',
      onchange: (e) => edit('colour', e.target.value) })
    this.name = h('input', { type: 'text', class: 'name edit', spellcheck: false,
      'aria-label': 'Track name', onchange: (e) => edit('name', e.target.value.trim() || trackId) })
    this.fader = h('input', { type: 'range', class: 'fader edit', min: FADER_MIN, max: FADER_MAX,
      step: 0.1, 'aria-label': 'Fader (dB)', ondblclick: () => edit('gain_db', 0),
      onpointerdown: press('gain_db'), onpointerup: release('gain_db'), onchange: release('gain_db'),
      oninput: (e) => {
        // a move taken by a touch/latch pass writes the lane, not the static value
        if (!onControl(trackId, 'gain_db', Number(e.target.value), held.gain_db)) edit('gain_db', Number(e.target.value))
        this._showGain(Number(e.target.value))
      } })
    this.gain = h('span', { class: 'readout gain' })
    this.pan = h('input', { type: 'range', class: 'pan edit', min: -1, max: 1, step: 0.01,
      'aria-label': 'Pan', ondblclick: () => edit('pan', 0),
      onpointerdown: press('pan'), onpointerup: release('pan'), onchange: release('pan'),
      oninput: (e) => {
        if (!onControl(trackId, 'pan', Number(e.target.value), held.pan)) edit('pan', Number(e.target.value))
        this.panText.textContent = formatPan(Number(e.target.value))
      } })
    this.panText = h('span', { class: 'readout pan-text' })
    const toggle = (field, label, title) => h('button', { class: `toggle ${field} edit`, title,
      'aria-pressed': 'false',
      onclick: (e) => {
        const on = e.currentTarget.getAttribute('aria-pressed') !== 'true'
        if (field !== 'mute' || !onControl(trackId, 'mute', on ? 1 : 0, false)) edit(field, on)
      } }, label)
    this.mute = toggle('mute', 'M', 'Mute')
    this.solo = toggle('solo', 'S', 'Solo')
    this.arm = toggle('arm', 'R', 'Arm for recording')
    this.auto = h('button', { class: 'toggle auto-toggle', title: 'Show or hide automation',
      'aria-pressed': 'false', onclick: () => onAutomation(trackId) }, 'A')
    for (const [el, field] of [[this.colour, 'colour'], [this.name, 'name'], [this.fader, 'gain_db'],
      [this.pan, 'pan'], [this.mute, 'mute'], [this.solo, 'solo'], [this.arm, 'arm']]) {
      presence.bind(el, key(field))
      el.disabled = !editable
    }
    // shown while an lv2 plug-in of this track plays bypassed (bypassed.js)
    this.bypassed = h('span', { class: 'plugin-error', role: 'img', hidden: true }, '⚠')
    this.el = h('div', { class: 'track-header', dataset: { track: trackId },
      onpointerdown: () => onSelect(trackId) },
    h('div', { class: 'line' }, this.colour, this.name, this.bypassed, this.mute, this.solo, this.arm, this.auto),
    h('div', { class: 'line' }, h('label', { class: 'mini' }, 'vol'), this.fader, this.gain),
    h('div', { class: 'line' }, h('label', { class: 'mini' }, 'pan'), this.pan, this.panText))
  }

  _showGain (db) { this.gain.textContent = formatDb(db) }

  /** Badge the header while plug-ins of this track play bypassed (`lines`: why, each). */
  showBypassed (lines) {
    this.bypassed.hidden = lines.length === 0
    const title = lines.length ? `Bypassed:\n${lines.join('\n')}` : ''
    if (this.bypassed.title !== title) {
      this.bypassed.title = title
      this.bypassed.setAttribute('aria-label', title)
    }
  }

  /** Show the document's values (skipping a control the user is dragging right now). */
  update (track, selected, automationShown = false) {
    this.auto.setAttribute('aria-pressed', automationShown ? 'true' : 'false')
    const active = document.activeElement
    setProp(this.colour, 'value', track.colour || '#888888')
    this.el.style.setProperty('--track-colour', track.colour || '#888888')
    if (active !== this.name) setProp(this.name, 'value', track.name || track.id)
    const gain = Math.max(FADER_MIN, Math.min(FADER_MAX, Number(track.gain_db) || 0))
    if (!(active === this.fader && this.fader.matches(':active'))) setProp(this.fader, 'value', String(gain))
    this.fader.dataset.value = String(track.gain_db)
    this._showGain(Number(track.gain_db) || 0)
    if (!(active === this.pan && this.pan.matches(':active'))) setProp(this.pan, 'value', String(track.pan ?? 0))
    this.panText.textContent = formatPan(Number(track.pan) || 0)
    for (const field of ['mute', 'solo', 'arm']) {
      this[field].setAttribute('aria-pressed', track[field] ? 'true' : 'false')
    }
    this.el.classList.toggle('selected', selected)
  }
}
