// Listening to the server's live mix: a WebRTC audio stream played through Web Audio.
//
// The page sends an SDP offer to POST /projects/ID/rtc and plays the answer's track
// through an AudioContext with a volume control. To record, the offer also carries the
// microphone: the server writes it into the armed tracks while the transport records
// and adds the take as a clip through the document (dawserver/recording.py). While
// connected the page reads getStats() four times a second, so it knows the round trip
// a take will have (latency.js): once the connection that records has settled, the page
// measures it there and declares it (PATCH /projects/ID/rtc/CONNECTION) before recording,
// and again, measured over the whole take, before the take stops: the jitter buffer
// deepens when packets come late, and the musician heard the take that much later.
import { api } from './api.js'
import { snapshot, bufferMs, networkMs, roundTrip } from './latency.js'

const STATS_EVERY_MS = 250
const STATS_WINDOW_MS = 500 // the jitter buffer's delay over the last half second
const SETTLE_MS = 1000 // after the stream has played this long
const STEADY_MS = 5 // and the delay moves less than this from one half second to the next
const DRAINED_MS = 25 // and is this close to the jitter buffer's own target (not still draining)

export class LiveMix {
  constructor ({ projectId, token, available, serverMs = 0 }) {
    Object.assign(this, { projectId, token, available, serverMs })
    this.monitor = 'mix' // or the immersive mix: 'binaural' (headphones), 'stereo' (immersive.js)
    this.pc = null
    this.context = null
    this.gain = null
    this.element = null
    this.mic = null
    this.declared = null // the round trip declared for the current connection
    this.connection = null // the server's id of the current connection
    this._stats = []
    this._heardSince = null // when the first audio came out of the jitter buffer
    this._poll = null
    this._takeFrom = null // the getStats() reading when the take began
    this._takeDelays = [] // the jitter buffer's delay (ms) every reading since
    this.lastTake = null // { roundTrip, drift } of the last take this page ended
  }

  get active () { return this.pc !== null }

  get sending () { return Boolean(this.mic) }

  /** Connect and start playing (sending `mic` too, if given); resolves once connected.
   * `latency` (from roundTrip()) goes with the offer: the server places takes that
   * much earlier. */
  async start ({ mic = null, latency = null } = {}) {
    if (!this.available) throw new Error('this server offers no live mix (WebRTC) endpoint')
    if (this.pc) return
    const pc = new RTCPeerConnection({ iceServers: [] })
    this.pc = pc
    this.mic = mic
    this.declared = latency
    if (mic) pc.addTransceiver(mic.getAudioTracks()[0], { direction: 'sendrecv', streams: [mic] })
    else pc.addTransceiver('audio', { direction: 'recvonly' })
    pc.ontrack = (event) => this._play(event.streams[0] || new MediaStream([event.track]))
    try {
      await pc.setLocalDescription(await pc.createOffer())
      await iceGathered(pc)
      const answer = await api(`/projects/${encodeURIComponent(this.projectId)}/rtc`, {
        token: this.token, method: 'POST',
        body: { sdp: pc.localDescription.sdp, type: pc.localDescription.type, latency_ms: latency?.total ?? 0, monitor: this.monitor }
      })
      await pc.setRemoteDescription(answer)
      this.connection = answer.connection
    } catch (err) {
      this.stop()
      throw err
    }
    this._poll = setInterval(() => this._sample(pc), STATS_EVERY_MS)
  }

  /** The round trip a take recorded with `mic` would have (see latency.js), measured on
   * the stream once it has settled; listens first if not listening yet. */
  async roundTrip (mic) {
    if (!this.pc) await this.start()
    const heard = await this.settled()
    return roundTrip({ ...(heard || {}), context: this.context, mic, serverMs: this.serverMs })
  }

  /** Declare `latency` (from roundTrip()) as the current connection's round trip: every
   * take the server ends from now on, the one under way included, starts that much earlier. */
  async declare (latency) {
    if (!this.pc || !this.connection) throw new Error('not connected to the live mix')
    await api(`/projects/${encodeURIComponent(this.projectId)}/rtc/${encodeURIComponent(this.connection)}`, {
      token: this.token, method: 'PATCH', body: { latency_ms: latency.total }
    })
    this.declared = latency
  }

  /** Mark the start of a take: takeRoundTrip() measures from here. */
  async beginTake () {
    this._takeFrom = this.pc ? await snapshot(this.pc) : null
    this._takeDelays = []
  }

  /** How far (ms) the jitter buffer's delay moved during the take so far: one offset
   * cannot place every part of a take whose delay moved, so the take may be off by up
   * to this much (a busy machine or network). */
  takeDrift () {
    if (this._takeDelays.length < 2) return 0
    return Math.max(...this._takeDelays) - Math.min(...this._takeDelays)
  }

