// The shared project document: connection (y-websocket) and every edit the page makes.
//
// The page keeps no project state of its own: it renders from the Y.Doc and
// changes it only through the functions below, each one Yjs transaction, so
// every client and the server's engine see the same edit.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { sliceSegments } from './cut.js'
import { newLanes } from './automation.js'
import { tempoMap } from './tempo.js'

export const ROOTS = ['meta', 'tracks', 'clips', 'buses', 'transport', 'markers', 'comments',
  'transcripts', 'midi_clips', 'tempos', 'meters', 'jobs']
// A clip's time keys (collab/time_fields.py) and the stretch factor's range.
export const CLIP_TIME_FIELDS = ['crossfade', 'stretch', 'semitones', 'follow_tempo', 'source_bpm']
export const STRETCH_RANGE = [0.25, 4]
// A MIDI clip's source_bpm range (dsp_core/midi.py's validate_clip).
export const MIDI_BPM_RANGE = [20, 999]
export const TRANSPORT_DEFAULTS = {
  tempo: 120, beats_per_bar: 4, beat_unit: 4, loop_enabled: false, loop_start: 0,
  loop_end: 0, playing: false, position: 0, recording: false, chase_notes: true
}
// Track colours, as collab/schema.py's PALETTE.
export const PALETTE = ['#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231', '#911eb4', '#46f0f0',
  '#f032e6']
const MESSAGE_SYNC = 0 // y-websocket's message type of the Yjs sync protocol
// Close codes the server uses for "do not try again" (bad token, no access, revoked, gone,
// project deleted).
const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404, 4410, 4411])
const UNAUTHORIZED = 4401 // a token forged or expired: a renewable one is fetched anew

/**
 * Yjs encodes every transaction as an update for the document's 'update' listeners, and
 * y-websocket's (the only one) ignores what came from the server. While a server message
 * is applied it is taken off, so the synced document is not encoded all over again
 * (0.1 s of the first second on the 256-track demo).
 */
function skipEncodingRemoteUpdates (provider) {
  const listener = provider._updateHandler
  const handle = provider.messageHandlers[MESSAGE_SYNC]
  if (typeof listener !== 'function' || typeof handle !== 'function') return // another y-websocket
  provider.messageHandlers[MESSAGE_SYNC] = (...args) => {
    provider.doc.off('update', listener)
    try {
      handle(...args)
    } finally {
      provider.doc.on('update', listener)
    }
  }
}

/** A fresh clip id such as `clip-3f2a9c1b0d4e` (works outside secure contexts too). */
export function newClipId () {
  const bytes = crypto.getRandomValues(new Uint8Array(6))
  return `clip-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`
}

export class Project {
  /**
   * `renew` (optional): resolves with a fresh token (a signed-in person's, derived from the
   * session); then a connection refused for its token (4401) renews it and reconnects once.
   */
  constructor (projectId, token, { renew = null } = {}) {
    this.projectId = projectId
    this.token = token
    this.renew = renew
    this.doc = new Y.Doc()
    this.roots = Object.fromEntries(ROOTS.map((name) => [name, this.doc.getMap(name)]))
    this.provider = null
    this.plugins = null // the server's LV2 catalogue (lv2.js Lv2Catalog), set by main.js
    // Undo/redo of this page's own edits only (remote edits come with the provider as origin).
    this.history = new Y.UndoManager(Object.values(this.roots), { captureTimeout: 400 })
  }

  undo () { this.history.undo() }

  redo () { this.history.redo() }

