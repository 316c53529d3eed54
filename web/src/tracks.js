// One track's header: colour, name, fader, pan, mute, solo, arm (all document edits); and
// an aux bus's or the master's row header: name, fader and pan (a bus has no mute or solo).
import { h, holdTracker, isHeld, setProp, formatDb, formatPan } from './dom.js'

export const FADER_MIN = -60
export const FADER_MAX = 12

/**
 * A fader (dB) and a pan slider with their readouts, of a track's header or a bus's row.
 * `edit(field, value)` sets the static value; each move also goes to `onControl(field,
 * value, held)` (the automation writer), which answers whether a touch/latch pass took it
 * (then the lane is what plays, and the static value stays): held from pointer down to
 * up; a key press is a touch and release at once.
 */
export function mixControls ({ edit, onControl }) {
  const hold = (field) => holdTracker((e) => onControl(field, Number(e.target.value), false))
  const held = { gain_db: hold('gain_db'), pan: hold('pan') }
  const controls = {
    fader: h('input', { type: 'range', class: 'fader edit', min: FADER_MIN, max: FADER_MAX,
      step: 0.1, 'aria-label': 'Fader (dB)', ondblclick: () => edit('gain_db', 0), ...held.gain_db.attrs,
      oninput: (e) => {
        if (!onControl('gain_db', Number(e.target.value), held.gain_db.held())) edit('gain_db', Number(e.target.value))
        controls.gain.textContent = formatDb(Number(e.target.value))
      } }),
    gain: h('span', { class: 'readout gain' }),
    pan: h('input', { type: 'range', class: 'pan edit', min: -1, max: 1, step: 0.01,
      'aria-label': 'Pan', ondblclick: () => edit('pan', 0), ...held.pan.attrs,
      oninput: (e) => {
        if (!onControl('pan', Number(e.target.value), held.pan.held())) edit('pan', Number(e.target.value))
        controls.panText.textContent = formatPan(Number(e.target.value))
      } }),
    panText: h('span', { class: 'readout pan-text' }),
    /** Show the document's `gain_db` and `pan` (not into a slider being dragged). */
    show ({ gain_db: db, pan }) {
      const { fader, gain, pan: slider, panText } = controls
      const value = Math.max(FADER_MIN, Math.min(FADER_MAX, Number(db) || 0))
      if (!isHeld(fader)) setProp(fader, 'value', String(value))
      fader.dataset.value = String(db)
      gain.textContent = formatDb(Number(db) || 0)
      if (!isHeld(slider)) setProp(slider, 'value', String(pan ?? 0))
      panText.textContent = formatPan(Number(pan) || 0)
    }
  }
  return controls
}

export class TrackHeader {
  /** `controlValue(trackId, param)`: what an automation pass running now wrote last for
   * the parameter (null: none runs); the mute button shows and toggles it. */
  constructor (trackId, { project, presence, editable, onSelect, onControl = () => false, onAutomation = () => {}, controlValue = () => null }) {
    this.id = trackId
    this.project = project
    this.controlValue = controlValue
    const edit = (field, value) => project.setTrack(trackId, field, value)
    const key = (field) => `track:${trackId}:${field}`
    this.colour = h('input', { type: 'color', class: 'colour edit', title: 'Track colour',
      onchange: (e) => edit('colour', e.target.value) })
    this.name = h('input', { type: 'text', class: 'name edit', spellcheck: false,
      'aria-label': 'Track name', onchange: (e) => edit('name', e.target.value.trim() || trackId) })
    // fader and pan moves also go to the automation writer (onControl)
    this.mix = mixControls({ edit, onControl: (field, value, held) => onControl(trackId, field, value, held) })
    Object.assign(this, { fader: this.mix.fader, gain: this.mix.gain, pan: this.mix.pan, panText: this.mix.panText })
    const toggle = (field, label, title) => h('button', { class: `toggle ${field} edit`, title,
      'aria-pressed': 'false',
      onclick: (e) => {
        const on = e.currentTarget.getAttribute('aria-pressed') !== 'true'
        if (field !== 'mute' || !onControl(trackId, 'mute', on ? 1 : 0, false)) edit(field, on)
        else this.showMute() // a touch or latch pass took it: the lane plays it, not the track
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
    this.mix.show(track)
    for (const field of ['solo', 'arm']) {
      this[field].setAttribute('aria-pressed', track[field] ? 'true' : 'false')
    }
    this.showMute(track)
    this.el.classList.toggle('selected', selected)
  }

  /** Show whether the track is muted: by the automation pass writing its mute now, else
   * by the document (`track`: its values, read when not given). */
  showMute (track = this.project.roots.tracks.get(this.id)?.toJSON() || {}) {
    const written = this.controlValue(this.id, 'mute')
    const muted = written !== null ? written >= 0.5 : Boolean(track.mute)
    this.mute.setAttribute('aria-pressed', muted ? 'true' : 'false')
  }
}

/**
 * The header of an aux bus's or the master's row under the tracks: its name (a click
 * selects the bus: the Effects panel shows its chain), a fader and pan writing
 * `buses[id].{gain_db,pan}` (a bus has no mute or solo) and the A of its automation strip.
 */
export class BusHeader {
  constructor (busId, { project, presence, editable, onSelect, onControl = () => false, onAutomation = () => {} }) {
    this.id = busId
    const master = busId === 'master'
    this.mix = mixControls({ edit: (field, value) => project.setBus(busId, field, value),
      onControl: (field, value, held) => onControl(busId, field, value, held) })
    for (const field of ['fader', 'pan']) {
      presence.bind(this.mix[field], `bus:${busId}:${field === 'fader' ? 'gain_db' : 'pan'}`)
      this.mix[field].disabled = !editable
    }
    this.name = h('span', { class: 'bus-name' })
    this.auto = h('button', { class: 'toggle auto-toggle', title: 'Show or hide automation',
      'aria-pressed': 'false', onclick: () => onAutomation(busId) }, 'A')
    this.el = h('div', { class: 'track-header bus-header', dataset: { bus: busId },
      title: `Select ${master ? 'the master' : 'this aux bus'}: the Effects panel shows its chain`,
      onpointerdown: () => onSelect(busId) },
    h('div', { class: 'line' }, master ? '' : h('label', { class: 'mini' }, 'aux'), this.name,
      this.mix.fader, this.mix.gain, this.mix.pan, this.mix.panText, this.auto))
  }

  /** Show the document's values (skipping a control the user is dragging right now). */
  update (bus, name, selected, automationShown = false) {
    this.name.textContent = name
    this.name.title = name
    this.auto.setAttribute('aria-pressed', automationShown ? 'true' : 'false')
    this.mix.show(bus)
    this.el.classList.toggle('selected', selected)
  }
}
