// Automation lanes under a track, an aux bus or the master (the owner: a track or bus id,
// tracks first, as the server's ProjectDocument resolves it): a strip with the lane's
// breakpoints (draw, drag, delete), its parameter and its mode (off, read, touch, latch,
// write); and the fader writer, which
// sends fader moves during playback to the server's automation writer
// (POST /projects/ID/automation/write, collab/automation_write.py), so the page and the
// desktop client write automation through one implementation.
//
// The strips are view state: hidden by default, mounted only with their (mounted) row.
import { followDrag, h } from './dom.js'
import { api } from './api.js'
import { PARAMS as FX_PARAMS } from './effects.js'
import { controlSpecs } from './lv2.js'
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
// An immersive object's coordinates (dsp_core.automation_targets.OBJECT_PARAMS).
const OBJECT_AXES = { azimuth: [-180, 180], elevation: [-90, 90], distance: [0, 1] }
// A bus's or the master's fader lanes (no mute: dsp_core.automation_targets.BUS_PARAMS).
const BUS_PARAMS = { gain_db: PARAMS.gain_db, pan: PARAMS.pan }
const FLAT = '@' // lanes other than a track's fader are flat entries: `${param}@` and `${param}@${id}`
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

/** The owner of lanes: {map, track} (a track's map, else a bus's or the master's). */
export function laneOwner (project, ownerId) {
  const track = project.roots.tracks.get(ownerId)
  if (track) return { map: track, track: true }
  const bus = project.roots.buses.get(ownerId)
  return { map: bus || null, track: false }
}

/**
 * Every lane a track, aux bus or the master can have, key -> {label, min, max, low, high,
 * hold}, as dsp_core/automation_targets.py: a track's fader, its sends (`send:BUS`), its
 * effects' parameters (`fx:ID:PARAM`) and, for an immersive object, its position
 * (`object:AXIS`); a bus's fader (volume and pan, no mute) and its effects' parameters.
 */
export function laneSpecs (project, ownerId) {
  const { map, track: isTrack } = laneOwner(project, ownerId)
  if (!map) return { ...PARAMS }
  const owner = map.toJSON()
  const specs = isTrack ? { ...PARAMS } : { ...BUS_PARAMS }
  for (const bus of Object.keys((isTrack && owner.sends) || {}).sort()) {
    const name = project.roots.buses.get(bus)?.get('name') || bus
    specs[`send:${bus}`] = { label: `Send → ${name}`, min: -60, max: 12, low: -144, high: 24 }
  }
  for (const effect of owner.effects || []) {
    if (!effect.id) continue
    for (const [name, low, high] of FX_PARAMS[effect.kind] || []) {
      specs[`fx:${effect.id}:${name}`] = { label: `${effect.kind} ${effect.id}: ${name}`, min: low, max: high, low, high }
    }
    if (effect.kind === 'lv2') { // its control ports with both bounds (docs/lv2.md)
      project.plugins?.ensure()
      const info = project.plugins?.plugin(effect.params?.uri)
      for (const { symbol, name, low, high, automatable } of controlSpecs(info, project.sampleRate)) {
        if (automatable) specs[`fx:${effect.id}:${symbol}`] = { label: `${info.name} ${effect.id}: ${name}`, min: low, max: high, low, high }
      }
    }
  }
  if (isTrack && owner.immersive?.kind === 'object') {
    for (const [axis, [low, high]] of Object.entries(OBJECT_AXES)) {
      specs[`object:${axis}`] = { label: `Object ${axis}`, min: low, max: high, low, high }
    }
  }
  return specs
}

/** A value a parameter's lane can hold (mute: 0 or 1). */
export function clampValue (param, value, spec = PARAMS[param]) {
  const p = spec || { low: -Infinity, high: Infinity }
  const v = Math.min(p.high, Math.max(p.low, Number(value) || 0))
  return p.hold ? (v >= 0.5 ? 1 : 0) : v
}

// -- document edits (as collab/schema.py's add/move/remove_automation_point) --------------

/** The `automation` map of a track or bus (created for owners written without lanes). */
function automationMap (project, ownerId) {
  const { map } = laneOwner(project, ownerId)
  if (!map) return null
  let automation = map.get('automation')
  if (!automation) {
    automation = new Y.Map()
    map.set('automation', automation)
  }
  return automation
}

/** Whether `param`'s lane is a map {mode, points} (a track's fader) or flat entries. */
function isFlat (project, ownerId, param) {
  return !(param in PARAMS && laneOwner(project, ownerId).track)
}

/**
 * A lane's mode and points, as collab/automation.py keeps them: a track's fader lanes as a
 * map {mode, points}; every other lane (a bus's fader too) flat in the owner's automation
 * map (so two peers' first points of a new lane never collide).
 */
