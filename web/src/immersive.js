// Immersive audio of the selected track and the project (docs/immersive.md):
//
// - the route of the selected track: none (front pair), 7.1.4 bed channels, or an object;
// - an object's position: a top-view pad (azimuth and distance; front up, the listener in
//   the middle) and an elevation slider, each coordinate written to its own document key
//   (tracks[id].immersive.azimuth ...), so another editor sees the object move live and two
//   people moving different coordinates keep both moves;
// - monitoring: what the live mix (Listen) plays: the stereo mix, or the immersive mix
//   binaural for headphones or folded to stereo (the offer's `monitor`, dawserver/rtc.py);
//   and a preview of the immersive mix from the playhead (GET /projects/ID/render/immersive);
// - "Export ADM BWF": an `adm` bounce job with its progress (bounce.js).
//
// The panel draws the document's current values (an automation lane of a coordinate, when
// one plays, shows here as the value the document holds).
import * as Y from 'yjs'
import { followDrag, h, isHeld, setProp } from './dom.js'
import { api } from './api.js'
import { BounceButton } from './bounce.js'

// dsp_core.immersive.BED_714: the 7.1.4 bed's channels in BS.2051 order, with common names.
export const BED = [['M+030', 'L'], ['M-030', 'R'], ['M+000', 'C'], ['LFE1', 'LFE'], ['M+090', 'Lss'],
  ['M-090', 'Rss'], ['M+135', 'Lrs'], ['M-135', 'Rrs'], ['U+045', 'Ltf'], ['U-045', 'Rtf'],
  ['U+135', 'Ltr'], ['U-135', 'Rtr']]
export const KINDS = { none: 'None (front pair)', bed: 'Bed channels', object: 'Object' }
export const MONITORS = { mix: 'Stereo mix', binaural: 'Immersive: binaural (headphones)', stereo: 'Immersive: stereo' }
const PAD = 140 // px, the pad's side
const RADIUS = PAD / 2 - 10 // px of distance 1 (the loudspeaker sphere)
const PREVIEW_SECONDS = 10
const SVG = 'http://www.w3.org/2000/svg'

function svg (tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag)
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value))
  return el
}

/** Pad coordinates (px from its centre, y down) of an ADM position: azimuth positive to the
 * left, 0 in front (up). */
export function padPoint (azimuth, distance) {
  const a = (azimuth * Math.PI) / 180
  return { x: -Math.sin(a) * distance * RADIUS, y: -Math.cos(a) * distance * RADIUS }
}

/** The ADM azimuth (degrees, [-180, 180], one decimal) and distance ([0, 1]) of a pad point. */
export function padPosition (x, y) {
  const distance = Math.min(1, Math.hypot(x, y) / RADIUS)
  const azimuth = distance === 0 ? 0 : (Math.atan2(-x, -y) * 180) / Math.PI
  return { azimuth: Math.round(azimuth * 10) / 10, distance: Math.round(distance * 1000) / 1000 }
}

/** Where a press at pad point (x, y) puts an object raised `elevation` degrees: the pad
 * draws its floor projection (distance × cos elevation), so the distance is the pad radius
 * over that cosine (at most 1); near ±90° the projection says nothing: the radius as is. */
export function padObjectPosition (x, y, elevation) {
  const position = padPosition(x, y)
  const cos = Math.cos((elevation * Math.PI) / 180)
  if (cos > 0.05) position.distance = Math.min(1, Math.round((position.distance / cos) * 1000) / 1000)
  return position
}

/** The default route of a kind for a track of `channels` channels (null: none). */
export function defaultRoute (kind, channels) {
  if (kind === 'object') return { kind: 'object', azimuth: 0, elevation: 0, distance: 1 }
  if (kind === 'bed') return { kind: 'bed', channels: channels === 2 ? ['M+030', 'M-030'] : ['M+000'] }
  return null
}

// -- document edits (as collab/immersive.py's set_immersive and move_object) --------------

/** Route a track (`route` null clears it); one transaction. */
export function setRoute (project, trackId, route) {
  project.doc.transact(() => {
    const track = project.roots.tracks.get(trackId)
    if (!track) return
    if (!route) {
      track.delete('immersive')
      return
    }
    const entry = new Y.Map()
    track.set('immersive', entry)
    for (const [key, value] of Object.entries(route)) entry.set(key, value)
  })
}

/** Move an object: only the coordinates given, each its own key, only where changed. */
export function moveObject (project, trackId, position) {
  project.doc.transact(() => {
    const entry = project.roots.tracks.get(trackId)?.get('immersive')
    if (!entry || entry.get('kind') !== 'object') return
    for (const [key, value] of Object.entries(position)) {
      if (entry.get(key) !== value) entry.set(key, value)
    }
  })
}

// -- the panel --------------------------------------------------------------------------------

