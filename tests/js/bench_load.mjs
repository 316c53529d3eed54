// Load generator for benchmarks/bench_collab.py: many y-websocket clients in one process.
//
//   node bench_load.mjs CONFIG.json      (writes one JSON result line on stdout)
//
// Modes (config.mode):
//   "seed":   open every room in config.rooms, push config.seed (a Yjs update, base64) into
//             it, wait until the server answered sync step 2, print {"loaded": n}, then keep
//             the connections open until stdin closes (so the documents stay loaded).
//   "load":   config.clients clients join config.rooms[0]; after a warm-up each moves the
//             fader of its own track at config.hz for config.seconds.  Every edit carries a
//             marker string "~client:seq~"; receivers find it in the raw message bytes
//             (no decoding), so the cost of measuring stays small and is reported.
//
// Senders keep a real Y.Doc (synced once) so their updates are genuine Yjs updates that
// reference the shared track maps; receivers do not apply the updates they get.
import * as Y from 'yjs'
import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const MARK = /~(\d+):(\d+)~/g

const syncMessage = (sub, payload) => {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 0)
  encoding.writeVarUint(enc, sub)
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}

const roomUrl = (room) => `${config.url}/${room}` + (config.token ? `?token=${config.token}` : '')

// One raw client: a WebSocket, a Y.Doc (for senders) and a resolve-on-step2 promise.
class Client {
  constructor (index, room, { keepDoc = true } = {}) {
    this.index = index
    this.doc = new Y.Doc()
    this.keepDoc = keepDoc
    this.ws = new WebSocket(roomUrl(room), { perMessageDeflate: false })
    this.ws.binaryType = 'nodebuffer'
    this.lastSeen = new Map()
    this.synced = new Promise((resolve, reject) => {
      this.resolveSynced = resolve
      this.ws.on('error', reject)
      this.ws.on('close', (code, reason) => {
        if (!this.closing) reject(new Error(`closed ${code} ${reason}`))
      })
    })
    this.ws.on('open', () => {
      this.openedAt = performance.now()
      this.ws.send(syncMessage(0, Y.encodeStateVector(this.doc)))
    })
    this.ws.on('message', (data) => this.onMessage(data))
  }

  onMessage (data) {
    if (data[0] !== 0) return // awareness and others
    const sub = data[1]
    if (sub === 0) { // server's step 1: answer with what we have that it lacks
      const dec = decoding.createDecoder(data)
      decoding.readVarUint(dec); decoding.readVarUint(dec)
      const sv = decoding.readVarUint8Array(dec)
      this.ws.send(syncMessage(1, Y.encodeStateAsUpdate(this.doc, sv)))
      return
    }
    if (sub === 1 && !this.isSynced) {
      const arrived = performance.now()
      const dec = decoding.createDecoder(data)
      decoding.readVarUint(dec); decoding.readVarUint(dec)
      Y.applyUpdate(this.doc, decoding.readVarUint8Array(dec))
      this.isSynced = true
      this.syncMs = performance.now() - this.openedAt
      // where a late join's time goes: until the whole document has arrived (server
      // and transfer), then the client's own decode and apply
      this.arriveMs = arrived - this.openedAt
      this.applyMs = performance.now() - arrived
      this.resolveSynced(this)
      return
    }
    if (stats.recording && this.index >= 0 && this.index < 100000) stats.scan(this, data)
  }

  close () { this.closing = true; this.ws.close() }
}

const stats = {
  recording: false,
  sent: new Map(), // "c:s" -> send time, only for edits sent while measuring
  latencies: [],
  received: 0,
  scan (client, data) {
    const text = data.toString('latin1')
    MARK.lastIndex = 0
    let m
    while ((m = MARK.exec(text)) !== null) {
      const sender = +m[1]
      if (sender === client.index) continue // the reference server echoes to the sender
      const seq = +m[2]
      if ((client.lastSeen.get(sender) ?? -1) >= seq) continue
      client.lastSeen.set(sender, seq)
      const sentAt = this.sent.get(sender * 1e7 + seq)
      if (sentAt !== undefined) {
        this.latencies.push(performance.now() - sentAt)
        this.received++
      }
    }
  }
}

// CPU seconds a process has run so far: the sum over its threads of the scheduler's
// precise run time (/proc/PID/task/*/schedstat), not tick-sampled rusage.
const cpuOf = (pid) => {
  let ns = 0
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]) } catch {}
  }
  return ns / 1e9
}
const serverCpu = () => config.server_pid ? cpuOf(config.server_pid) : 0

const percentile = (sorted, q) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
// never hang: give up (and say so) well after the run should have ended
setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: 'load driver deadline passed' }) + '\n')
  process.exit(2)
}, (config.deadline || 600) * 1000).unref()

// A late joiner runs in its own process, so applying the whole document (tens to
// hundreds of ms) never stalls this process's measurements.
const lateJoin = (timeoutMs) => new Promise((resolve) => {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), process.argv[2]], {
    env: { ...process.env, BENCH_LATE_JOIN: '1' }, stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  const timer = setTimeout(() => { child.kill(); resolve(null) }, timeoutMs)
  child.stdout.on('data', (chunk) => { out += chunk })
  child.on('exit', () => {
    clearTimeout(timer)
    try { resolve(JSON.parse(out)) } catch { resolve(null) }
  })
})

