// Track lanes on a timeline: headers, clips with waveforms, ruler, playheads, zoom/scroll,
// clip dragging and audio drops. Zoom and scroll are view state; clips live in the document.
//
// The lanes are virtual: only the rows in view (and a few around them) are in the DOM,
// and in those only the clips within a screen's width of the view; scrolling mounts the
// rest, read from the document then, so an edit to a track nobody sees costs nothing
// and shows when it is scrolled to. Rows sit at fixed heights (ROW_HEIGHT), so where
// everything goes is arithmetic on the scroll position and the timeline's size, which
// scroll events and a ResizeObserver report: no layout reads (but one, at the start).
// A row whose automation strip is open (automation.js, hidden by default) is AUTO_HEIGHT
// taller; row tops are a running sum over the track order, found by binary search.
// Below the tracks, a short row per aux bus and the master (always mounted: there are
// few): its name selects it, a fader and pan set its level, its automation strip opens as a track's.
import { deferWhileHeld, followDrag, h, heldControl } from './dom.js'
import { AUTO_HEIGHT, AutomationStrip } from './automation.js'
import { BusHeader, TrackHeader } from './tracks.js'
import { drawWaveform } from './peaks.js'
import { markTouched } from './presence.js'
import { bindRulerEdits, timeChangeFlags } from './time_changes.js'
import { bindWarpMarkers, drawWarpMarkers, pressWarpMarker } from './warp_markers.js'
import { beatFrames, snapTo } from './warp_snap.js'

export const HEADER_WIDTH = 290
export const ROW_HEIGHT = 68 // px per track row, border included (--row-height)
const RULER_HEIGHT = 26
const BUS_ROW_HEIGHT = 34 // px per bus row, border included (.bus-row's --row-height)
const OVERSCAN_ROWS = 4 // rows kept mounted above and below the view (1 until the first
// rows show their waveforms: the first paint has less to do)
const MIN_ZOOM = 2
const MAX_ZOOM = 2000
const DRAG_THRESHOLD = 3
let CLIP = null // a blank clip element, cloned for each clip

export class Timeline {
  constructor ({ project, presence, editable, peaks, names, onSelectTrack, onSelectClip, onSelectBus = () => {}, onDropFiles, onSeek, onRefuse, onControl, controlValue = () => null }) {
    Object.assign(this, { project, presence, editable, peaks, names, onSelectTrack, onSelectClip, onSelectBus, onDropFiles, onSeek, onRefuse, onControl, controlValue })
    this.autoOpen = new Set() // track ids whose automation strip is shown (view state)
    this.bypassedOf = () => [] // track id -> why its lv2 plug-ins play bypassed (bypassed.js)
    this.autoParam = new Map() // track id -> the parameter its strip shows
    this.busOpen = new Set() // bus ids (aux buses, 'master') whose automation strip is shown
    this.busParam = new Map() // bus id -> the parameter its strip shows
    this.busRows = new Map() // bus id -> {row, header (BusHeader), strip}
    this.busKey = '' // the bus rows drawn: ids, names and open strips
    this.tops = [] // row tops in px, by display index (plus the total height at the end)
    this.zoom = 60 // pixels per second
    this.headers = new Map() // mounted rows: track id -> TrackHeader (with .row and .lane)
    this.lanes = new Map() // mounted rows: track id -> lane element
    this.clipEls = new Map() // mounted clips: clip id -> element
    this.order = [] // every track id, in display order
    this.orderOf = new Map() // track id -> its document `order` (a change re-sorts)
    this.trackClips = new Map() // track id -> Set of clip ids on it
    this.clipTrack = new Map() // clip id -> track id
    this.end = 0 // frames where the last clip ends
    this.span = null // what is mounted: {first, last} rows, {x0, x1} lane pixels
    this.overscan = 1
    this.scroll = { top: 0, left: 0 } // kept from scroll events, so rendering reads no layout
    this.view = null // the timeline's size, from the ResizeObserver
    this.pending = new Set() // waveform draws waiting for peaks
    this.dragging = null
    this.selectedTrack = null
    this.selectedClip = null
    this.selectedBus = null // an aux bus or the master selected from its row or the Effects panel
    this.ruler = h('div', { class: 'ruler', onpointerdown: (e) => this._seek(e) })
    bindRulerEdits(this) // tempo and meter changes (web/src/time_changes.js)
    this.rulerRow = h('div', { class: 'row ruler-row' },
      h('div', { class: 'track-header corner' },
        h('button', { class: 'zoom-out', title: 'Zoom out (-)', onclick: () => this.setZoom(this.zoom / 1.5) }, '−'),
        h('button', { class: 'zoom-in', title: 'Zoom in (+)', onclick: () => this.setZoom(this.zoom * 1.5) }, '+'),
        h('button', { class: 'add-track edit', title: 'Add a track', disabled: !editable,
          onclick: () => this.project.addTrack() }, '+ Track')),
      this.ruler)
    this.rowsEl = h('div', { class: 'rows' })
    this.busRowsEl = h('div', { class: 'bus-rows' })
    this.overlay = h('div', { class: 'playheads' })
    this.playheads = new Map() // 'me' or a client id -> line element
    this.el = h('div', { class: 'timeline', tabindex: '-1' }, this.rulerRow, this.rowsEl, this.busRowsEl, this.overlay)
    this.el.style.setProperty('--row-height', `${ROW_HEIGHT}px`)
    this.el.addEventListener('wheel', (e) => {
      if (!e.ctrlKey && !e.metaKey) return
      e.preventDefault()
      this.setZoom(this.zoom * (e.deltaY < 0 ? 1.2 : 1 / 1.2), e.clientX)
    }, { passive: false })
    this.rowsEl.addEventListener('pointerdown', (e) => this._pressClip(e))
    bindWarpMarkers(this, this.rowsEl) // add, nudge and remove warp markers (web/src/warp_markers.js)
    this.el.addEventListener('scroll', () => {
      this.scroll = { top: this.el.scrollTop, left: this.el.scrollLeft }
      this._reconcile()
    }, { passive: true })
    new ResizeObserver(([entry]) => {
      this.view = { width: entry.contentRect.width, height: entry.contentRect.height }
      this._reconcile()
    }).observe(this.el)
  }