  /** Connect to ws(s)://host/collab/PROJECT; `onStatus(text, final)` reports the link. */
  connect (onStatus) {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws'
    const url = `${scheme}://${window.location.host}/collab`
    this.provider = new WebsocketProvider(url, this.projectId, this.doc, {
      params: { token: this.token }, disableBc: true, maxBackoffTime: 2500
    })
    skipEncodingRemoteUpdates(this.provider)
    let closed = false
    let renewed = false // since the last sync: a token just renewed and refused again is final
    const refuse = (reason) => {
      closed = true
      onStatus(`closed: ${reason}`, true)
    }
    this.provider.on('status', ({ status }) => { if (!closed) onStatus(status, false) })
    this.provider.on('sync', (synced) => { if (synced) renewed = false })
    this.provider.on('connection-close', (event) => {
      if (!event || !FINAL_CLOSE_CODES.has(event.code)) return
      this.provider.shouldConnect = false // the server said no: do not retry with this token
      if (event.code === UNAUTHORIZED && this.renew && !renewed) {
        renewed = true
        onStatus('renewing', false)
        this.renew().then((token) => {
          this.setToken(token)
          this.provider.connect()
        }, (err) => refuse(`${event.reason || event.code} (${err.message})`))
        return
      }
      refuse(event.reason || event.code)
    })
    return new Promise((resolve) => {
      if (this.provider.synced) resolve()
      this.provider.once('sync', () => resolve())
    })
  }

  /** Present `token` from the next (re)connection on (the open one stays as it is). */
  setToken (token) {
    this.token = token
    if (this.provider) this.provider.params = { ...this.provider.params, token }
  }

  get awareness () { return this.provider.awareness }

  get sampleRate () { return Number(this.roots.meta.get('sample_rate')) || 48000 }

  get name () { return String(this.roots.meta.get('name') || 'Untitled') }

  transport () {
    return { ...TRANSPORT_DEFAULTS, ...this.roots.transport.toJSON() }
  }

  /** The tempo map (web/src/tempo.js): tempo and meter changes, else the transport's. */
  tempoMap () {
    return tempoMap(this.roots.tempos.toJSON(), this.roots.meters.toJSON(), this.transport())
  }

  /** The server's stretch job of a clip ({status, progress, error}) or null. */
  stretchJob (clipId) {
    let found = null
    this.roots.jobs.forEach((map) => {
      if (map.get('kind') === 'stretch' && map.get('clip') === clipId) found = map.toJSON()
    })
    return found
  }

  /** Set a clip's stretch, pitch, crossfade or tempo following (one transaction). */
  setClipTime (clipId, fields) {
    const map = this.roots.clips.get(clipId)
    if (!map) return
    this.doc.transact(() => {
      for (const [key, value] of Object.entries(fields)) {
        if (CLIP_TIME_FIELDS.includes(key)) map.set(key, value)
      }
    })
  }

  /**
   * Set a MIDI clip's tempo following (as collab/midi.py's update_midi_clip): `follow_tempo`
   * and `source_bpm`, the tempo its notes were written at (20…999, needed to follow).
   * Throws an Error saying why for a value the server would refuse; one transaction.
   */
  setMidiClipTempo (clipId, { follow_tempo: follow, source_bpm: bpm }) {
    const map = this.roots.midi_clips.get(clipId)
    if (!map) return
    const rate = bpm ?? Number(map.get('source_bpm') ?? 0)
    const ok = Number.isFinite(rate) && rate >= MIDI_BPM_RANGE[0] && rate <= MIDI_BPM_RANGE[1]
    if ((bpm !== undefined || (follow ?? map.get('follow_tempo')) === true) && !ok) {
      throw new Error(`the tempo a MIDI clip's notes were written at must be ${MIDI_BPM_RANGE[0]} to ` +
        `${MIDI_BPM_RANGE[1]} BPM, not ${rate}`)
    }
    this.doc.transact(() => {
      if (bpm !== undefined) map.set('source_bpm', bpm)
      if (follow !== undefined) map.set('follow_tempo', follow)
    })
  }

  /** Set a clip's warp markers: [[source frame, timeline frame], ...], increasing in both
   * (web/src/warp_map.js checks them); none: the key goes, as collab/time_fields.py writes. */
  setWarp (clipId, warp) {
    const map = this.roots.clips.get(clipId)
    if (!map) return
    this.doc.transact(() => {
      if (warp.length) map.set('warp', warp.map(([source, at]) => [Math.round(source), Math.round(at)]))
      else if (map.has('warp')) map.delete('warp')
    })
  }

