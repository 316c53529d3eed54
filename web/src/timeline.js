// Track lanes on a timeline: headers, clips with waveforms, ruler, playheads, zoom/scroll,
// clip dragging and audio drops. Zoom and scroll are view state; clips live in the document.
import { h } from './dom.js'
import { TrackHeader } from './tracks.js'
import { drawWaveform } from './peaks.js'

export const HEADER_WIDTH = 290
const MIN_ZOOM = 2
const MAX_ZOOM = 2000
const DRAG_THRESHOLD = 3

export class Timeline {
  constructor ({ project, presence, editable, peaks, onSelectTrack, onSelectClip, onDropFiles, onSeek, onRefuse }) {
    Object.assign(this, { project, presence, editable, peaks, onSelectTrack, onSelectClip, onDropFiles, onSeek, onRefuse })
    this.zoom = 60 // pixels per second
    this.headers = new Map()
    this.lanes = new Map()
    this.clipEls = new Map()
    this.dragging = null
    this.selectedTrack = null
    this.selectedClip = null
    this.ruler = h('div', { class: 'ruler', onpointerdown: (e) => this._seek(e) })
    this.rulerRow = h('div', { class: 'row ruler-row' },
      h('div', { class: 'track-header corner' },
        h('button', { class: 'zoom-out', title: 'Zoom out (-)', onclick: () => this.setZoom(this.zoom / 1.5) }, '−'),
        h('button', { class: 'zoom-in', title: 'Zoom in (+)', onclick: () => this.setZoom(this.zoom * 1.5) }, '+'),
        h('button', { class: 'add-track edit', title: 'Add a track', disabled: !editable,
          onclick: () => this.project.addTrack() }, '+ Track')),
      this.ruler)
    this.rowsEl = h('div', { class: 'rows' })
    this.overlay = h('div', { class: 'playheads' })
    this.el = h('div', { class: 'timeline', tabindex: '-1' }, this.rulerRow, this.rowsEl, this.overlay)
    this.el.addEventListener('wheel', (e) => {
      if (!e.ctrlKey && !e.metaKey) return
      e.preventDefault()
      this.setZoom(this.zoom * (e.deltaY < 0 ? 1.2 : 1 / 1.2), e.clientX)
    }, { passive: false })
  }

  get sampleRate () { return this.project.sampleRate }

  framesToPx (frames) { return (frames / this.sampleRate) * this.zoom }

  pxToFrames (px) { return (px / this.zoom) * this.sampleRate }