export class ImmersivePanel {
  constructor ({ project, presence, editable, bouncePath, token, notify, playhead, onMonitor = () => {} }) {
    Object.assign(this, { project, presence, editable, notify, playhead, onMonitor })
    this.token = token
    this.trackId = null
    this.signature = ''
    this.title = h('h3', {}, 'Immersive')
    this.export = new BounceButton({ projectId: project.projectId, token, path: bouncePath, editable, notify,
      format: 'adm', label: 'Export ADM BWF', title: 'Render the 7.1.4 bed and the objects to an ADM BWF file' })
    this.monitor = h('select', { class: 'immersive-monitor', 'aria-label': 'Monitoring layout' },
      ...Object.entries(MONITORS).map(([value, label]) => h('option', { value }, label)))
    this.monitor.value = MONITORS[localStorage.getItem('daw:monitor')] ? localStorage.getItem('daw:monitor') : 'mix'
    this.previewButton = h('button', { class: 'immersive-preview', title: `Play ${PREVIEW_SECONDS} s of the immersive mix from the playhead`,
      onclick: () => this.preview() }, 'Preview')
    this.monitor.addEventListener('change', () => {
      localStorage.setItem('daw:monitor', this.monitor.value)
      this.previewButton.disabled = this.monitor.value === 'mix'
      this.onMonitor(this.monitor.value)
    })
    this.previewButton.disabled = this.monitor.value === 'mix'
    this.body = h('div', { class: 'immersive-body' })
    this.el = h('section', { class: 'panel immersive' },
      h('div', { class: 'panel-head' }, this.title),
      h('div', { class: 'immersive-project' }, this.monitor, this.previewButton, this.export.el),
      this.body)
    this.context = null
    this.playing = null
  }

  set token (value) {
    this._token = value
    if (this.export) this.export.token = value
  }

  get token () { return this._token }

  show (trackId) {
    this.trackId = trackId
    this.update()
  }

  _track () {
    const track = this.trackId ? this.project.roots.tracks.get(this.trackId) : null
    return track ? { map: track, json: track.toJSON() } : null
  }

  update () {
    const track = this._track()
    if (!track) {
      this.signature = ''
      this.body.replaceChildren(h('p', { class: 'hint' }, 'Select a track to route it to the bed or place it as an object.'))
      return
    }
    const route = track.json.immersive || null
    const kind = route?.kind === 'bed' || route?.kind === 'object' ? route.kind : 'none'
    const channels = Number(track.json.channels) === 2 ? 2 : 1
    const signature = `${this.trackId}|${kind}|${channels}`
    if (signature !== this.signature) this._build(track.json, kind, channels)
    setProp(this.kindSelect, 'value', kind)
    if (kind === 'bed') {
      const chosen = Array.isArray(route.channels) ? route.channels : []
      this.bedSelects.forEach((select, i) => setProp(select, 'value', chosen[i] || ''))
    }
    if (kind === 'object') this._drawObject(route)
  }

  _build (track, kind, channels) {
    this.signature = `${track.id}|${kind}|${channels}`
    this.kindSelect = h('select', { class: 'edit immersive-kind', disabled: !this.editable, 'aria-label': 'Immersive route',
      onchange: (e) => setRoute(this.project, track.id, defaultRoute(e.target.value, channels)) },
    ...Object.entries(KINDS).map(([value, label]) => h('option', { value }, label)))
    this.presence.bind(this.kindSelect, `track:${track.id}:immersive`)
    const kindRow = h('label', { class: 'param' }, h('span', {}, track.name || track.id), this.kindSelect)
    if (kind === 'object') { // the pad beside the selector, so it fits the panel's height
      this.bedSelects = []
      this.body.replaceChildren(this._objectControls(track.id, kindRow))
      return
    }
    const rows = [kindRow]
    this.bedSelects = []
    if (kind === 'bed') {
      for (let i = 0; i < channels; i++) {
        const select = h('select', { class: 'edit immersive-bed', disabled: !this.editable, dataset: { index: String(i) },
          'aria-label': `Bed channel of track channel ${i + 1}`,
          onchange: () => this._setBed(track.id) },
        ...BED.map(([label, name]) => h('option', { value: label }, `${name} (${label})`)))
        this.bedSelects.push(select)
        rows.push(h('label', { class: 'param' }, h('span', {}, channels === 2 ? ['left', 'right'][i] : 'channel'), select))
      }
    }
    this.body.replaceChildren(...rows)
  }

  _setBed (trackId) {
    const chosen = this.bedSelects.map((s) => s.value)
    if (new Set(chosen).size !== chosen.length) {
      this.notify('Each channel of a track feeds its own bed channel: choose two different ones', true)
      this.update()
      return
    }
    this.project.doc.transact(() => this.project.roots.tracks.get(trackId)?.get('immersive')?.set('channels', chosen))
  }

