// Piano roll of the selected track's MIDI clip: notes on a pitch x time grid, edited with
// the mouse as Yjs writes of `midi_clips[clip].notes` (so every peer sees them live), the
// server's note edits (quantise, transpose) as buttons, and Web MIDI input recorded into
// the clip while the transport plays.
//
// Mouse: click an empty cell to add a note (drag to set its length), drag a note to move
// it (time snaps to 1/16 at the transport tempo), drag its right edge to resize it,
// double-click (or right-click) it to delete it, turn the wheel over it for its velocity.
// *Follow tempo* (with the tempo the notes were written at, first the tempo at the clip's
// start) makes the clip's notes keep their beats when the tempo map changes.
import * as Y from 'yjs'
import { h, setProp } from './dom.js'
import { api } from './api.js'
import { MIDI_BPM_RANGE } from './project.js'

export const ROW = 8 // px per semitone
export const WIDTH = 720 // px for the whole clip
const EDGE = 6 // px at a note's right end that resize it
const NOTE_FIELDS = ['pitch', 'velocity', 'start', 'length', 'channel']

/** A fresh note id such as `note-3f2a9c1b0d4e` (as collab/midi.py's). */
export function newNoteId (prefix = 'note') {
  const bytes = crypto.getRandomValues(new Uint8Array(6))
  return `${prefix}-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`
}

/** A MIDI message's kind: {on, off, channel, key, velocity} or null (not a note). */
export function parseNote (data) {
  const status = data[0] & 0xf0
  const channel = data[0] & 0x0f
  if (status === 0x90 && data[2] > 0) return { on: true, channel, key: data[1], velocity: data[2] }
  if (status === 0x80 || status === 0x90) return { on: false, channel, key: data[1], velocity: 0 }
  return null
}

export class PianoRoll {
  constructor ({ project, editable, notify, playhead }) {
    Object.assign(this, { project, editable, notify, playhead })
    this.trackId = null
    this.clipId = null
    this.drag = null
    this.held = new Map() // Web MIDI: `${channel}:${key}` -> {start, velocity}
    this.midiAccess = null
    this.title = h('h3', {}, 'Piano roll')
    this.select = h('select', { class: 'pr-clip', onchange: (e) => this.showClip(e.target.value) })
    const edit = (label, title, body) => h('button', {
      class: 'pr-edit edit', title, dataset: { edit: label }, onclick: () => this.serverEdit(body)
    }, label)
    this.tools = h('div', { class: 'pr-tools' }, this.select,
      h('button', { class: 'pr-add-clip edit', title: 'A new two-bar MIDI clip after the last one', onclick: () => this.addClip() }, '+ Clip'),
      h('span', { class: 'pr-tempo', title: 'Follow tempo: the notes keep their beats when the tempo map changes, ' +
        'counted from the tempo they were written at' },
      h('label', {}, this.follow = h('input', { type: 'checkbox', class: 'pr-follow edit',
        onchange: (e) => this.setTempo({ follow_tempo: e.target.checked }) }), ' Follow tempo'),
      h('label', {}, ' from ', this.sourceBpm = h('input', { type: 'number', class: 'pr-source-bpm edit',
        min: MIDI_BPM_RANGE[0], max: MIDI_BPM_RANGE[1], step: 0.1, 'aria-label': 'Source BPM: the tempo the notes were written at',
        onchange: (e) => this.setTempo({ source_bpm: Number(e.target.value) }) }), ' BPM')),
      edit('Q 1/16', 'Quantise every note to 1/16', { operation: 'quantize', division: 16, strength: 1 }),
      edit('−12', 'Transpose an octave down', { operation: 'transpose', semitones: -12 }),
      edit('−1', 'Transpose a semitone down', { operation: 'transpose', semitones: -1 }),
      edit('+1', 'Transpose a semitone up', { operation: 'transpose', semitones: 1 }),
      edit('+12', 'Transpose an octave up', { operation: 'transpose', semitones: 12 }),
      this.midiButton = h('button', { class: 'pr-midi edit', title: 'Record from MIDI keyboards (Web MIDI) while the transport plays', onclick: () => this.toggleMidi() }, 'MIDI in'))
    this.grid = h('div', { class: 'pr-grid', role: 'grid', 'aria-label': 'Piano roll' })
    this.grid.addEventListener('pointerdown', (e) => this._down(e))
    this.grid.addEventListener('pointermove', (e) => this._move(e))
    for (const end of ['pointerup', 'pointercancel']) {
      this.grid.addEventListener(end, () => {
        const refit = this.drag?.refit
        this.drag = null
        if (refit) this.update() // the rows fit the notes again
      })
    }
    this.grid.addEventListener('dblclick', (e) => this._remove(e))
    this.grid.addEventListener('contextmenu', (e) => this._remove(e))
    this.grid.addEventListener('wheel', (e) => this._wheel(e), { passive: false })
    this.body = h('div', { class: 'pr-body' }, this.tools, this.grid)
    this.el = h('section', { class: 'panel pianoroll' }, this.title, this.body)
    this.update()
  }

