// Automation lanes under a track: a strip with the lane's breakpoints (draw, drag, delete),
// its parameter and its mode (off, read, touch, latch, write); and the fader writer, which
// sends fader moves during playback to the server's automation writer
// (POST /projects/ID/automation/write, collab/automation_write.py), so the page and the
// desktop client write automation through one implementation.
//
// The strips are view state: hidden by default, mounted only with their (mounted) row.
import { h } from './dom.js'
import { api } from './api.js'
import * as Y from 'yjs'

export const AUTO_HEIGHT = 64 // px of an open automation strip under its track row
export const MODES = ['off', 'read', 'touch', 'latch', 'write']
export const WRITING = new Set(['touch', 'latch', 'write'])
// Shown ranges (a gain point below -60 dB sits on the floor); the document's ranges are
// dsp_core.session.AUTOMATION_PARAMS.
export const PARAMS = {
  gain_db: { label: 'Volume', min: -60, max: 12, low: -144, high: 24 },
  pan: { label: 'Pan', min: -1, max: 1, low: -1, high: 1 },
  mute: { label: 'Mute', min: 0, max: 1, low: 0, high: 1, hold: true }
}
const PAD = 6 // px above and below the value range
const SVG = 'http://www.w3.org/2000/svg'
const FLUSH_MS = 100 // a held fader's events go to the server this often

function svg (tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag)
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value)
  return el
}

function newPointId () {
  const bytes = crypto.getRandomValues(new Uint8Array(6))
  return `pt-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`
}

/** A value a parameter's lane can hold (mute: 0 or 1). */
export function clampValue (param, value) {
  const p = PARAMS[param]
  const v = Math.min(p.high, Math.max(p.low, Number(value) || 0))
  return p.hold ? (v >= 0.5 ? 1 : 0) : v
}

// -- document edits (as collab/schema.py's add/move/remove_automation_point) --------------

/** The lane map {mode, points} of a track (created for tracks written without lanes). */
function laneMap (project, trackId, param) {
  const track = project.roots.tracks.get(trackId)
  if (!track) return null
  let automation = track.get('automation')
  if (!automation) {
    automation = new Y.Map()
    track.set('automation', automation)
  }
  let lane = automation.get(param)
  if (!lane) {
    lane = new Y.Map()
    automation.set(param, lane)
    lane.set('mode', 'read')
    lane.set('points', new Y.Map())
  }
  return lane
}

/** New tracks' lanes: one per parameter, read mode, no points (as collab.automation.new_lanes). */
export function newLanes () {
  const automation = new Y.Map()
  for (const param of Object.keys(PARAMS)) {
    const lane = new Y.Map()
    automation.set(param, lane)
    lane.set('mode', 'read')
    lane.set('points', new Y.Map())
  }
  return automation
}

export function setMode (project, trackId, param, mode) {
  if (!MODES.includes(mode)) return
  project.doc.transact(() => laneMap(project, trackId, param)?.set('mode', mode))
}

export function addPoint (project, trackId, param, frame, value) {
  const id = newPointId()
  project.doc.transact(() => {
    const lane = laneMap(project, trackId, param)
    if (!lane) return
    const point = new Y.Map()
    lane.get('points').set(id, point)
    point.set('frame', Math.max(0, Math.round(frame)))
    point.set('value', clampValue(param, value))
    point.set('curve', PARAMS[param].hold ? 'hold' : 'linear')
  })
  return id
}

export function movePoint (project, trackId, param, id, frame, value) {
  project.doc.transact(() => {
    const point = laneMap(project, trackId, param)?.get('points').get(id)
    if (!point) return
    const f = Math.max(0, Math.round(frame))
    const v = clampValue(param, value)
    if (point.get('frame') !== f) point.set('frame', f)
    if (point.get('value') !== v) point.set('value', v)
  })
}

export function removePoint (project, trackId, param, id) {
  project.doc.transact(() => laneMap(project, trackId, param)?.get('points').delete(id))
}

// -- the strip under a track ---------------------------------------------------------------

