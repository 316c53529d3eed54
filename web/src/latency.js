// The round trip of a take: how much later than the live mix a musician played along to
// their microphone's audio reaches the server's recorder. The page sends it with its
// offer (latency_ms) and the server places the take that much earlier.
//
// Heard: the server sends a frame as it renders it; it crosses the network, waits in the
// page's jitter buffer, then in Web Audio and the sound card. Played: the microphone
// captures it, Opus waits for a whole 20 ms packet, it crosses the network and waits in
// the server's receive buffer. The network both ways is the ICE round trip; the two
// buffers come from getStats() and /page/features; the devices report their own latency.

/** Opus packets from Chrome hold 20 ms: the first sample waits that long to be sent. */
export const PACKET_MS = 20

/** One getStats() reading of `pc`: the audio jitter buffer's counters and the ICE round trip. */
export async function snapshot (pc) {
  const report = await pc.getStats()
  let inbound = null
  let transport = null
  const pairs = []
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') inbound = s
    else if (s.type === 'transport') transport = s
    else if (s.type === 'candidate-pair') pairs.push(s)
  })
  const pair = (transport && report.get(transport.selectedCandidatePairId)) ||
    pairs.find((p) => p.nominated && p.state === 'succeeded')
  return {
    at: performance.now(),
    bufferDelay: inbound?.jitterBufferDelay ?? 0, // seconds, summed over emitted samples
    targetDelay: inbound?.jitterBufferTargetDelay ?? 0,
    emitted: inbound?.jitterBufferEmittedCount ?? 0,
    rtt: pair?.currentRoundTripTime ?? null, // seconds, the latest STUN check's
    rttTotal: pair?.totalRoundTripTime ?? 0, // seconds, summed over every check answered
    rttCount: pair?.responsesReceived ?? 0
  }
}

/** The mean ICE round trip (ms) between two snapshots, or the newer's latest one when no
 * check was answered in between (a single check on a busy machine can be far off). */
export function networkMs (older, newer) {
  const answered = newer.rttCount - older.rttCount
  if (answered > 0) return ((newer.rttTotal - older.rttTotal) / answered) * 1000
  return (newer.rtt ?? 0) * 1000
}

/** What the audio heard between two snapshots waited in the jitter buffer (ms), or null;
 * with `target`, the delay the jitter buffer was aiming for instead. */
export function bufferMs (older, newer, { target = false } = {}) {
  const emitted = newer.emitted - older.emitted
  const delay = target ? newer.targetDelay - older.targetDelay : newer.bufferDelay - older.bufferDelay
  return emitted > 0 ? (delay / emitted) * 1000 : null
}

/** The round trip (`total`, ms) from what was measured and what the devices report. */
export function roundTrip ({ networkMs = 0, receiveMs = 0, context = null, mic = null, serverMs = 0 }) {
  const track = mic?.getAudioTracks?.()[0]
  const parts = {
    network: networkMs, // server → page → server
    receive: receiveMs, // the page's jitter buffer
    output: ((context?.baseLatency || 0) + (context?.outputLatency || 0)) * 1000, // Web Audio → speaker
    input: (track?.getSettings?.().latency || 0) * 1000, // microphone → page
    packet: PACKET_MS,
    server: serverMs // the server holds incoming packets this long (GET /page/features)
  }
  const total = Object.values(parts).reduce((sum, ms) => sum + ms, 0)
  return { ...parts, total: Math.round(total * 10) / 10 }
}