  // -- what is shown ----------------------------------------------------------------------

  get clips () { return this.project.roots.midi_clips }

  clipsOfTrack () {
    const out = []
    this.clips.forEach((map, id) => { if (map.get('track') === this.trackId) out.push({ ...map.toJSON(), id }) })
    return out.sort((a, b) => a.position - b.position || a.id.localeCompare(b.id))
  }

  show (trackId) {
    if (trackId !== this.trackId) this.clipId = null
    this.trackId = trackId
    this.update()
  }

  showClip (clipId) {
    this.clipId = clipId
    this.update()
  }

  clip () { return this.clipId ? this.clips.get(this.clipId)?.toJSON() ?? null : null }

  /** Frames per 1/16 note at the transport's tempo. */
  step () {
    const tempo = Number(this.project.transport().tempo) || 120
    return this.project.sampleRate * 60 / tempo / 4
  }

  update () {
    const track = this.trackId ? this.project.roots.tracks.get(this.trackId) : null
    const clips = track ? this.clipsOfTrack() : []
    this.title.textContent = track ? `Piano roll · ${track.get('name') || this.trackId}` : 'Piano roll'
    if (!clips.some((c) => c.id === this.clipId)) this.clipId = clips[0]?.id ?? null
    this.select.replaceChildren(...clips.map((c) => h('option', { value: c.id, selected: c.id === this.clipId },
      `${(c.position / this.project.sampleRate).toFixed(2)} s · ${Object.keys(c.notes || {}).length} notes`)))
    this.body.hidden = !track
    const clip = this.clip()
    this._showTempo(clip)
    this.grid.replaceChildren()
    if (!clip) {
      this.grid.append(h('p', { class: 'hint' }, track ? 'No MIDI clip on this track: + Clip makes one.' : ''))
      return
    }
    const notes = Object.entries(clip.notes || {})
    // while a note is dragged the rows and scale stay as at the press: a row that moved
    // under a still pointer would read as another pitch, and the note would run away
    const pitches = notes.map(([, n]) => n.pitch)
    const fit = {
      lo: Math.max(0, Math.min(48, ...pitches.map((p) => p - 4))),
      hi: Math.min(127, Math.max(84, ...pitches.map((p) => p + 4))),
      scale: WIDTH / clip.length // px per frame
    }
    if (this.drag?.clip === this.clipId) {
      this.drag.refit ||= fit.lo !== this.lo || fit.hi !== this.hi || fit.scale !== this.scale
    } else {
      Object.assign(this, fit)
    }
    const height = (this.hi - this.lo + 1) * ROW
    const beat = this.step() * 4 * this.scale
    Object.assign(this.grid.style, {
      width: `${WIDTH}px`,
      height: `${height}px`,
      backgroundSize: `${beat}px ${ROW * 12}px, ${beat / 4}px ${ROW}px`
    })
    this.grid.dataset.clip = this.clipId
    this.grid.dataset.lo = this.lo
    for (const [id, n] of notes) {
      this.grid.append(h('div', {
        class: 'pr-note',
        dataset: { note: id, pitch: n.pitch, velocity: n.velocity },
        title: `${n.pitch} · velocity ${n.velocity}`,
        style: `left:${n.start * this.scale}px;top:${(this.hi - n.pitch) * ROW}px;` +
          `width:${Math.max(2, n.length * this.scale)}px;height:${ROW - 1}px;` +
          `opacity:${0.35 + 0.65 * n.velocity / 127}`
      }))
    }
  }