export class AutomationStrip {
  constructor (trackId, { project, editable, timeline, param = 'gain_db' }) {
    Object.assign(this, { trackId, project, editable, timeline, param })
    this.paramSelect = h('select', { class: 'auto-param', 'aria-label': 'Automated parameter',
      onchange: (e) => { this.param = e.target.value; timeline.autoParam.set(trackId, this.param); this.redraw() }
    }, ...Object.entries(PARAMS).map(([key, p]) => h('option', { value: key }, p.label)))
    this.paramSelect.value = param
    this.modeSelect = h('select', { class: 'auto-mode edit', 'aria-label': 'Automation mode', disabled: !editable,
      onchange: (e) => setMode(project, trackId, this.param, e.target.value)
    }, ...MODES.map((m) => h('option', { value: m }, m)))
    this.readout = h('span', { class: 'readout auto-count' })
    this.svg = svg('svg', { class: 'auto-svg', height: String(AUTO_HEIGHT - 1) })
    this.line = svg('polyline', { class: 'auto-line' })
    this.svg.append(this.line)
    this.lane = h('div', { class: 'auto-lane', dataset: { track: trackId } }, this.svg)
    this.el = h('div', { class: 'auto', dataset: { track: trackId } },
      h('div', { class: 'auto-header' }, h('label', { class: 'mini' }, 'auto'), this.paramSelect,
        this.modeSelect, this.readout),
      this.lane)
    this.svg.addEventListener('pointerdown', (e) => this._press(e))
    this.svg.addEventListener('dblclick', (e) => this._delete(e))
    this.svg.addEventListener('contextmenu', (e) => this._delete(e))
  }

  _y (value) {
    const p = PARAMS[this.param]
    const v = Math.min(p.max, Math.max(p.min, value))
    return PAD + (1 - (v - p.min) / (p.max - p.min)) * (AUTO_HEIGHT - 1 - 2 * PAD)
  }

  _value (y) {
    const p = PARAMS[this.param]
    const t = 1 - (y - PAD) / (AUTO_HEIGHT - 1 - 2 * PAD)
    return clampValue(this.param, p.min + Math.min(1, Math.max(0, t)) * (p.max - p.min))
  }

  /** The lane of the shown parameter in the document: {mode, points: [{id, frame, value, curve}]}. */
  _lane () {
    const lane = this.project.roots.tracks.get(this.trackId)?.get('automation')?.get(this.param)
    const points = []
    lane?.get('points')?.forEach((p, id) => points.push({ id, frame: p.get('frame'), value: p.get('value'), curve: p.get('curve') }))
    points.sort((a, b) => a.frame - b.frame || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    return { mode: lane?.get('mode') || 'read', points }
  }

  /** Draw the lane from the document (the track's static value where it has no point). */
  redraw () {
    if (this.dragging) return
    const { mode, points } = this._lane()
    if (this.paramSelect.value !== this.param) this.paramSelect.value = this.param
    if (this.modeSelect.value !== mode) this.modeSelect.value = mode
    this.el.dataset.mode = mode
    this.readout.textContent = `${points.length} pt`
    const width = this.timeline.framesToPx(this.timeline.seconds * this.project.sampleRate)
    this.svg.setAttribute('width', String(Math.ceil(width)))
    const hold = PARAMS[this.param].hold
    const coords = []
    let last = null
    for (const p of points) {
      const x = this.timeline.framesToPx(p.frame)
      const y = this._y(p.value)
      if (last && (hold || last.curve === 'hold')) coords.push(`${x},${last.y}`)
      coords.push(`${x},${y}`)
      last = { y, curve: p.curve }
    }
    if (last) coords.push(`${width},${last.y}`)
    if (points.length) coords.unshift(`0,${this._y(points[0].value)}`)
    this.line.setAttribute('points', coords.join(' '))
    for (const dot of [...this.svg.querySelectorAll('circle')]) dot.remove()
    for (const p of points) {
      this.svg.append(svg('circle', { class: 'auto-point', r: '4', cx: String(this.timeline.framesToPx(p.frame)),
        cy: String(this._y(p.value)), 'data-point': p.id, 'data-frame': String(p.frame), 'data-value': String(p.value) }))
    }
  }

  _where (event) {
    const box = this.svg.getBoundingClientRect()
    return { frame: Math.max(0, Math.round(this.timeline.pxToFrames(event.clientX - box.left))), value: this._value(event.clientY - box.top) }
  }

  /** Press: on a point, drag it; elsewhere, add a point there and drag it. */
  _press (event) {
    if (!this.editable || event.button !== 0) return
    event.preventDefault()
    event.stopPropagation()
    let id = event.target.dataset?.point
    let dot = id ? event.target : null
    if (!id) {
      const at = this._where(event)
      id = addPoint(this.project, this.trackId, this.param, at.frame, at.value)
      this.redraw()
      dot = this.svg.querySelector(`circle[data-point="${CSS.escape(id)}"]`)
    }
    this.dragging = id // the document's echoes do not redraw under the pointer
    let moved = false
    const move = (e) => {
      moved = true
      const next = this._where(e)
      movePoint(this.project, this.trackId, this.param, id, next.frame, next.value)
      if (dot) {
        dot.setAttribute('cx', String(this.timeline.framesToPx(next.frame)))
        dot.setAttribute('cy', String(this._y(next.value)))
      }
    }
    const up = () => {
      window.removeEventListener('pointermove', move)
      window.removeEventListener('pointerup', up)
      this.dragging = null
      if (moved) this.redraw()
    }
    window.addEventListener('pointermove', move)
    window.addEventListener('pointerup', up)
  }

  _delete (event) {
    const id = event.target.dataset?.point
    if (!id) return
    event.preventDefault()
    if (this.editable) removePoint(this.project, this.trackId, this.param, id)
  }
}

// -- writing from the faders ----------------------------------------------------------------

/**
 * Fader moves during playback, in lanes whose mode is touch, latch or write, go to the
 * server's writer in batches (one pass per lane and play run); the points come back
 * through the document like anyone's edit. The fader still sets the static value too.
 */
export class FaderWriter {
  constructor ({ project, transport, notify }) {
    Object.assign(this, { project, transport, notify })
    this.passes = new Map() // `${track}|${param}` -> {id, track, param, start, events, chain, timer}
    this.lastFrame = 0
    this.wasPlaying = false
  }