  /** Tracks as plain objects in display order. */
  tracks () {
    const rows = Object.values(this.roots.tracks.toJSON())
    return rows.sort((a, b) => (a.order ?? 0) - (b.order ?? 0) || String(a.id).localeCompare(b.id))
  }

  clips () { return Object.values(this.roots.clips.toJSON()) }

  clip (clipId) {
    const map = this.roots.clips.get(clipId)
    return map ? map.toJSON() : null
  }

  /** A clip's transcript, its words moved to the clip's start now if it was trimmed since. */
  transcript (clipId) {
    const map = this.roots.transcripts.get(clipId)
    if (!map) return null
    const transcript = map.toJSON()
    const clip = this.roots.clips.get(clipId)
    if (clip && typeof transcript.offset === 'number' && transcript.offset !== clip.get('offset')) {
      const from = (clip.get('offset') - transcript.offset) / this.sampleRate
      transcript.segments = sliceSegments(transcript.segments, from, from + clip.get('length') / this.sampleRate)
      transcript.offset = clip.get('offset')
    }
    return transcript
  }

  /** The clips of one track as plain objects (copies only those, not the whole document). */
  clipsOn (trackId) {
    const out = []
    this.roots.clips.forEach((map) => { if (map.get('track') === trackId) out.push(map.toJSON()) })
    return out
  }

  /**
   * Whether [start, start + length) on a track is free of other clips. The engine refuses a
   * document with overlapping clips on one track (dsp_core.session), so the page never
   * writes one.
   */
  fits (trackId, start, length, ignore = []) {
    return this.clipsOn(trackId).every((c) => ignore.includes(c.id) ||
      c.position >= start + length || c.position + c.length <= start)
  }

  /**
   * Whether a clip at [start, start + length) may land on a track where it overlaps: the
   * engine's rule for overlaps it crossfades (dsp_core.session): after sorting by position,
   * each clip overlaps only the one before it, starting after it starts and ending after it
   * ends, and never reaches back into the clip before that one.
   */
  crossfades (trackId, start, length, ignore = []) {
    const spans = this.clipsOn(trackId).filter((c) => !ignore.includes(c.id))
      .map((c) => [c.position, c.position + c.length])
    spans.push([start, start + length])
    spans.sort((a, b) => a[0] - b[0])
    let beforePreviousEnd = 0
    for (let i = 1; i < spans.length; i++) {
      const [position, end] = spans[i]
      const [prevPosition, prevEnd] = spans[i - 1]
      if (position < prevEnd && (position <= prevPosition || end <= prevEnd ||
          position < beforePreviousEnd)) return false
      beforePreviousEnd = prevEnd
    }
    return true
  }

  /** The first position at or after `start` where `length` frames fit on the track. */
  firstFree (trackId, start, length) {
    let at = Math.max(0, Math.round(start))
    for (const c of this.clipsOn(trackId).sort((a, b) => a.position - b.position)) {
      if (c.position < at + length && c.position + c.length > at) at = c.position + c.length
    }
    return at
  }

  /** Where a clip may grow to: the end of the clip before it and the start of the one after. */
  room (clipId) {
    const clip = this.clip(clipId)
    let before = 0
    let after = Infinity
    for (const c of this.clipsOn(clip.track)) {
      if (c.id === clipId) continue
      if (c.position + c.length <= clip.position) before = Math.max(before, c.position + c.length)
      if (c.position >= clip.position + clip.length) after = Math.min(after, c.position)
    }
    return { before, after }
  }

  /** Frames at which the last clip ends. */
  endFrame () {
    let end = 0
    this.roots.clips.forEach((map) => { end = Math.max(end, (Number(map.get('position')) || 0) + (Number(map.get('length')) || 0)) })
    return end
  }

  // -- edits ------------------------------------------------------------------------------

  setTrack (trackId, field, value) {
    const map = this.roots.tracks.get(trackId)
    if (map && map.get(field) !== value) this.doc.transact(() => map.set(field, value))
  }