  /** The tempo switch of `clip` (the number waits while it is being typed in). */
  _showTempo (clip) {
    setProp(this.follow, 'checked', clip?.follow_tempo === true)
    setProp(this.follow, 'disabled', !this.editable || !clip)
    setProp(this.sourceBpm, 'disabled', !this.editable || !clip)
    if (document.activeElement === this.sourceBpm) return
    setProp(this.sourceBpm, 'value', clip?.source_bpm > 0 ? String(clip.source_bpm) : '')
    setProp(this.sourceBpm, 'placeholder', clip ? String(this.startBpm(clip)) : '')
  }

  /** The tempo map's tempo where `clip` starts, within a MIDI clip's source BPM range. */
  startBpm (clip) {
    const map = this.project.tempoMap()
    const bpm = map.bpmAt(map.secondsToBeat(clip.position / this.project.sampleRate))
    return Math.min(MIDI_BPM_RANGE[1], Math.max(MIDI_BPM_RANGE[0], Math.round(bpm * 100) / 100))
  }

  /** Switch the clip's tempo following or its source BPM; switched on without a source
   * BPM, it takes the tempo at the clip's start (so no note moves until the map changes). */
  setTempo (fields) {
    const clip = this.clip()
    if (!clip || !this.editable) return
    if (fields.follow_tempo && !(clip.source_bpm >= MIDI_BPM_RANGE[0])) fields = { ...fields, source_bpm: this.startBpm(clip) }
    try {
      this.project.setMidiClipTempo(this.clipId, fields)
    } catch (err) {
      this.notify(`Piano roll: ${err.message}`, true)
      this._showTempo(clip)
    }
  }

  // -- edits: Yjs writes on the clip's notes ----------------------------------------------

  _notes () { return this.clips.get(this.clipId)?.get('notes') }

  addNote (fields, prefix = 'note') {
    const notes = this._notes()
    if (!notes) return null
    const id = newNoteId(prefix)
    this.project.doc.transact(() => {
      notes.set(id, new Y.Map(NOTE_FIELDS.map((k) => [k, Math.round(fields[k] ?? 0)])))
    })
    return id
  }

  updateNote (id, fields) {
    const note = this._notes()?.get(id)
    if (!note) return
    this.project.doc.transact(() => {
      for (const [k, v] of Object.entries(fields)) if (note.get(k) !== v) note.set(k, v)
    })
  }

  removeNote (id) {
    const notes = this._notes()
    if (notes?.has(id)) this.project.doc.transact(() => notes.delete(id))
  }

  /** A new two-bar clip at `position` (default: after the track's last one). */
  addClip (position = null) {
    if (!this.trackId) return
    const bar = this.step() * 16
    const end = position ?? Math.max(0, ...this.clipsOfTrack().map((c) => c.position + c.length))
    const id = newNoteId('midi')
    this.project.doc.transact(() => {
      this.clips.set(id, new Y.Map([['id', id], ['track', this.trackId], ['position', Math.round(end)],
        ['length', Math.round(2 * bar)], ['notes', new Y.Map()], ['controls', new Y.Map()]]))
    })
    this.showClip(id)
  }

  async serverEdit (body) {
    if (!this.clipId) return
    try {
      await api(`/projects/${this.project.projectId}/midi/clips/${this.clipId}/edit`,
        { token: this.project.token, method: 'POST', body })
    } catch (err) { this.notify(`Piano roll: ${err.message}`, true) }
  }

  // -- the mouse --------------------------------------------------------------------------

  _at (e) {
    const box = this.grid.getBoundingClientRect()
    return {
      frame: (e.clientX - box.left) / this.scale,
      pitch: this.hi - Math.floor((e.clientY - box.top) / ROW)
    }
  }