  /** The round trip (roundTrip()) with the jitter buffer's delay averaged over the take
   * since beginTake(), or null when there is none to measure. */
  async takeRoundTrip () {
    if (!this.pc || !this._takeFrom || !this.declared) return null
    const now = await snapshot(this.pc)
    const receiveMs = bufferMs(this._takeFrom, now)
    if (receiveMs === null) return null
    return roundTrip({
      networkMs: networkMs(this._takeFrom, now), receiveMs, context: this.context, mic: this.mic, serverMs: this.serverMs
    })
  }

  /** Resolves with heard() once the stream has settled (after `timeoutMs`, with what
   * the last half second gave, or null). A new connection's jitter buffer starts deep
   * and drains for a second or more, longer on a busy machine: one still draining at
   * the deadline counts at the depth it is draining to, its target. */
  async settled ({ timeoutMs = 6000 } = {}) {
    const deadline = performance.now() + timeoutMs
    let heard = this.heard()
    while (!heard && this.pc && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      heard = this.heard()
    }
    return heard || this.heard({ steady: false })
  }

  /** The network round trip and the jitter buffer's delay (ms) over the last half second,
   * once the stream has played for SETTLE_MS and the delay has settled: the last two half
   * seconds within STEADY_MS, and within DRAINED_MS of the jitter buffer's target (which
   * starts at 80 ms and drops as packets keep arriving on time); else null. */
  heard ({ steady = true } = {}) {
    const newest = this._stats[this._stats.length - 1]
    if (!newest || this._heardSince === null) return null
    const ago = (ms) => this._stats.findLast((s) => newest.at - s.at >= ms * 0.9)
    const middle = ago(STATS_WINDOW_MS)
    const receiveMs = middle ? bufferMs(middle, newest) : null
    if (receiveMs === null) return null
    const target = bufferMs(middle, newest, { target: true })
    const network = networkMs(middle, newest)
    if (steady) {
      const oldest = ago(2 * STATS_WINDOW_MS)
      const before = oldest ? bufferMs(oldest, middle) : null
      if (newest.at - this._heardSince < SETTLE_MS || before === null ||
        Math.abs(before - receiveMs) > STEADY_MS || receiveMs - target > DRAINED_MS) return null
    } else if (target > 0 && target < receiveMs) {
      return { networkMs: network, receiveMs: target } // still draining: where it is heading
    }
    return { networkMs: network, receiveMs }
  }

  async _sample (pc) {
    try {
      const stats = await snapshot(pc)
      if (pc !== this.pc) return
      const previous = this._stats[this._stats.length - 1]
      this._stats.push(stats)
      const delay = this._takeFrom && previous ? bufferMs(previous, stats) : null
      if (delay !== null) this._takeDelays.push(delay)
      if (this._heardSince === null && stats.emitted > 0) this._heardSince = stats.at
      while (this._stats.length > 2 && stats.at - this._stats[1].at >= 2 * STATS_WINDOW_MS) this._stats.shift()
    } catch { /* the connection closed under us */ }
  }

  /** The RMS level of what is playing now (0 when not listening). */
  level () {
    if (!this.analyser) return 0
    const samples = new Float32Array(this.analyser.fftSize)
    this.analyser.getFloatTimeDomainData(samples)
    return Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length)
  }

  setVolume (value) {
    if (this.gain) this.gain.gain.value = value
  }

  stop () {
    if (this.pc) this.pc.close()
    this.pc = null
    clearInterval(this._poll)
    this._poll = null
    this._stats = []
    this._heardSince = null
    this.declared = null
    this.connection = null
    this._takeFrom = null
    this._takeDelays = []
    if (this.mic) this.mic.getTracks().forEach((t) => t.stop())
    this.mic = null
    if (this.element) this.element.srcObject = null
    if (this.context) this.context.close()
    this.context = null
    this.gain = null
    this.analyser = null
  }

  _play (stream) {
    // Chrome only feeds a remote WebRTC stream into Web Audio while a media element holds it.
    this.element = this.element || Object.assign(new Audio(), { muted: true })
    this.element.srcObject = stream
    this.element.play().catch(() => {})
    this.context = this.context || new AudioContext({ latencyHint: 'interactive' })
    this.gain = this.context.createGain()
    this.analyser = this.context.createAnalyser()
    this.analyser.fftSize = 2048
    this.context.createMediaStreamSource(stream).connect(this.gain).connect(this.analyser)
      .connect(this.context.destination)
    this.context.resume().catch(() => {})
  }
}

function iceGathered (pc, timeoutMs = 2000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === 'complete') {
        pc.removeEventListener('icegatheringstatechange', done)
        resolve()
      }
    }
    pc.addEventListener('icegatheringstatechange', done)
    setTimeout(resolve, timeoutMs)
  })
}