  /** Set an aux bus's or the master's ('master') `gain_db` or `pan` (a bus's fader). */
  setBus (busId, field, value) {
    const map = this.roots.buses.get(busId)
    if (map && map.get(field) !== value) this.doc.transact(() => map.set(field, value))
  }

  /** Move a clip (to another track too); its warp markers pin timeline frames, so they
   * move with it and the clip plays the same audio from its new place. */
  moveClip (clipId, position, trackId) {
    const map = this.roots.clips.get(clipId)
    if (!map) return
    this.doc.transact(() => {
      const to = Math.max(0, Math.round(position))
      const by = to - (map.get('position') || 0)
      map.set('position', to)
      const warp = map.get('warp')
      if (by && Array.isArray(warp) && warp.length) {
        map.set('warp', warp.map(([source, at]) => [source, at + by]))
      }
      if (trackId && trackId !== map.get('track')) map.set('track', trackId)
    })
  }

  /** Set a clip's position, offset and length together (a trim). */
  trimClip (clipId, { position, offset, length }) {
    const map = this.roots.clips.get(clipId)
    if (!map) return
    const before = map.toJSON()
    const transcript = this.transcript(clipId)
    this.doc.transact(() => {
      map.set('position', Math.max(0, Math.round(position)))
      map.set('offset', Math.max(0, Math.round(offset)))
      map.set('length', Math.max(1, Math.round(length)))
      // Fades must fit inside the clip (the engine refuses them otherwise): shrink them.
      const fades = (before.fade_in || 0) + (before.fade_out || 0)
      if (fades > map.get('length')) {
        const scale = map.get('length') / fades
        map.set('fade_in', Math.floor((before.fade_in || 0) * scale))
        map.set('fade_out', Math.floor((before.fade_out || 0) * scale))
      }
      if (transcript) {
        // Transcripts are in clip time: keep the words still inside, shifted with the start.
        const from = (map.get('offset') - before.offset) / this.sampleRate
        const segments = sliceSegments(transcript.segments, from, from + map.get('length') / this.sampleRate)
        this.roots.transcripts.get(clipId).set('segments', Y.Array.from(segments))
        this.roots.transcripts.get(clipId).set('offset', map.get('offset'))
      }
    })
  }

  addClip (trackId, fields) {
    const id = newClipId()
    const clip = new Y.Map()
    this.doc.transact(() => {
      this.roots.clips.set(id, clip)
      for (const [key, value] of Object.entries({
        id, track: trackId, offset: 0, gain_db: 0, fade_in: 0, fade_out: 0, ...fields
      })) clip.set(key, value)
    })
    return id
  }

  /** Append an empty track (fields as collab/schema.py writes them); returns its id. */
  addTrack (name) {
    const tracks = this.tracks()
    const id = `track-${newClipId().slice(5)}`
    const order = tracks.length ? Math.max(...tracks.map((t) => Number(t.order) || 0)) + 1 : 0
    const track = new Y.Map()
    this.doc.transact(() => {
      this.roots.tracks.set(id, track)
      for (const [key, value] of Object.entries({
        id, name: name || `Track ${tracks.length + 1}`, order, colour: PALETTE[order % PALETTE.length],
        channels: 2, gain_db: 0, pan: 0, mute: false, solo: false, arm: false
      })) track.set(key, value)
      track.set('effects', new Y.Array())
      track.set('sends', new Y.Map())
      track.set('automation', newLanes())
    })
    return id
  }