  _down (e) {
    const clip = this.clip()
    if (!this.editable || !clip || e.button !== 0) return
    const step = this.step()
    const at = this._at(e)
    const target = this._noteAt(e)
    if (!target) {
      const start = Math.min(Math.floor(at.frame / step) * step, clip.length - 1)
      const length = Math.min(step * 4, clip.length - start)
      const id = this.addNote({ pitch: at.pitch, velocity: 100, start, length, channel: 0 })
      this.drag = { id, clip: this.clipId, mode: 'resize', frame: start + length, start, length, pitch: at.pitch, at }
    } else {
      const note = this._notes().get(target.dataset.note).toJSON()
      const right = target.getBoundingClientRect().right
      this.drag = { ...note, id: target.dataset.note, clip: this.clipId, mode: e.clientX > right - EDGE ? 'resize' : 'move', at }
    }
    this.grid.setPointerCapture(e.pointerId)
    e.preventDefault()
  }

  _move (e) {
    const drag = this.drag
    const clip = this.clip()
    if (!drag || !clip) return
    const step = this.step()
    const at = this._at(e)
    const moved = at.frame - drag.at.frame
    if (drag.mode === 'move') {
      const start = Math.max(0, Math.min(clip.length - 1, Math.round((drag.start + moved) / step) * step))
      const pitch = Math.max(0, Math.min(127, drag.pitch + at.pitch - drag.at.pitch))
      this.updateNote(drag.id, { start: Math.round(start), pitch })
    } else {
      const end = Math.round((drag.start + drag.length + moved) / step) * step
      this.updateNote(drag.id, { length: Math.round(Math.max(step, end - drag.start)) })
    }
  }

  /** The note under the pointer (the grid captures the pointer while a drag runs). */
  _noteAt (e) {
    return e.target.closest('.pr-note') || [...this.grid.querySelectorAll('.pr-note')].find((el) => {
      const r = el.getBoundingClientRect()
      return e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom
    })
  }

  _remove (e) {
    const target = this._noteAt(e)
    if (!target) return
    e.preventDefault()
    if (this.editable) this.removeNote(target.dataset.note)
  }

  _wheel (e) {
    const target = this._noteAt(e)
    if (!target || !this.editable) return
    e.preventDefault()
    const velocity = Number(target.dataset.velocity) + (e.deltaY < 0 ? 8 : -8)
    this.updateNote(target.dataset.note, { velocity: Math.max(1, Math.min(127, velocity)) })
  }

  // -- Web MIDI ---------------------------------------------------------------------------

  async toggleMidi () {
    if (this.midiAccess) {
      this.midiAccess.inputs.forEach((input) => { input.onmidimessage = null })
      this.midiAccess = null
      this.midiButton.classList.remove('on')
      return
    }
    if (!navigator.requestMIDIAccess) {
      this.notify('This browser offers no Web MIDI', true)
      return
    }
    try {
      this.midiAccess = await navigator.requestMIDIAccess()
    } catch (err) {
      this.notify(`MIDI: ${err.message}`, true)
      return
    }
    this.midiAccess.inputs.forEach((input) => { input.onmidimessage = (m) => this.midiMessage(m.data) })
    this.midiButton.classList.add('on')
    this.notify(`MIDI in: ${this.midiAccess.inputs.size} input(s)`)
  }

  /** A note from a keyboard: while the transport plays, it lands at the playhead. */
  midiMessage (data) {
    const note = parseNote(data)
    const transport = this.project.transport()
    if (!note || !this.trackId) return
    const key = `${note.channel}:${note.key}`
    const frame = Math.round(this.playhead())
    if (note.on) {
      if (transport.playing) this.held.set(key, { start: frame, velocity: note.velocity })
      return
    }
    const held = this.held.get(key)
    this.held.delete(key)
    if (!held) return
    if (!this.clip() || held.start < this.clip().position) this.addClip(held.start)
    const clip = this.clip()
    const start = held.start - clip.position
    const length = Math.max(1, frame - held.start)
    if (start + length > clip.length) {
      this.project.doc.transact(() => this.clips.get(this.clipId).set('length', start + length))
    }
    this.addNote({ pitch: note.key, velocity: held.velocity, start, length, channel: note.channel })
  }
}