  _objectControls (trackId, kindRow) {
    const c = PAD / 2
    this.pad = svg('svg', { class: 'immersive-pad', width: PAD, height: PAD, viewBox: `0 0 ${PAD} ${PAD}`,
      'data-track': trackId, role: 'img', 'aria-label': 'Object position, top view, front up' })
    this.pad.append(svg('circle', { class: 'pad-ring', cx: c, cy: c, r: RADIUS }),
      svg('circle', { class: 'pad-ring inner', cx: c, cy: c, r: RADIUS / 2 }))
    for (const [label, name] of BED) {
      if (label === 'LFE1') continue
      const azimuth = Number(label.slice(1))
      const at = padPoint(azimuth, 1)
      this.pad.append(svg('rect', { class: `pad-speaker${label[0] === 'U' ? ' upper' : ''}`, x: c + at.x - 3,
        y: c + at.y - 3, width: 6, height: 6 }))
      const text = svg('text', { class: 'pad-label', x: c + at.x * 0.86, y: c + at.y * 0.86 + 3 })
      text.textContent = label[0] === 'U' ? '' : name
      this.pad.append(text)
    }
    this.pad.append(svg('circle', { class: 'pad-head', cx: c, cy: c, r: 5 }))
    this.dot = svg('circle', { class: 'pad-object', cx: c, cy: c, r: 7 })
    this.pad.append(this.dot)
    this.pad.addEventListener('pointerdown', (e) => this._press(e, trackId))
    this.presence.bind(this.pad, `track:${trackId}:position`)
    this.elevation = h('input', { type: 'range', class: 'edit immersive-elevation', min: -90, max: 90, step: 1,
      disabled: !this.editable, 'aria-label': 'Elevation',
      oninput: (e) => moveObject(this.project, trackId, { elevation: Number(e.target.value) }) })
    this.presence.bind(this.elevation, `track:${trackId}:elevation`)
    this.readout = h('span', { class: 'readout immersive-readout' })
    return h('div', { class: 'immersive-object' }, this.pad,
      h('div', { class: 'immersive-side' }, kindRow,
        h('label', { class: 'param' }, h('span', {}, 'elevation'), this.elevation), this.readout))
  }

  _drawObject (route) {
    const azimuth = Number(route.azimuth) || 0
    const elevation = Number(route.elevation) || 0
    const distance = route.distance === undefined ? 1 : Number(route.distance)
    if (!this.dragging) {
      // the pad shows the position's projection on the floor (a raised object sits inward)
      const at = padPoint(azimuth, distance * Math.cos((elevation * Math.PI) / 180))
      this.dot.setAttribute('cx', String(PAD / 2 + at.x))
      this.dot.setAttribute('cy', String(PAD / 2 + at.y))
    }
    Object.assign(this.dot.dataset, { azimuth: String(azimuth), elevation: String(elevation), distance: String(distance) })
    if (!isHeld(this.elevation)) {
      setProp(this.elevation, 'value', String(elevation))
    }
    this.readout.textContent = `az ${azimuth.toFixed(1)}°  el ${elevation.toFixed(0)}°  dist ${distance.toFixed(2)}`
  }

  /** Press on the pad: the object jumps there and follows the pointer until release. */
  _press (event, trackId) {
    if (!this.editable || event.button !== 0) return
    event.preventDefault()
    const place = (e) => {
      const box = this.pad.getBoundingClientRect()
      const x = e.clientX - box.left - box.width / 2
      const y = e.clientY - box.top - box.height / 2
      const elevation = Number(this.dot.dataset.elevation) || 0
      const position = padObjectPosition(x * PAD / box.width, y * PAD / box.height, elevation)
      const at = padPoint(position.azimuth, position.distance * Math.cos((elevation * Math.PI) / 180))
      this.dot.setAttribute('cx', String(PAD / 2 + at.x))
      this.dot.setAttribute('cy', String(PAD / 2 + at.y))
      moveObject(this.project, trackId, position)
    }
    this.dragging = true
    place(event)
    followDrag(place, () => { // each move was written: a cancel keeps where it got to
      this.dragging = false
      this.update()
    })
  }

  /** Play PREVIEW_SECONDS of the immersive mix from the playhead in the chosen layout
   * (a second press stops it). */
  async preview () {
    if (this.playing) {
      this.playing.stop()
      return
    }
    const rate = this.project.sampleRate
    const start = Math.max(0, Math.round(this.playhead()))
    const query = `layout=${encodeURIComponent(this.monitor.value)}&start=${start}&frames=${PREVIEW_SECONDS * rate}`
    this.previewButton.disabled = true
    try {
      const response = await api(`/projects/${encodeURIComponent(this.project.projectId)}/render/immersive?${query}`,
        { token: this.token, raw: true })
      this.context = this.context || new AudioContext()
      const buffer = await this.context.decodeAudioData(await response.arrayBuffer())
      const source = this.context.createBufferSource()
      source.buffer = buffer
      source.connect(this.context.destination)
      source.onended = () => {
        this.playing = null
        this.previewButton.textContent = 'Preview'
      }
      source.start()
      this.playing = source
      this.previewButton.textContent = 'Stop'
    } catch (err) {
      this.notify(`Preview: ${err.message}`, true)
    } finally {
      this.previewButton.disabled = this.monitor.value === 'mix'
    }
  }
}