  /** Add a timeline marker (as collab/schema.py's add_marker); returns its id. */
  /**
   * Add or move a tempo change (as collab/tempo.py's set_tempo_change): `bpm` from
   * quarter-note `beat` on (`ramp`: gliding to the next change's tempo). `id` null adds
   * a new one; returns its id.
   */
  setTempoChange (id, beat, bpm, ramp = false) {
    beat = Math.max(0, Number(beat))
    bpm = Number(bpm)
    if (!Number.isFinite(beat) || !Number.isFinite(bpm) || bpm < 10 || bpm > 999) {
      throw new Error('a tempo must be 10 to 999 beats a minute')
    }
    id = id || `tempo-${newClipId().slice(5)}`
    const entry = new Y.Map()
    this.doc.transact(() => {
      this.roots.tempos.set(id, entry)
      for (const [key, value] of Object.entries({ id, beat, bpm })) entry.set(key, value)
      if (ramp === true) entry.set('ramp', true) // absent unless it ramps, as before ramps
    })
    return id
  }

  /**
   * Add or move a meter change (as collab/tempo.py's set_meter_change): from 0-based `bar`
   * on, `numerator`/`denominator`. `id` null adds a new one; returns its id.
   */
  setMeterChange (id, bar, numerator, denominator) {
    bar = Math.max(0, Math.round(Number(bar)))
    numerator = Number(numerator)
    denominator = Number(denominator)
    if (!Number.isInteger(numerator) || numerator < 1 || numerator > 64 ||
        ![1, 2, 4, 8, 16, 32].includes(denominator)) {
      throw new Error('a meter is 1 to 64 beats over 1, 2, 4, 8, 16 or 32 (e.g. 3/4, 7/8)')
    }
    id = id || `meter-${newClipId().slice(5)}`
    const entry = new Y.Map()
    this.doc.transact(() => {
      this.roots.meters.set(id, entry)
      for (const [key, value] of Object.entries({ id, bar, numerator, denominator })) entry.set(key, value)
    })
    return id
  }

  /** Remove a tempo or meter change. */
  removeTimeChange (id) {
    this.doc.transact(() => {
      if (this.roots.tempos.has(id)) this.roots.tempos.delete(id)
      if (this.roots.meters.has(id)) this.roots.meters.delete(id)
    })
  }

  addMarker (position, name) {
    const id = `marker-${newClipId().slice(5)}`
    const marker = new Y.Map()
    this.doc.transact(() => {
      this.roots.markers.set(id, marker)
      for (const [key, value] of Object.entries({ id, name, position: Math.round(position), colour: '' })) {
        marker.set(key, value)
      }
    })
    return id
  }

  /** Add a comment (as collab/schema.py's add_comment); returns its id. */
  addComment (author, text, track = '', position = -1) {
    const id = `comment-${newClipId().slice(5)}`
    const comment = new Y.Map()
    this.doc.transact(() => {
      this.roots.comments.set(id, comment)
      const fields = { id, author, text, created_at: Date.now() / 1000, track, position: Math.round(position) }
      for (const [key, value] of Object.entries(fields)) comment.set(key, value)
    })
    return id
  }

  /** Rename a marker (as collab/schema.py's update_marker). */
  renameMarker (markerId, name) {
    const marker = this.roots.markers.get(markerId)
    if (marker) this.doc.transact(() => marker.set('name', name))
  }

  /** Delete a marker (as collab/schema.py's remove_marker). */
  removeMarker (markerId) {
    this.doc.transact(() => this.roots.markers.delete(markerId))
  }

  /** Replace a comment's text (as collab/schema.py's update_comment). */
  editComment (commentId, text) {
    const comment = this.roots.comments.get(commentId)
    if (comment) this.doc.transact(() => comment.set('text', text))
  }

  /** Delete a comment (as collab/schema.py's remove_comment). */
  removeComment (commentId) {
    this.doc.transact(() => this.roots.comments.delete(commentId))
  }

  removeClip (clipId) {
    this.doc.transact(() => {
      this.roots.clips.delete(clipId)
      this.roots.transcripts.delete(clipId)
    })
  }

  setTransport (fields) {
    this.doc.transact(() => {
      for (const [key, value] of Object.entries(fields)) this.roots.transport.set(key, value)
    })
  }

  setName (name) {
    this.doc.transact(() => this.roots.meta.set('name', name))
  }