function laneOps (project, ownerId, param) {
  const automation = automationMap(project, ownerId)
  if (!automation) return null
  if (!isFlat(project, ownerId, param)) {
    let lane = automation.get(param)
    if (!lane) {
      lane = new Y.Map()
      automation.set(param, lane)
      lane.set('mode', 'read')
      lane.set('points', new Y.Map())
    }
    return {
      setMode: (mode) => lane.set('mode', mode),
      point: (id) => lane.get('points').get(id),
      put: (id, point) => lane.get('points').set(id, point),
      remove: (id) => lane.get('points').delete(id)
    }
  }
  const prefix = `${param}${FLAT}`
  return {
    setMode: (mode) => automation.set(prefix, mode),
    point: (id) => automation.get(prefix + id),
    put: (id, point) => automation.set(prefix + id, point),
    remove: (id) => automation.delete(prefix + id)
  }
}

/** A lane as plain data: {mode, points: [{id, frame, value, curve}]} in time order. */
export function readLane (project, ownerId, param) {
  const automation = laneOwner(project, ownerId).map?.get('automation')
  const points = []
  let mode = 'read'
  if (!isFlat(project, ownerId, param)) {
    const lane = automation?.get(param)
    mode = lane?.get('mode') || 'read'
    lane?.get('points')?.forEach((p, id) => points.push({ id, frame: p.get('frame'), value: p.get('value'), curve: p.get('curve') }))
  } else {
    const prefix = `${param}${FLAT}`
    automation?.forEach((entry, key) => {
      if (key === prefix) mode = entry
      else if (key.startsWith(prefix)) points.push({ id: key.slice(prefix.length), frame: entry.get('frame'), value: entry.get('value'), curve: entry.get('curve') })
    })
  }
  points.sort((a, b) => a.frame - b.frame || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return { mode, points }
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

export function setMode (project, ownerId, param, mode) {
  if (!MODES.includes(mode)) return
  project.doc.transact(() => laneOps(project, ownerId, param)?.setMode(mode))
}

export function addPoint (project, ownerId, param, frame, value) {
  const id = newPointId()
  const spec = laneSpecs(project, ownerId)[param]
  if (!spec) return null
  project.doc.transact(() => {
    const lane = laneOps(project, ownerId, param)
    if (!lane) return
    const point = new Y.Map()
    lane.put(id, point)
    point.set('frame', Math.max(0, Math.round(frame)))
    point.set('value', clampValue(param, value, spec))
    point.set('curve', spec.hold ? 'hold' : 'linear')
  })
  return id
}

export function movePoint (project, ownerId, param, id, frame, value) {
  const spec = laneSpecs(project, ownerId)[param]
  project.doc.transact(() => {
    const point = laneOps(project, ownerId, param)?.point(id)
    if (!point || !spec) return
    const f = Math.max(0, Math.round(frame))
    const v = clampValue(param, value, spec)
    if (point.get('frame') !== f) point.set('frame', f)
    if (point.get('value') !== v) point.set('value', v)
  })
}

export function removePoint (project, ownerId, param, id) {
  project.doc.transact(() => laneOps(project, ownerId, param)?.remove(id))
}

// -- the strip under a track ---------------------------------------------------------------

/**
 * The strip of one owner's lanes: a track's (under its row) or an aux bus's or the
 * master's (under its bus row). `onParam` keeps the picked lane while the strip is
 * unmounted (view state).
 */
export class AutomationStrip {
  constructor (ownerId, { project, editable, timeline, param = 'gain_db', onParam = () => {} }) {
    Object.assign(this, { ownerId, project, editable, timeline, param })
    const tag = laneOwner(project, ownerId).track ? { track: ownerId } : { bus: ownerId }
    this.paramSelect = h('select', { class: 'auto-param', 'aria-label': 'Automated parameter',
      onchange: (e) => { this.param = e.target.value; onParam(this.param); this.redraw() }
    })
    this.specs = {}
    this.choices = ''
    this._pickerOptions()
    this.modeSelect = h('select', { class: 'auto-mode edit', 'aria-label': 'Automation mode', disabled: !editable,
      onchange: (e) => setMode(project, ownerId, this.param, e.target.value)
    }, ...MODES.map((m) => h('option', { value: m }, m)))
    this.readout = h('span', { class: 'readout auto-count' })
    this.svg = svg('svg', { class: 'auto-svg', height: String(AUTO_HEIGHT - 1) })
    this.line = svg('polyline', { class: 'auto-line' })
    this.svg.append(this.line)
    this.lane = h('div', { class: 'auto-lane', dataset: tag }, this.svg)
    this.el = h('div', { class: 'auto', dataset: tag },
      h('div', { class: 'auto-header' }, h('label', { class: 'mini' }, 'auto'), this.paramSelect,
        this.modeSelect, this.readout),
      this.lane)
    this.svg.addEventListener('pointerdown', (e) => this._press(e))
    this.svg.addEventListener('dblclick', (e) => this._delete(e))
    this.svg.addEventListener('contextmenu', (e) => this._delete(e))
  }

  /** The lane picker lists the owner's lanes as they are now (sends, effects come and go). */
  _pickerOptions () {
    this.specs = laneSpecs(this.project, this.ownerId)
    if (!this.specs[this.param]) this.param = 'gain_db'
    const choices = Object.keys(this.specs).join('|')
    if (choices !== this.choices) {
      this.choices = choices
      this.paramSelect.replaceChildren(...Object.entries(this.specs).map(([key, p]) => h('option', { value: key }, p.label)))
    }
  }

  _y (value) {
    const p = this.specs[this.param]
    const v = Math.min(p.max, Math.max(p.min, value))
    return PAD + (1 - (v - p.min) / (p.max - p.min)) * (AUTO_HEIGHT - 1 - 2 * PAD)
  }

  _value (y) {
    const p = this.specs[this.param]
    const t = 1 - (y - PAD) / (AUTO_HEIGHT - 1 - 2 * PAD)
    return clampValue(this.param, p.min + Math.min(1, Math.max(0, t)) * (p.max - p.min), p)
  }

  /** The lane of the shown parameter in the document: {mode, points: [{id, frame, value, curve}]}. */
  _lane () {
    return readLane(this.project, this.ownerId, this.param)
  }

  /** Draw the lane from the document. */
  redraw () {
    if (this.dragging) return
    this._pickerOptions()
    const { mode, points } = this._lane()
    if (this.paramSelect.value !== this.param) this.paramSelect.value = this.param
    if (this.modeSelect.value !== mode) this.modeSelect.value = mode
    this.el.dataset.mode = mode
    this.readout.textContent = `${points.length} pt`
    const width = this.timeline.framesToPx(this.timeline.seconds * this.project.sampleRate)
    this.svg.setAttribute('width', String(Math.ceil(width)))
    const hold = this.specs[this.param].hold
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
      id = addPoint(this.project, this.ownerId, this.param, at.frame, at.value)
      this.redraw()
      dot = this.svg.querySelector(`circle[data-point="${CSS.escape(id)}"]`)
    }
    this.dragging = id // the document's echoes do not redraw under the pointer
    let moved = false
    const move = (e) => {
      moved = true
      const next = this._where(e)
      movePoint(this.project, this.ownerId, this.param, id, next.frame, next.value)
      if (dot) {
        dot.setAttribute('cx', String(this.timeline.framesToPx(next.frame)))
        dot.setAttribute('cy', String(this._y(next.value)))
      }
    }
    followDrag(move, () => { // each move was written: a cancel keeps where it got to
      this.dragging = null
      if (moved) this.redraw()
    })
  }

  _delete (event) {
    const id = event.target.dataset?.point
    if (!id) return
    event.preventDefault()
    if (this.editable) removePoint(this.project, this.ownerId, this.param, id)
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
    const mode = readLane(this.project, trackId, param).mode
    const key = `${trackId}|${param}`
    let pass = this.passes.get(key)
    if (pass && !WRITING.has(mode)) { // set to off or read meanwhile: the pass ends here
      this.passes.delete(key)
      this._send(pass, pass.last ?? pass.start)
      pass = null
    }
    if (!pass) {
      if (!WRITING.has(mode)) return false
      const bytes = crypto.getRandomValues(new Uint8Array(5))
      pass = { id: `w${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`,
        track: trackId, param, start: Number(t.position) || 0, events: [], chain: Promise.resolve(), timer: null }
      this.passes.set(key, pass)
      pass.mode = mode
    }
    const frame = this.transport.playhead()
    pass.last = Math.max(pass.last ?? frame, frame) // the stop is never before a sent move
    pass.value = clampValue(param, value)
    pass.events.push([frame, pass.value, Boolean(held)])
    if (!held) this._send(pass)
    else if (!pass.timer) pass.timer = setTimeout(() => this._send(pass), FLUSH_MS)
    return pass.mode !== 'write'
  }

  /** The value a running pass last wrote for `param` of `trackId` (what plays there
   * now), or null when none runs. */
  written (trackId, param) {
    return this.passes.get(`${trackId}|${param}`)?.value ?? null
  }

  /** The transport changed: a stop ends every pass at the last played frame. Answers
   * whether passes ended. */
  transportChanged () {
    const playing = Boolean(this.project.transport().playing)
    const ended = !playing && this.passes.size > 0
    if (!playing) {
      for (const [key, pass] of this.passes) {
        this.passes.delete(key)
        this._send(pass, this.lastFrame)
      }
    }
    this.wasPlaying = playing
    return ended
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
    // the last tick can be behind a move (a loaded page paints seldom): a stop there
    // would cut the pass's later points, the release among them
    if (stop !== null) body.stop = Math.max(stop, pass.last ?? stop, pass.start)
    this.pending = this.pending || new Set()
    const key = `${pass.track}|${pass.param}`
    const sent = pass.chain.then(() => api(`/projects/${this.project.projectId}/automation/write`,
      { token: this.project.token, method: 'POST', body }))
      .then((answer) => { // the server ended the pass (a peer set the lane off or read)
        if (answer?.done && this.passes.get(key) === pass) this.passes.delete(key)
      })
      .catch((err) => this.notify(`Automation: ${err.message}`, true))
    pass.chain = sent
    this.pending.add(sent)
    sent.finally(() => this.pending.delete(sent))
  }
}
