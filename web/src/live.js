// Listening to the server's live mix: a WebRTC audio stream played through Web Audio.
//
// The page sends an SDP offer to POST /projects/ID/rtc and plays the answer's track
// through an AudioContext with a volume control. To record, the offer also carries the
// microphone: the server writes it into the armed tracks while the transport records
// and adds the take as a clip through the document (dawserver/recording.py).
import { api } from './api.js'

export class LiveMix {
  constructor ({ projectId, token, available }) {
    Object.assign(this, { projectId, token, available })
    this.pc = null
    this.context = null
    this.gain = null
    this.element = null
    this.mic = null
  }

  get active () { return this.pc !== null }

  get sending () { return Boolean(this.mic) }

  /** Connect and start playing (sending `mic` too, if given); resolves once connected. */
  async start ({ mic = null, latencyMs = 0 } = {}) {
    if (!this.available) throw new Error('this server offers no live mix (WebRTC) endpoint')
    if (this.pc) return
    const pc = new RTCPeerConnection({ iceServers: [] })
    this.pc = pc
    this.mic = mic
    if (mic) pc.addTransceiver(mic.getAudioTracks()[0], { direction: 'sendrecv', streams: [mic] })
    else pc.addTransceiver('audio', { direction: 'recvonly' })
    pc.ontrack = (event) => this._play(event.streams[0] || new MediaStream([event.track]))
    try {
      await pc.setLocalDescription(await pc.createOffer())
      await iceGathered(pc)
      const answer = await api(`/projects/${encodeURIComponent(this.projectId)}/rtc`, {
        token: this.token, method: 'POST',
        body: { sdp: pc.localDescription.sdp, type: pc.localDescription.type, latency_ms: latencyMs }
      })
      await pc.setRemoteDescription(answer)
    } catch (err) {
      this.stop()
      throw err
    }
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