  get sampleRate () { return this.project.sampleRate }

  framesToPx (frames) { return (frames / this.sampleRate) * this.zoom }

  pxToFrames (px) { return (px / this.zoom) * this.sampleRate }

  /** Change zoom, keeping the time under `clientX` (or the left edge) in place. */
  setZoom (zoom, clientX) {
    const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom))
    const anchor = clientX === undefined ? HEADER_WIDTH : clientX - this.el.getBoundingClientRect().left
    const seconds = (this.scroll.left + anchor - HEADER_WIDTH) / this.zoom
    this.zoom = next
    this.scroll.left = Math.max(0, seconds * this.zoom - anchor + HEADER_WIDTH)
    this.render()
    this.el.scrollLeft = this.scroll.left
  }

  /** Show the rows of track `trackId` (scrolls vertically only if it is out of view). */
  reveal (trackId) {
    const index = this.order.indexOf(trackId)
    if (index < 0 || !this.view) return
    const top = this.tops[index]
    const bottom = this.tops[index + 1] + RULER_HEIGHT
    if (top < this.scroll.top) this.el.scrollTop = top
    else if (bottom > this.scroll.top + this.view.height) this.el.scrollTop = bottom - this.view.height
  }

  /**
   * Show document changes: `{full, tracks: Set, clips: Set, ruler}`. Only the rows and
   * clips named are touched, and only where they are mounted, so one fader move costs the
   * same with 8 or 512 tracks.
   */
  update ({ full = false, tracks = new Set(), clips = new Set(), ruler = false, buses = false }) {
    if (full || !this.seconds) return this.render()
    if (buses) this._renderBuses()
    for (const id of tracks) {
      const map = this.project.roots.tracks.get(id)
      if (!map || map.get('order') !== this.orderOf.get(id)) return this.render()
      const header = this.headers.get(id)
      if (header) this._showTrack(header, map.toJSON())
    }
    if (tracks.size) this._drawStrips(tracks)
    for (const id of clips) {
      const map = this.project.roots.clips.get(id)
      this._indexClip(id, map)
      const clip = map ? map.toJSON() : null
      if (clip && (clip.position + clip.length) / this.sampleRate + 8 > this.seconds) return this.render()
      this._updateClip(id, clip)
    }
    if (ruler) this._renderRuler(this.seconds)
  }

  /** Write the mounted clips' labels again (their audio's names have arrived). */
  relabel () {
    for (const [id, el] of this.clipEls) {
      const clip = this.project.clip(id)
      if (clip) this._placeClip(el, clip)
    }
  }

  /** Reconcile the mounted rows and clips with the whole document. */
  render () {
    this._index()
    const seconds = Math.max(this.end / this.sampleRate + 8, 30)
    this.seconds = seconds
    this.el.style.setProperty('--lane-width', `${Math.ceil(seconds * this.zoom)}px`)
    this._layout()
    this._renderRuler(seconds)
    this._reconcile(true)
    this._drawStrips()
    this._renderBuses()
  }

  /** Show or hide the automation strip of an aux bus or the master. */
  toggleBusAutomation (busId) {
    if (this.busOpen.has(busId)) this.busOpen.delete(busId)
    else this.busOpen.add(busId)
    this._renderBuses()
  }

  /**
   * The bus rows under the tracks: each aux bus (by name) and the master last, with its
   * name (a click selects it), fader, pan, A toggle and, when open, its automation strip.
   * Rebuilt when the buses, their names or the open strips change; else their faders show
   * the document's values and the open strips are redrawn.
   */
  _renderBuses () {
    const buses = [...this.project.roots.buses.entries()]
      .map(([id, bus]) => [id, id === 'master' ? 'Master' : bus.get('name') || id])
      .sort((a, b) => (a[0] === 'master') - (b[0] === 'master') || a[1].localeCompare(b[1]))
    const key = JSON.stringify([buses, [...this.busOpen].sort()])
    // a collaborator's new bus waits while this user rides a fader of a bus still there
    const held = (control) => this.project.roots.buses.has(control.closest('[data-bus]')?.dataset.bus)
    if (key === this.busKey || deferWhileHeld(this.busRowsEl, held, () => this._renderBuses())) {
      for (const [id, { header, strip }] of this.busRows) {
        header.mix.show(this.project.roots.buses.get(id)?.toJSON() || {})
        strip?.redraw()
      }
      return
    }
    this.busKey = key
    this.busRows.clear()
    this.busRowsEl.replaceChildren(...buses.map(([id, name]) => {
      const open = this.busOpen.has(id)
      const master = id === 'master'
      const header = new BusHeader(id, { project: this.project, presence: this.presence, editable: this.editable,
        onSelect: (busId) => this.onSelectBus(busId), onControl: this.onControl,
        onAutomation: (busId) => this.toggleBusAutomation(busId) })
      header.update(this.project.roots.buses.get(id).toJSON(), name, id === this.selectedBus, open)
      const row = h('div', { class: `row bus-row${master ? ' master' : ''}`, dataset: { bus: id } },
        header.el, h('div', { class: 'lane bus-lane' }))
      let strip = null
      if (open) {
        strip = new AutomationStrip(id, { project: this.project, editable: this.editable, timeline: this,
          param: this.busParam.get(id), onParam: (param) => this.busParam.set(id, param) })
        row.append(strip.el)
        row.classList.add('with-auto')
        strip.redraw()
      }
      this.busRows.set(id, { row, header, strip })
      return row
    }))
    this._overlayHeight()
  }

  /** Show or hide the automation strip under a track. */
  toggleAutomation (trackId) {
    if (this.autoOpen.has(trackId)) this.autoOpen.delete(trackId)
    else this.autoOpen.add(trackId)
    this._layout()
    const header = this.headers.get(trackId)
    if (header) {
      this._unmountRow(trackId)
      this.span = null
    }
    this._reconcile(true)
    this._drawStrips(new Set([trackId]))
  }

  /** Row tops from the track order and the open strips; the rows' total height. */
  _layout () {
    const tops = new Array(this.order.length + 1)
    let y = 0
    for (let i = 0; i < this.order.length; i++) {
      tops[i] = y
      y += ROW_HEIGHT + (this.autoOpen.size && this.autoOpen.has(this.order[i]) ? AUTO_HEIGHT : 0)
    }
    tops[this.order.length] = y
    this.tops = tops
    this.rowsEl.style.height = `${y}px`
    this._overlayHeight()
  }

  /** The playheads span the ruler, the track rows and the bus rows. */
  _overlayHeight () {
    const buses = this.busRows.size * BUS_ROW_HEIGHT + [...this.busRows.values()].filter((b) => b.strip).length * AUTO_HEIGHT
    this.overlay.style.height = `${RULER_HEIGHT + (this.tops[this.tops.length - 1] || 0) + buses}px`
  }

  /** The display index of the row at `y` px from the top of the rows. */
  _rowAt (y) {
    let lo = 0
    let hi = this.order.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.tops[mid + 1] <= y) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Redraw the open strips of mounted rows (of `tracks` only, when given). */
  _drawStrips (tracks = null) {
    if (!this.autoOpen.size) return
    for (const id of tracks || this.autoOpen) this.headers.get(id)?.strip?.redraw()
  }

  /** Resolves once every mounted clip shows its waveform (or has none to show). */
  async settled () {
    while (this.pending.size) await Promise.all([...this.pending])
  }

  /** Track order and which clips sit on which track, read without copying the document. */
  _index () {
    const rows = []
    this.orderOf.clear()
    this.project.roots.tracks.forEach((map, id) => {
      const order = map.get('order')
      this.orderOf.set(id, order)
      rows.push([Number(order) || 0, id])
    })
    rows.sort((a, b) => a[0] - b[0] || String(a[1]).localeCompare(b[1]))
    this.order = rows.map(([, id]) => id)
    this.trackClips.clear()
    this.clipTrack.clear()
    this.end = 0
    this.project.roots.clips.forEach((map, id) => {
      this._indexClip(id, map)
      this.end = Math.max(this.end, (Number(map.get('position')) || 0) + (Number(map.get('length')) || 0))
    })
  }

  _indexClip (id, map) {
    const before = this.clipTrack.get(id)
    const track = map ? map.get('track') : undefined
    if (before === track) return
    this.trackClips.get(before)?.delete(id)
    if (track === undefined) {
      this.clipTrack.delete(id)
      return
    }
    this.clipTrack.set(id, track)
    if (!this.trackClips.has(track)) this.trackClips.set(track, new Set())
    this.trackClips.get(track).add(id)
  }

  /**
   * Mount the rows in view (and OVERSCAN_ROWS around them) and, in them, the clips within
   * a screen's width of the view; unmount the rest. `force`: refresh what stays, too.
   */
  _reconcile (force = false) {
    if (!this.seconds) return
    const { top, left } = this.scroll
    // Before the ResizeObserver's first report the size is read once (the window's would
    // mount rows that are not in view, and ask for their peaks).
    this.view = this.view || { width: this.el.clientWidth, height: this.el.clientHeight }
    const { width, height } = this.view
    const first = Math.max(0, this._rowAt(top - RULER_HEIGHT) - this.overscan)
    const last = Math.min(this.order.length, this._rowAt(top + height) + 1 + this.overscan)
    const chunk = Math.max(256, Math.round(width / 2)) // the clip window moves in steps
    const x0 = Math.max(0, Math.floor((left - width) / chunk) * chunk)
    const x1 = Math.ceil((left + 2 * width) / chunk) * chunk
    const span = this.span
    const rowsMoved = force || !span || span.first !== first || span.last !== last
    const clipsMoved = force || !span || span.x0 !== x0 || span.x1 !== x1
    if (!rowsMoved && !clipsMoved) return
    this.span = { first, last, x0, x1 }
    const wanted = new Set(this.order.slice(first, last))
    for (const id of this._pinned()) if (this.orderOf.has(id)) wanted.add(id)
    for (const id of [...this.headers.keys()]) if (!wanted.has(id)) this._unmountRow(id)
    const index = new Map(this.order.map((id, i) => [id, i]))
    const ids = [...wanted].sort((a, b) => index.get(a) - index.get(b))
    const fresh = []
    for (const id of ids) {
      let header = this.headers.get(id)
      if (!header) {
        header = this._mountRow(id)
        fresh.push(id)
      } else if (force) {
        this._showTrack(header, this.project.roots.tracks.get(id).toJSON())
      }
      const y = `${this.tops[index.get(id)]}px`
      if (header.row.style.top !== y) header.row.style.top = y
    }
    // DOM order follows display order (tab order, screen readers); positions do not depend on it.
    let at = this.rowsEl.firstChild
    for (const id of ids) {
      const row = this.headers.get(id).row
      if (row === at) at = at.nextSibling
      else this.rowsEl.insertBefore(row, at)
    }
    for (const id of clipsMoved ? ids : fresh) this._mountClips(id)
    if (!this.widening && ids.length) {
      this.widening = true
      this.settled().then(() => (window.requestIdleCallback || setTimeout)(() => {
        this.overscan = OVERSCAN_ROWS
        this._reconcile()
      }))
    }
    if (fresh.length) {
      const others = this.presence.others()
      markTouched(this.el, others)
      this.showGhosts(others)
    }
  }

  /** Rows that stay mounted out of view: the one holding focus or a held control, the one
   * a clip is dragged in. */
  _pinned () {
    const pinned = []
    for (const el of [document.activeElement, heldControl(this.rowsEl)]) {
      const row = el?.closest?.('.rows .row')
      if (row) pinned.push(row.dataset.track)
    }
    const dragged = this.dragging && this.clipEls.get(this.dragging.id)?.parentElement
    if (dragged?.dataset.track) pinned.push(dragged.dataset.track)
    return pinned
  }

  _mountRow (id) {
    const header = new TrackHeader(id, {
      project: this.project, presence: this.presence, editable: this.editable,
      onSelect: (trackId) => this.onSelectTrack(trackId),
      onControl: this.onControl, onAutomation: (trackId) => this.toggleAutomation(trackId),
      controlValue: this.controlValue
    })
    const lane = h('div', { class: 'lane', dataset: { track: id } })
    this._bindDrop(lane, id)
    header.lane = lane
    header.row = h('div', { class: 'row', dataset: { track: id } }, header.el, lane)
    if (this.autoOpen.has(id)) {
      header.strip = new AutomationStrip(id, { project: this.project, editable: this.editable, timeline: this,
        param: this.autoParam.get(id), onParam: (param) => this.autoParam.set(id, param) })
      header.row.append(header.strip.el)
      header.row.classList.add('with-auto')
    }
    this.headers.set(id, header)
    this.lanes.set(id, lane)
    this._showTrack(header, this.project.roots.tracks.get(id).toJSON())
    return header
  }

  _unmountRow (id) {
    const header = this.headers.get(id)
    header.row.remove()
    for (const [clipId, el] of this.clipEls) {
      if (el.parentElement === header.lane) this.clipEls.delete(clipId)
    }
    this.headers.delete(id)
    this.lanes.delete(id)
  }

  _showTrack (header, track) {
    header.update(track, track.id === this.selectedTrack, this.autoOpen.has(track.id))
    header.showBypassed(this.bypassedOf(track.id))
    header.row.style.setProperty('--track-colour', track.colour || '#888')
  }

  /** Mount the clips of a mounted row that fall in the clip window; unmount the others. */
  _mountClips (trackId) {
    for (const id of this.trackClips.get(trackId) || []) {
      const el = this.clipEls.get(id)
      if (el && el.parentElement !== this.lanes.get(trackId)) continue // dragged elsewhere
      const map = this.project.roots.clips.get(id)
      if (this._inWindow(map.get('position'), map.get('length'))) this._updateClip(id, map.toJSON())
      else if (el && !(this.dragging && this.dragging.id === id)) this._unmountClip(id)
    }
  }

  _inWindow (position, length) {
    const { x0, x1 } = this.span
    const from = this.framesToPx(Number(position) || 0)
    return from < x1 && from + this.framesToPx(Number(length) || 0) >= x0
  }

  _unmountClip (id) {
    this.clipEls.get(id)?.remove()
    this.clipEls.delete(id)
  }

  _renderRuler (seconds) {
    const transport = this.project.transport()
    // bars and beats from the tempo map (web/src/tempo.js): every beat when they are
    // 24 px apart, else bars, thinned to every 2nd, 4th... bar below 60 px
    const lines = this.project.tempoMap().grid(0, seconds)
    const bars = lines.filter((g) => g.isBar)
    let every = 1
    const barPx = bars.length > 1 ? (bars[1].seconds - bars[0].seconds) * this.zoom : 1e9
    while (barPx * every < 60) every *= 2
    const beatPx = lines.length > 1 ? (lines[1].seconds - lines[0].seconds) * this.zoom : 1e9
    const ticks = []
    for (const g of lines) {
      if (g.isBar && (g.bar - 1) % every === 0) {
        ticks.push(h('span', { class: 'tick', style: `left:${g.seconds * this.zoom}px` }, `${g.bar}`))
      } else if (!g.isBar && every === 1 && beatPx >= 24) {
        ticks.push(h('span', { class: 'tick beat', style: `left:${g.seconds * this.zoom}px` }))
      }
    }
    const loop = transport.loop_end > transport.loop_start
      ? h('div', { class: `loop${transport.loop_enabled ? ' on' : ''}`,
        style: `left:${this.framesToPx(transport.loop_start)}px;width:${this.framesToPx(transport.loop_end - transport.loop_start)}px` })
      : null
    const markers = Object.values(this.project.roots.markers.toJSON()).map((m) =>
      h('span', { class: 'marker', title: m.name, dataset: { marker: m.id },
        style: `left:${this.framesToPx(m.position)}px${m.colour ? `;--marker-colour:${m.colour}` : ''}` }, m.name))
    this.ruler.replaceChildren(...ticks, loop || '', ...markers, ...timeChangeFlags(this))
  }

  /** Create, move or remove one clip's element (`clip` null: the clip is gone); a clip
   * whose row is not mounted, or that lies outside the clip window, has none. */
  _updateClip (id, clip) {
    if (this.dragging && this.dragging.id === id) return // the user holds it
    const lane = clip && this.span && this._inWindow(clip.position, clip.length) && this.lanes.get(clip.track)
    if (!lane) return this._unmountClip(id)
    let el = this.clipEls.get(id)
    if (!el) {
      el = this._clipElement(id)
      this.clipEls.set(id, el)
    }
    if (el.parentElement !== lane) lane.append(el)
    this._placeClip(el, clip)
  }

  _placeClip (el, clip) {
    el.style.left = `${this.framesToPx(clip.position)}px`
    el.style.width = `${Math.max(2, this.framesToPx(clip.length))}px`
    el.dataset.position = String(clip.position)
    el.dataset.length = String(clip.length)
    el.dataset.trackId = clip.track
    el.dataset.source = clip.source
    el.classList.toggle('selected', clip.id === this.selectedClip)
    el.classList.toggle('has-transcript', Boolean(this.project.roots.transcripts.get(clip.id)))
    const job = this.project.stretchJob(clip.id)
    el.classList.toggle('rendering', Boolean(job && job.status === 'running'))
    el.classList.toggle('stretched', Boolean(clip.follow_tempo || (clip.stretch ?? 1) !== 1 || clip.semitones || clip.warp?.length))
    const name = this.names ? this.names.label(clip.source) : String(clip.source).split('/').pop()
    el.querySelector('.clip-name').textContent = name
    const time = [clip.follow_tempo ? `follows tempo from ${clip.source_bpm} BPM` : '',
      (clip.stretch ?? 1) !== 1 && !clip.follow_tempo ? `×${clip.stretch}` : '',
      clip.semitones ? `${clip.semitones > 0 ? '+' : ''}${clip.semitones} st` : '',
      job && job.status === 'running' ? 'rendering' : ''].filter(Boolean).join(', ')
    el.title = `${name} @ ${(clip.position / this.sampleRate).toFixed(3)} s${time ? ` (${time})` : ''}`
    drawWarpMarkers(this, el, clip)
    const canvas = el.querySelector('canvas')
    const key = `${clip.source}|${clip.offset}|${clip.length}|${this.zoom}`
    if (canvas.dataset.key !== key) {
      canvas.dataset.key = key
      const drawn = drawWaveform(canvas, this.peaks, clip, this.sampleRate, this.zoom)
      if (drawn) {
        this.pending.add(drawn)
        drawn.finally(() => this.pending.delete(drawn))
      }
    }
  }

  _clipElement (clipId) {
    CLIP = CLIP || h('div', { class: 'clip' }, h('canvas', { class: 'wave' }), h('span', { class: 'clip-name' }),
      h('span', { class: 'warp-strip', title: 'Warp strip: double-click to add a warp marker here' }),
      h('span', { class: 'trim trim-left', title: 'Trim the start' }),
      h('span', { class: 'trim trim-right', title: 'Trim the end' }))
    const el = CLIP.cloneNode(true) // pointer events: one listener on the rows (constructor)
    el.dataset.clip = clipId
    el.dataset.touch = `clip:${clipId}`
    return el
  }

  /** A press on a clip: drag it, or trim it by an edge. */
  _pressClip (event) {
    const el = event.target.closest?.('.clip')
    if (!el || !this.rowsEl.contains(el)) return
    if (pressWarpMarker(this, event, el.dataset.clip, el)) return
    const trim = event.target.closest('.trim')
    if (trim && this.editable && event.button === 0) {
      this._startTrim(event, el.dataset.clip, el, trim.classList.contains('trim-left') ? 'left' : 'right')
    } else {
      this._startDrag(event, el.dataset.clip, el)
    }
  }

  /** Drag a clip's edge: the start moves position and offset together, the end the length. */
  _startTrim (event, clipId, el, side) {
    if (event.button !== 0 || !this.editable) return
    event.stopPropagation()
    const clip = this.project.clip(clipId)
    if (!clip) return
    this.presence.touch(`clip:${clipId}`)
    const minimum = Math.round(this.sampleRate * 0.01)
    const info = this.peaks?.sourceInfo(clip.source)
    // Frames of the source left after the clip's end (project rate); unknown: only shorten.
    const spare = info ? Math.max(0, Math.floor(info.frames * this.sampleRate / info.sampleRate) - clip.offset - clip.length) : 0
    const { before, after } = this.project.room(clipId) // neighbours stop the edges
    const startX = event.clientX
    let next = { position: clip.position, offset: clip.offset, length: clip.length }
    this.dragging = { id: clipId }
    const move = (e) => {
      const d = Math.round(this.pxToFrames(e.clientX - startX))
      if (side === 'right') {
        const most = Math.min(clip.length + spare, after - clip.position)
        next = { ...next, length: Math.min(most, Math.max(minimum, clip.length + d)) }
      } else {
        const shift = Math.min(clip.length - minimum, Math.max(-clip.offset, before - clip.position, d))
        next = { position: clip.position + shift, offset: clip.offset + shift, length: clip.length - shift }
      }
      el.style.left = `${this.framesToPx(next.position)}px`
      el.style.width = `${Math.max(2, this.framesToPx(next.length))}px`
    }
    followDrag(move, (e, cancelled) => { // cancelled: the trim is dropped
      this.presence.release()
      this.dragging = null
      if (!cancelled && next.length !== clip.length) this.project.trimClip(clipId, next)
      this._updateClip(clipId, this.project.clip(clipId))
    })
  }

  _startDrag (event, clipId, el) {
    if (event.button !== 0) return
    event.stopPropagation()
    const clip = this.project.clip(clipId)
    if (!clip) return
    this.presence.touch(`clip:${clipId}`)
    const start = { x: event.clientX, y: event.clientY, position: clip.position, track: clip.track }
    let moved = false
    const move = (e) => {
      const dx = e.clientX - start.x
      if (!moved && Math.abs(dx) + Math.abs(e.clientY - start.y) < DRAG_THRESHOLD) return
      if (!this.editable) return
      moved = true
      this.dragging = { id: clipId }
      el.classList.add('dragging')
      let position = Math.max(0, start.position + this.pxToFrames(dx))
      if (e.shiftKey) position = this._snap(position)
      el.style.left = `${this.framesToPx(position)}px`
      el.dataset.position = String(Math.round(position))
      const lane = document.elementsFromPoint(e.clientX, e.clientY).find((n) => n.classList?.contains('lane'))
      if (lane && lane !== el.parentElement) lane.append(el)
      const laneTrack = el.parentElement.dataset.track
      const fits = this.project.fits(laneTrack, Math.round(position), clip.length, [clipId])
      const fades = !fits && this.project.crossfades(laneTrack, Math.round(position), clip.length, [clipId])
      el.classList.toggle('crossfading', fades) // lands overlapping the clip before: the two crossfade
      el.classList.toggle('blocked', !fits && !fades)
      // Others see where the clip would land while it is dragged (awareness, not the document).
      this.presence.set('dragging', `${clipId}:${el.parentElement.dataset.track}:${Math.round(position)}`)
    }
    followDrag(move, (e, cancelled) => {
      this.presence.release()
      this.presence.set('dragging', null)
      el.classList.remove('dragging')
      this.dragging = null
      const blocked = el.classList.contains('blocked')
      el.classList.remove('blocked', 'crossfading')
      if (cancelled) {
        // dropped: _updateClip puts the clip back in its lane and place
      } else if (moved && blocked) {
        this.onRefuse('Clips on one track cannot overlap like that: a clip may overlap only ' +
          'the one before it, starting after it starts and ending after it ends (the two ' +
          'crossfade); the clip went back')
      } else if (moved) {
        const track = el.parentElement?.dataset.track || start.track
        this.project.moveClip(clipId, Number(el.dataset.position), track)
      } else {
        this.onSelectClip(clipId)
      }
      this._updateClip(clipId, this.project.clip(clipId))
    })
  }

  /** The grid line the ruler draws nearest to `frames`: the meter's own beats (eighths in
   * 7/8) and its bar lines, ramps and changes included. */
  _snap (frames) {
    const map = this.project.tempoMap()
    const rate = this.sampleRate
    // lines found within `reach` hold the nearest one: widen until some are found
    for (let reach = 2 * rate; reach <= 4096 * rate; reach *= 4) {
      const lines = beatFrames(map, Math.max(0, frames - reach), frames + reach + 1, rate)
      if (lines.length) return snapTo(frames, lines, reach)
    }
    return frames
  }

  _seek (event) {
    const x = event.clientX - this.ruler.getBoundingClientRect().left
    this.onSeek(Math.max(0, Math.round(this.pxToFrames(x))))
  }

  _bindDrop (lane, trackId) {
    lane.addEventListener('dragover', (e) => {
      if (!this.editable || !e.dataTransfer?.types.includes('Files')) return
      e.preventDefault()
      lane.classList.add('drop-target')
    })
    lane.addEventListener('dragleave', () => lane.classList.remove('drop-target'))
    lane.addEventListener('drop', (e) => {
      lane.classList.remove('drop-target')
      if (!this.editable || !e.dataTransfer?.files?.length) return
      e.preventDefault()
      const x = e.clientX - lane.getBoundingClientRect().left
      this.onDropFiles(trackId, Math.max(0, Math.round(this.pxToFrames(x))), [...e.dataTransfer.files])
    })
  }

  /** Draw the local playhead and everyone else's, in their colours (called every frame:
   * lines are kept and moved, only what changed is written). */
  setPlayheads (local, others) {
    const seen = new Set(['me'])
    this._playhead('me', local, null)
    for (const other of others) {
      if (typeof other.playhead !== 'number') continue
      seen.add(other.clientId)
      this._playhead(other.clientId, other.playhead, other.user)
    }
    for (const [key, line] of this.playheads) {
      if (!seen.has(key)) {
        line.remove()
        this.playheads.delete(key)
      }
    }
  }

  _playhead (key, frame, user) {
    let line = this.playheads.get(key)
    if (!line) {
      line = h('div', { class: user ? 'playhead' : 'playhead me' })
      this.playheads.set(key, line)
      this.overlay.append(line)
    }
    if (user) {
      if (line.dataset.user !== user.name) {
        line.dataset.user = user.name
        line.title = user.name
      }
      if (line.dataset.colour !== user.colour) {
        line.dataset.colour = user.colour
        line.style.background = user.colour
      }
    }
    const x = `translateX(${HEADER_WIDTH + this.framesToPx(frame)}px)`
    if (line.style.transform !== x) line.style.transform = x
  }

  /** Outlines where other users are dragging clips right now, in their colours. */
  showGhosts (others) {
    this.ghosts = this.ghosts || new Map()
    const live = new Set()
    for (const other of others) {
      if (!other.dragging) continue
      const [clipId, trackId, position] = String(other.dragging).split(':')
      const clip = this.project.clip(clipId)
      const lane = this.lanes.get(trackId)
      if (!clip || !lane) continue
      live.add(other.clientId)
      let ghost = this.ghosts.get(other.clientId)
      if (!ghost) {
        ghost = h('div', { class: 'ghost' }, h('span', {}, other.user.name))
        this.ghosts.set(other.clientId, ghost)
      }
      ghost.dataset.user = other.user.name
      ghost.dataset.position = position
      ghost.style.setProperty('--touch-colour', other.user.colour)
      ghost.style.left = `${this.framesToPx(Number(position))}px`
      ghost.style.width = `${Math.max(2, this.framesToPx(clip.length))}px`
      if (ghost.parentElement !== lane) lane.append(ghost)
    }
    for (const [clientId, ghost] of this.ghosts) {
      if (!live.has(clientId)) {
        ghost.remove()
        this.ghosts.delete(clientId)
      }
    }
  }

  /** Mark the selected track, clip and bus (an aux bus or the master; null: none). */
  setSelection (trackId, clipId, busId = null) {
    this.selectedTrack = trackId
    this.selectedClip = clipId
    this.selectedBus = busId
    for (const [id, header] of this.headers) header.el.classList.toggle('selected', id === trackId)
    for (const [id, el] of this.clipEls) el.classList.toggle('selected', id === clipId)
    for (const [id, { header }] of this.busRows) header.el.classList.toggle('selected', id === busId)
  }
}