  /** Every animation frame: where the playhead is (the stop frame of a pass). */
  tick (frame) {
    if (this.project.transport().playing) this.lastFrame = frame
  }

  /**
   * A control moved: `held` while the user holds it (false on release or a click).
   * Answers whether a touch or latch pass took the move (then the lane is what plays, and
   * the static value stays; in write mode the engine plays the static value meanwhile).
   */
  control (trackId, param, value, held) {
    const t = this.project.transport()
    if (!t.playing) return false
    const mode = this.project.roots.tracks.get(trackId)?.get('automation')?.get(param)?.get('mode') || 'read'
    const key = `${trackId}|${param}`
    let pass = this.passes.get(key)
    if (!pass) {
      if (!WRITING.has(mode)) return false
      const bytes = crypto.getRandomValues(new Uint8Array(5))
      pass = { id: `w${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`,
        track: trackId, param, start: Number(t.position) || 0, events: [], chain: Promise.resolve(), timer: null }
      this.passes.set(key, pass)
      pass.mode = mode
    }
    pass.events.push([this.transport.playhead(), clampValue(param, value), Boolean(held)])
    if (!held) this._send(pass)
    else if (!pass.timer) pass.timer = setTimeout(() => this._send(pass), FLUSH_MS)
    return pass.mode !== 'write'
  }

  /** The transport changed: a stop ends every pass at the last played frame. */
  transportChanged () {
    const playing = Boolean(this.project.transport().playing)
    if (!playing) {
      for (const [key, pass] of this.passes) {
        this.passes.delete(key)
        this._send(pass, this.lastFrame)
      }
    }
    this.wasPlaying = playing
  }

  /** Settles once every batch sent so far is answered. */
  settled () {
    return Promise.all([...this.pending || []])
  }

  _send (pass, stop = null) {
    clearTimeout(pass.timer)
    pass.timer = null
    const events = pass.events.splice(0)
    const body = { pass_id: pass.id, track: pass.track, param: pass.param, start: pass.start, events,
      now: this.transport.playhead() }
    if (stop !== null) body.stop = Math.max(stop, ...events.map((e) => e[0]), pass.start)
    this.pending = this.pending || new Set()
    const sent = pass.chain.then(() => api(`/projects/${this.project.projectId}/automation/write`,
      { token: this.project.token, method: 'POST', body }))
      .catch((err) => this.notify(`Automation: ${err.message}`, true))
    pass.chain = sent
    this.pending.add(sent)
    sent.finally(() => this.pending.delete(sent))
  }
}