async function lateJoinMode () {
  const client = new Client(100000, config.rooms[0])
  await client.synced
  process.stdout.write(JSON.stringify({ sync_ms: client.syncMs, arrive_ms: client.arriveMs, apply_ms: client.applyMs }) + '\n')
  client.close()
  setTimeout(() => process.exit(0), 20)
}

async function seedMode () {
  const seed = Buffer.from(config.seed, 'base64')
  const clients = []
  for (const room of config.rooms) {
    const client = new Client(-1, room)
    await client.synced
    client.ws.send(syncMessage(2, seed))
    // a second sync round trip proves the server has processed the seed
    const probe = new Client(-2, room)
    await probe.synced
    probe.close()
    clients.push(client)
  }
  process.stdout.write(JSON.stringify({ loaded: clients.length }) + '\n')
  process.stdin.resume()
  process.stdin.on('end', () => { clients.forEach((c) => c.close()); setTimeout(() => process.exit(0), 50) })
}

async function loadMode () {
  const room = config.rooms[0]
  const tracks = config.tracks
  const clients = []
  const connectStart = performance.now()
  for (let i = 0; i < config.clients; i++) {
    clients.push(new Client(i, room))
    if (i % 10 === 9) await Promise.all(clients.slice(-10).map((c) => c.synced))
  }
  await Promise.all(clients.map((c) => c.synced))
  const connectMs = performance.now() - connectStart
  const periodMs = 1000 / config.hz
  const counters = clients.map(() => 0)
  const bench = clients.map((c) => c.doc.getMap('bench'))
  clients.forEach((client, i) => {
    client.doc.on('update', (update, origin) => {
      if (origin === 'local' && client.ws.readyState === 1) client.ws.send(syncMessage(2, update))
    })
  })
  let measuring = false
  let sentMeasured = 0
  const edit = (i) => {
    const client = clients[i]
    const seq = counters[i]++
    const track = client.doc.getMap('tracks').get(tracks[i % tracks.length])
    if (measuring) { stats.sent.set(i * 1e7 + seq, performance.now()); sentMeasured++ }
    client.doc.transact(() => {
      track.set('gain_db', -Math.round(Math.random() * 600) / 10)
      bench[i].set(String(i), `~${i}:${seq}~`)
    }, 'local')
  }
  // event-loop lag of the harness itself: how late a 5 ms timer fires
  const lags = []
  let expected = performance.now() + 5
  const lagTimer = setInterval(() => { const now = performance.now(); lags.push(now - expected); expected = now + 5 }, 5)
  const timers = clients.map((_, i) => setTimeout(() => {
    edit(i)
    timers[i] = setInterval(() => edit(i), periodMs)
  }, Math.random() * periodMs))
  stats.recording = true
  await sleep(config.warmup * 1000)
  const cpuStart = cpuOf(process.pid)
  const serverCpuStart = serverCpu()
  const wallStart = performance.now()
  lags.length = 0
  measuring = true
  process.stdout.write(JSON.stringify({ phase: 'start' }) + '\n')
  const lateJoins = []
  const lateEvery = (config.seconds * 1000) / (config.late_joins + 1)
  for (let k = 0; k < config.late_joins; k++) {
    await sleep(lateEvery)
    lateJoins.push(await lateJoin(config.late_join_timeout * 1000))
  }
  await sleep(Math.max(0, config.seconds * 1000 - (performance.now() - wallStart)))
  measuring = false
  process.stdout.write(JSON.stringify({ phase: 'end' }) + '\n')
  timers.forEach((t) => { clearTimeout(t); clearInterval(t) })
  const harnessCpuS = cpuOf(process.pid) - cpuStart
  const serverCpuS = serverCpu() - serverCpuStart
  const wall = performance.now() - wallStart
  await sleep(config.drain * 1000)
  clearInterval(lagTimer)
  stats.recording = false
  clients.forEach((c) => c.close())
  const sorted = Float64Array.from(stats.latencies).sort()
  const lagSorted = Float64Array.from(lags).sort()
  const expectedDeliveries = sentMeasured * (config.clients - 1)
  process.stdout.write(JSON.stringify({
    clients: config.clients,
    connect_ms: connectMs,
    edits_sent: sentMeasured,
    deliveries_expected: expectedDeliveries,
    deliveries_received: stats.received,
    lost: expectedDeliveries - stats.received,
    latency_ms: { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted.length ? sorted[sorted.length - 1] : null },
    late_join_ms: lateJoins.map((j) => j && j.sync_ms),
    late_join_arrive_ms: lateJoins.map((j) => j && j.arrive_ms),
    late_join_apply_ms: lateJoins.map((j) => j && j.apply_ms),
    harness_cpu_s: harnessCpuS,
    server_cpu_s: serverCpuS,
    measure_s: wall / 1000,
    harness_lag_ms: { p50: percentile(lagSorted, 0.5), p99: percentile(lagSorted, 0.99) }
  }) + '\n')
  setTimeout(() => process.exit(0), 50)
}

const mode = process.env.BENCH_LATE_JOIN ? lateJoinMode : config.mode === 'seed' ? seedMode : loadMode
mode().catch((err) => {
  process.stdout.write(JSON.stringify({ error: String(err && err.stack) }) + '\n')
  process.exit(1)
})
