// A stock yjs + y-websocket client driven by JSON lines on stdin (used by pytest).
//
// Commands (one JSON object per line, "id" is echoed back in the reply):
//   {"cmd": "connect", "url": "ws://host:port/collab", "room": "PROJECT", "token": "..."}
//   {"cmd": "set_track", "track": "t1", "field": "gain_db", "value": -6}
//   {"cmd": "add_marker", "marker": "m1", "position": 48000, "name": "chorus"}
//   {"cmd": "add_track", "track": "t9", "name": "Keys"}
//   {"cmd": "add_effect", "track": "t1", "effect": "fx-a", "kind": "gain", "params": {"gain_db": -3}}
//   {"cmd": "set_automation_point", "track": "t1", "param": "gain_db", "point": "p1",
//    "frame": 480, "value": -60, "curve": "linear"}   into the track's existing lane
//   {"cmd": "add_note", "clip": "m1", "note": "n1", "pitch": 60, "velocity": 100,
//    "start": 0, "length": 4800, "channel": 0}        into an existing MIDI clip
//   {"cmd": "presence", "state": {...}}          set the local awareness state
//   {"cmd": "disconnect"} / {"cmd": "reconnect"}  go offline / come back
//   {"cmd": "dump"}                               reply with the document as JSON
//   {"cmd": "exit"}
// Events written on stdout: {"event": "synced"}, {"event": "denied", "reason"},
// {"event": "close", "code", "reason"}, {"event": "status", "status"}.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const doc = new Y.Doc()
let provider = null

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

// y-websocket reports a refused change ("permission denied") through console.warn.
console.warn = (...args) => {
  const text = args.join(' ')
  if (text.includes('Permission denied')) emit({ event: 'denied', reason: text })
}

const dump = () => {
  const out = {}
  for (const name of ['meta', 'tracks', 'clips', 'buses', 'transport', 'markers', 'comments', 'transcripts', 'jobs', 'midi_clips', 'tempos', 'meters']) {
    out[name] = doc.getMap(name).toJSON()
  }
  return out
}

const handlers = {
  connect ({ url, room, token }) {
    provider = new WebsocketProvider(url, room, doc, {
      WebSocketPolyfill: WebSocket,
      disableBc: true,
      params: token ? { token } : {},
      maxBackoffTime: 200
    })
    provider.on('sync', (synced) => { if (synced) emit({ event: 'synced' }) })
    provider.on('status', ({ status }) => emit({ event: 'status', status }))
    provider.on('connection-close', (event) => {
      if (event) emit({ event: 'close', code: event.code, reason: String(event.reason || '') })
    })
    return {}
  },
  set_track ({ track, field, value }) {
    const map = doc.getMap('tracks').get(track)
    if (!map) throw new Error(`no track ${track}`)
    map.set(field, value)
    return {}
  },
  set_clip ({ clip, field, value }) {
    const map = doc.getMap('clips').get(clip)
    if (!map) throw new Error(`no clip ${clip}`)
    map.set(field, value)
    return {}
  },
  add_track ({ track, name }) {
    const tracks = doc.getMap('tracks')
    doc.transact(() => {
      const map = new Y.Map()
      tracks.set(track, map)
      for (const [k, v] of Object.entries({ id: track, name, order: tracks.size, colour: '#888888', channels: 1, gain_db: 0, pan: 0, mute: false, solo: false, arm: false })) map.set(k, v)
      map.set('effects', new Y.Array())
      map.set('sends', new Y.Map())
    })
    return {}
  },
  add_effect ({ track, effect, kind, params }) {
    const map = doc.getMap('tracks').get(track)
    if (!map) throw new Error(`no track ${track}`)
    const fx = new Y.Map()
    doc.transact(() => {
      map.get('effects').push([fx])
      fx.set('id', effect); fx.set('kind', kind); fx.set('enabled', true)
      fx.set('params', new Y.Map(Object.entries(params || {})))
    })
    return {}
  },
  set_automation_point ({ track, param, point, frame, value, curve }) {
    const map = doc.getMap('tracks').get(track)
    const lane = map && map.get('automation') && map.get('automation').get(param)
    if (!lane) throw new Error(`no ${param} lane on track ${track}`)
    const entry = new Y.Map()
    doc.transact(() => {
      lane.get('points').set(point, entry)
      entry.set('frame', frame); entry.set('value', value); entry.set('curve', curve || 'linear')
    })
    return {}
  },
  add_note ({ clip, note, pitch, velocity, start, length, channel }) {
    const map = doc.getMap('midi_clips').get(clip)
    if (!map) throw new Error(`no MIDI clip ${clip}`)
    const entry = new Y.Map()
    doc.transact(() => {
      map.get('notes').set(note, entry)
      for (const [k, v] of Object.entries({ pitch, velocity, start, length, channel: channel || 0 })) entry.set(k, v)
    })
    return {}
  },
  add_marker ({ marker, position, name }) {
    const map = new Y.Map()
    doc.transact(() => {
      doc.getMap('markers').set(marker, map)
      map.set('id', marker); map.set('position', position); map.set('name', name); map.set('colour', '')
    })
    return {}
  },
  presence ({ state }) { provider.awareness.setLocalState(state); return {} },
  presence_dump () {
    const states = {}
    provider.awareness.getStates().forEach((s, id) => { if (id !== doc.clientID) states[id] = s })
    return { states }
  },
  disconnect () { provider.shouldConnect = false; provider.disconnect(); return {} },
  reconnect () { provider.connect(); return {} },
  dump () { return { doc: dump() } },
  exit () { if (provider) provider.destroy(); setTimeout(() => process.exit(0), 20); return {} }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  if (!line.trim()) return
  const msg = JSON.parse(line)
  try {
    emit({ id: msg.id, ok: true, ...handlers[msg.cmd](msg) })
  } catch (err) {
    emit({ id: msg.id, ok: false, error: String(err && err.message) })
  }
})
rl.on('close', () => process.exit(0))