  /** Change zoom, keeping the time under `clientX` (or the left edge) in place. */
  setZoom (zoom, clientX) {
    const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom))
    const anchor = clientX === undefined ? HEADER_WIDTH : clientX - this.el.getBoundingClientRect().left
    const seconds = (this.el.scrollLeft + anchor - HEADER_WIDTH) / this.zoom
    this.zoom = next
    this.render()
    this.el.scrollLeft = Math.max(0, seconds * this.zoom - anchor + HEADER_WIDTH)
  }

  /**
   * Show document changes: `{full, tracks: Set, clips: Set, ruler}`. Only the rows and
   * clips named are touched, so one fader move costs the same with 8 or 512 tracks.
   */
  update ({ full = false, tracks = new Set(), clips = new Set(), ruler = false }) {
    if (full || !this.seconds) return this.render()
    for (const id of tracks) {
      const header = this.headers.get(id)
      const map = this.project.roots.tracks.get(id)
      if (!header || !map || map.get('order') !== header.order) return this.render()
      const track = map.toJSON()
      header.update(track, id === this.selectedTrack)
      header.row.style.setProperty('--track-colour', track.colour || '#888')
    }
    for (const id of clips) {
      const clip = this.project.clip(id)
      if (clip && (clip.position + clip.length) / this.sampleRate + 8 > this.seconds) return this.render()
      this._updateClip(id, clip)
    }
    if (ruler) this._renderRuler(this.seconds)
  }

  /** Reconcile every row and clip with the document. */
  render () {
    const tracks = this.project.tracks()
    const seconds = Math.max(this.project.endFrame() / this.sampleRate + 8, 30)
    this.seconds = seconds
    const width = Math.ceil(seconds * this.zoom)
    this.el.style.setProperty('--lane-width', `${width}px`)
    this._renderRuler(seconds)
    const seen = new Set()
    tracks.forEach((track, index) => {
      seen.add(track.id)
      let header = this.headers.get(track.id)
      if (!header) {
        header = new TrackHeader(track.id, {
          project: this.project, presence: this.presence, editable: this.editable,
          onSelect: (id) => this.onSelectTrack(id)
        })
        const lane = h('div', { class: 'lane', dataset: { track: track.id } })
        this._bindDrop(lane, track.id)
        this.headers.set(track.id, header)
        this.lanes.set(track.id, lane)
        header.row = h('div', { class: 'row', dataset: { track: track.id } }, header.el, lane)
      }
      header.order = track.order
      header.update(track, track.id === this.selectedTrack)
      header.row.style.setProperty('--track-colour', track.colour || '#888')
      if (this.rowsEl.children[index] !== header.row) this.rowsEl.insertBefore(header.row, this.rowsEl.children[index] || null)
    })
    for (const [id, header] of this.headers) {
      if (!seen.has(id)) {
        header.row.remove()
        this.headers.delete(id)
        this.lanes.delete(id)
      }
    }
    this.overlay.style.height = `${this.rulerRow.offsetHeight + this.rowsEl.offsetHeight}px`
    this._renderClips()
  }

  _renderRuler (seconds) {
    const transport = this.project.transport()
    const beat = 60 / (Number(transport.tempo) || 120)
    const bar = beat * (Number(transport.beats_per_bar) || 4)
    let step = bar
    while (step * this.zoom < 60) step *= 2
    const ticks = []
    for (let n = 0; n * step < seconds; n++) {
      const t = n * step
      ticks.push(h('span', { class: 'tick', style: `left:${t * this.zoom}px` }, `${Math.round(t / bar) + 1}`))
    }
    if (step === bar && beat * this.zoom >= 24) {
      for (let n = 0; n * beat < seconds; n++) {
        if (n % (Number(transport.beats_per_bar) || 4)) ticks.push(h('span', { class: 'tick beat', style: `left:${n * beat * this.zoom}px` }))
      }
    }
    const loop = transport.loop_end > transport.loop_start
      ? h('div', { class: `loop${transport.loop_enabled ? ' on' : ''}`,
        style: `left:${this.framesToPx(transport.loop_start)}px;width:${this.framesToPx(transport.loop_end - transport.loop_start)}px` })
      : null
    const markers = Object.values(this.project.roots.markers.toJSON()).map((m) =>
      h('span', { class: 'marker', title: m.name, dataset: { marker: m.id },
        style: `left:${this.framesToPx(m.position)}px${m.colour ? `;--marker-colour:${m.colour}` : ''}` }, m.name))
    this.ruler.replaceChildren(...ticks, loop || '', ...markers)
  }

  _renderClips () {
    const seen = new Set()
    for (const clip of this.project.clips()) {
      seen.add(clip.id)
      this._updateClip(clip.id, clip)
    }
    for (const id of [...this.clipEls.keys()]) {
      if (!seen.has(id)) this._updateClip(id, null)
    }
  }

  /** Create, move or remove one clip's element (`clip` null: the clip is gone). */
  _updateClip (id, clip) {
    let el = this.clipEls.get(id)
    const lane = clip && this.lanes.get(clip.track)
    if (!lane) {
      if (el) el.remove()
      this.clipEls.delete(id)
      return
    }
    if (!el) {
      el = this._clipElement(id)
      this.clipEls.set(id, el)
    }
    if (this.dragging && this.dragging.id === id) return
    if (el.parentElement !== lane) lane.append(el)
    this._placeClip(el, clip)
  }

  _placeClip (el, clip) {
    el.style.left = `${this.framesToPx(clip.position)}px`
    el.style.width = `${Math.max(2, this.framesToPx(clip.length))}px`
    el.dataset.position = String(clip.position)
    el.dataset.length = String(clip.length)
    el.dataset.trackId = clip.track
    el.classList.toggle('selected', clip.id === this.selectedClip)
    el.classList.toggle('has-transcript', Boolean(this.project.roots.transcripts.get(clip.id)))
    const name = String(clip.source).split('/').pop()
    el.querySelector('.clip-name').textContent = name
    el.title = `${name} @ ${(clip.position / this.sampleRate).toFixed(3)} s`
    const canvas = el.querySelector('canvas')
    const key = `${clip.source}|${clip.offset}|${clip.length}|${this.zoom}`
    if (canvas.dataset.key !== key) {
      canvas.dataset.key = key
      drawWaveform(canvas, this.peaks, clip, this.sampleRate, this.zoom)
    }
  }

  _clipElement (clipId) {
    const left = h('span', { class: 'trim trim-left', title: 'Trim the start' })
    const right = h('span', { class: 'trim trim-right', title: 'Trim the end' })
    const el = h('div', { class: 'clip', dataset: { clip: clipId } },
      h('canvas', { class: 'wave' }), h('span', { class: 'clip-name' }), left, right)
    el.dataset.touch = `clip:${clipId}`
    el.addEventListener('pointerdown', (e) => this._startDrag(e, clipId, el))
    left.addEventListener('pointerdown', (e) => this._startTrim(e, clipId, el, 'left'))
    right.addEventListener('pointerdown', (e) => this._startTrim(e, clipId, el, 'right'))
    return el
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
    const up = () => {
      window.removeEventListener('pointermove', move)
      window.removeEventListener('pointerup', up)
      this.presence.release()
      this.dragging = null
      if (next.length !== clip.length) this.project.trimClip(clipId, next)
      this._updateClip(clipId, this.project.clip(clipId))
    }
    window.addEventListener('pointermove', move)
    window.addEventListener('pointerup', up)
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
      el.classList.toggle('blocked', !this.project.fits(el.parentElement.dataset.track, Math.round(position), clip.length, [clipId]))
      // Others see where the clip would land while it is dragged (awareness, not the document).
      this.presence.set('dragging', `${clipId}:${el.parentElement.dataset.track}:${Math.round(position)}`)
    }
    const up = () => {
      window.removeEventListener('pointermove', move)
      window.removeEventListener('pointerup', up)
      this.presence.release()
      this.presence.set('dragging', null)
      el.classList.remove('dragging')
      this.dragging = null
      const blocked = el.classList.contains('blocked')
      el.classList.remove('blocked')
      if (moved && blocked) {
        this.onRefuse('Clips on one track cannot overlap: the clip went back')
      } else if (moved) {
        const track = el.parentElement?.dataset.track || start.track
        this.project.moveClip(clipId, Number(el.dataset.position), track)
      } else {
        this.onSelectClip(clipId)
      }
      this._updateClip(clipId, this.project.clip(clipId))
    }
    window.addEventListener('pointermove', move)
    window.addEventListener('pointerup', up)
  }

  _snap (frames) {
    const beat = (60 / (Number(this.project.transport().tempo) || 120)) * this.sampleRate
    return Math.round(frames / beat) * beat
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

  /** Draw the local playhead and everyone else's, in their colours. */
  setPlayheads (local, others) {
    const lines = [h('div', { class: 'playhead me', style: `left:${HEADER_WIDTH + this.framesToPx(local)}px` })]
    for (const other of others) {
      if (typeof other.playhead !== 'number') continue
      lines.push(h('div', { class: 'playhead', title: other.user.name, dataset: { user: other.user.name },
        style: `left:${HEADER_WIDTH + this.framesToPx(other.playhead)}px;background:${other.user.colour}` }))
    }
    this.overlay.replaceChildren(...lines)
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

  setSelection (trackId, clipId) {
    this.selectedTrack = trackId
    this.selectedClip = clipId
    for (const [id, header] of this.headers) header.el.classList.toggle('selected', id === trackId)
    for (const [id, el] of this.clipEls) el.classList.toggle('selected', id === clipId)
  }
}
