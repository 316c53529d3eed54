// Cutting a stretch of a clip out of the timeline (a transcript edit): split, drop, ripple.
//
// Word times are seconds from the clip's start on the timeline (its audible start,
// `offset` frames into the source). Cutting [from, to) of clip C leaves C's head
// (ending at `from`, short fade-out) and a new clip with its tail (starting where the
// head ends, short fade-in); later clips on the same track move left by the cut length.
// Transcripts follow their audio: the head keeps its words, the tail's words are shifted.

export const FADE_SECONDS = 0.005

/** Words and segments of `segments` inside [from, to) seconds, shifted by -shift. */
export function sliceSegments (segments, from, to, shift) {
  const out = []
  for (const segment of segments || []) {
    const words = (segment.words || [])
      .filter((w) => w.start >= from - 1e-9 && w.end <= to + 1e-9)
      .map((w) => ({ ...w, start: round3(w.start - shift), end: round3(w.end - shift) }))
    if (!words.length) continue
    out.push({
      ...segment,
      start: words[0].start,
      end: words[words.length - 1].end,
      text: words.map((w) => w.word.trim()).join(' '),
      words
    })
  }
  return out
}

/**
 * The document changes that cut [fromSec, toSec) out of `clip`.
 *
 * @param {object} clip the clip's fields (id, track, source, position, offset, length...)
 * @param {object|null} transcript the clip's transcript ({language, model, segments})
 * @param {object[]} trackClips every clip on the same track (for the ripple)
 * @returns {{update: object, remove: string[], add: object[], transcripts: object}}
 */
export function planCut ({ clip, transcript, fromSec, toSec, sampleRate, trackClips, newId }) {
  const a = Math.max(0, Math.min(clip.length, Math.round(fromSec * sampleRate)))
  const b = Math.max(a, Math.min(clip.length, Math.round(toSec * sampleRate)))
  const plan = { update: {}, remove: [], add: [], transcripts: {} }
  if (b === a) return plan
  const fade = Math.round(FADE_SECONDS * sampleRate)
  const end = clip.position + clip.length
  const tail = clip.length - b
  const segments = transcript?.segments || []
  const keepTranscript = (segs) => (transcript && segs.length ? { ...transcript, segments: segs } : null)

  if (a === 0 && tail === 0) {
    plan.remove.push(clip.id)
  } else if (a === 0) {
    plan.update[clip.id] = {
      offset: clip.offset + b, length: tail, fade_in: Math.min(fade, Math.floor(tail / 2))
    }
    if (transcript) plan.transcripts[clip.id] = keepTranscript(sliceSegments(segments, b / sampleRate, Infinity, b / sampleRate))
  } else {
    plan.update[clip.id] = { length: a, fade_out: Math.min(fade, Math.floor(a / 2)) }
    if (transcript) plan.transcripts[clip.id] = keepTranscript(sliceSegments(segments, 0, a / sampleRate, 0))
    if (tail > 0) {
      const id = newId()
      plan.add.push({
        id, track: clip.track, source: clip.source, position: clip.position + a,
        offset: clip.offset + b, length: tail, gain_db: clip.gain_db ?? 0,
        fade_in: Math.min(fade, Math.floor(tail / 2)), fade_out: Math.min(clip.fade_out ?? 0, tail)
      })
      const tailSegments = sliceSegments(segments, b / sampleRate, Infinity, b / sampleRate)
      if (transcript && tailSegments.length) plan.transcripts[id] = keepTranscript(tailSegments)
    }
  }
  const shift = b - a
  for (const other of trackClips) {
    if (other.id !== clip.id && other.position >= end) {
      plan.update[other.id] = { ...(plan.update[other.id] || {}), position: other.position - shift }
    }
  }
  return plan
}

function round3 (x) {
  return Math.round(x * 1000) / 1000
}