  /** The insert chain (a Y.Array of effect maps) of a track or bus (the master's id is
   * 'master'): both keep it as `effects` (docs/document-schema.md). */
  chain (ownerId) {
    return (this.roots.tracks.get(ownerId) || this.roots.buses.get(ownerId))?.get('effects')
  }

  setEffectParam (ownerId, index, name, value) {
    const effect = this.chain(ownerId)?.get(index)
    if (effect) this.doc.transact(() => effect.get('params').set(name, value))
  }

  /** Append an insert effect of `kind` with `params` over its defaults to a track's or
   * bus's chain (as collab/schema.py's add_effect; an lv2 one names its plug-in: {uri});
   * returns its id. */
  addEffect (ownerId, kind, params = {}) {
    const effects = this.chain(ownerId)
    if (!effects) return null
    const id = `fx-${newClipId().slice(5)}`
    const effect = new Y.Map()
    this.doc.transact(() => {
      effects.push([effect])
      for (const [key, value] of Object.entries({ id, kind, enabled: true })) effect.set(key, value)
      const map = effect.set('params', new Y.Map())
      for (const [key, value] of Object.entries(params)) map.set(key, value)
    })
    return id
  }

  /** Give a track an instrument of `kind` (replacing any), stored as collab/midi.py's
   * instrument_map: {kind, params, zones}; an lv2 one's params name its plug-in ({uri}). */
  setInstrument (trackId, kind, params = {}) {
    const track = this.roots.tracks.get(trackId)
    if (!track) return
    const instrument = new Y.Map()
    this.doc.transact(() => {
      track.set('instrument', instrument)
      instrument.set('kind', kind)
      const map = instrument.set('params', new Y.Map())
      for (const [key, value] of Object.entries(params)) map.set(key, value)
      instrument.set('zones', new Y.Map())
    })
  }

  /** Set one parameter of a track's instrument (an lv2 one's control, by port symbol). */
  setInstrumentParam (trackId, name, value) {
    const params = this.roots.tracks.get(trackId)?.get('instrument')?.get('params')
    if (params) this.doc.transact(() => params.set(name, value))
  }

  removeEffect (ownerId, index) {
    const effects = this.chain(ownerId)
    if (effects && index >= 0 && index < effects.length) this.doc.transact(() => effects.delete(index, 1))
  }

  setEffectEnabled (ownerId, index, enabled) {
    const effect = this.chain(ownerId)?.get(index)
    if (effect) this.doc.transact(() => effect.set('enabled', enabled))
  }

  /** Key a compressor or gate of a track or bus by `source` (a track or aux bus id; ''
   * for its own input), as collab/schema.py's set_effect_sidechain; the engine refuses a
   * cycle. */
  setEffectSidechain (ownerId, index, source) {
    const effect = this.chain(ownerId)?.get(index)
    if (!effect || source === ownerId) return
    if (source && !this.roots.tracks.has(source) && !this.roots.buses.has(source)) return
    this.doc.transact(() => effect.set('sidechain', source))
  }

  /** Apply a cut plan (see transcript.js `planCut`) in one transaction. */
  applyCut (plan) {
    const { clips, transcripts } = this.roots
    this.doc.transact(() => {
      for (const [clipId, fields] of Object.entries(plan.update)) {
        const map = clips.get(clipId)
        for (const [key, value] of Object.entries(fields)) map.set(key, value)
      }
      for (const clipId of plan.remove) {
        clips.delete(clipId)
        transcripts.delete(clipId)
      }
      for (const fields of plan.add) {
        const map = new Y.Map()
        clips.set(fields.id, map)
        for (const [key, value] of Object.entries(fields)) map.set(key, value)
      }
      for (const [clipId, transcript] of Object.entries(plan.transcripts)) {
        if (transcript === null) {
          transcripts.delete(clipId)
          continue
        }
        const map = new Y.Map()
        transcripts.set(clipId, map)
        for (const [key, value] of Object.entries(transcript)) {
          map.set(key, key === 'segments' ? Y.Array.from(value) : value)
        }
        map.set('clip', clipId)
      }
    })
  }
}
