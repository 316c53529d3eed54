// Deleting words from a clip's transcript cuts their audio out of the timeline.
//
// The server does this best (POST /projects/ID/clips/CLIP/transcript/edit: it has the
// audio and cuts at the quietest point near each gap, dawserver/transcript_document.py);
// this module is the page's own plan for servers without that route, with the same
// document result: word times are seconds from the clip's start (its `offset` in the
// source); the cut runs from the middle of the gap before the first deleted word to the
// middle of the gap after the last one (before the first / after the last word of the
// clip: the middle of the 300 ms the server searches, bounded by the clip); the
// clip keeps the head, a new clip takes the tail right after it, the splice gets 5 ms
// fades, later clips on the track move left by the removed length (ripple), and each
// piece gets the transcript of its own words, in its own clip time.

export const FADE_SECONDS = 0.005
export const SEARCH_SECONDS = 0.3 // how far the server looks for a quiet cut point

/** Every word of a document transcript, in order (what edits index). */
export function transcriptWords (transcript) {
  return (transcript?.segments || []).flatMap((s) => s.words || [])
}

/** The segments whose words' middles lie in [from, to) seconds, shifted by -from. */
export function sliceSegments (segments, from, to) {
  const out = []
  for (const segment of segments || []) {
    const words = (segment.words || [])
      .filter((w) => (w.start + w.end) / 2 >= from && (w.start + w.end) / 2 < to)
      .map((w) => ({ ...w, start: round4(w.start - from), end: round4(w.end - from) }))
    if (!words.length) continue
    out.push({ start: words[0].start, end: words[words.length - 1].end,
      text: words.map((w) => w.word.trim()).join(' '), words })
  }
  return out
}

/**
 * Clip frame of the cut before word `i` (i == words.length: after the last word): the
 * middle of the gap to the neighbouring word, or of the stretch the server searches
 * before the first / after the last word.
 */
export function cutFrame (words, i, clip, sampleRate) {
  const length = clip.length / sampleRate
  let seconds
  if (i === 0) seconds = (Math.max(0, words[0].start - SEARCH_SECONDS) + words[0].start) / 2
  else if (i === words.length) {
    const end = words[words.length - 1].end
    seconds = (end + Math.min(length, end + SEARCH_SECONDS)) / 2
  } else seconds = (words[i - 1].end + words[i].start) / 2
  return Math.max(0, Math.min(clip.length, Math.round(seconds * sampleRate)))
}

/**
 * Why a word cut of `clip` would cut the wrong audio, or '' when it would not: a clip
 * that plays its source stretched, warped or following the tempo has its words elsewhere
 * on the timeline than its source has them (the server refuses the same clips).
 */
export function retimedReason (clip) {
  const warped = Array.isArray(clip.warp) && clip.warp.length > 0
  if (!clip.follow_tempo && !warped && (clip.stretch ?? 1) === 1) return ''
  return `clip '${clip.id}' plays its source stretched (stretch, warp markers or following ` +
    'the tempo): its words are not where its source has them, so a cut would remove the ' +
    'wrong audio; take the stretch off the clip first, or bounce it and transcribe that'
}

/**
 * The document changes that delete words `first..last` (indices into transcriptWords).
 * Throws an Error (with {@link retimedReason}) for a clip that plays its source retimed.
 *
 * @returns {{update: object, remove: string[], add: object[], transcripts: object}}
 */
export function planCut ({ clip, transcript, first, last, sampleRate, trackClips, newId }) {
  const refused = retimedReason(clip)
  if (refused) throw new Error(refused)
  const words = transcriptWords(transcript)
  const plan = { update: {}, remove: [], add: [], transcripts: {} }
  if (!words.length || first < 0 || last >= words.length || first > last) return plan
  const a = cutFrame(words, first, clip, sampleRate)
  const b = cutFrame(words, last + 1, clip, sampleRate)
  if (b <= a) return plan
  const fade = Math.round(FADE_SECONDS * sampleRate)
  const pieces = []
  if (a > 0) pieces.push({ from: 0, to: a })
  if (b < clip.length) pieces.push({ from: b, to: clip.length })
  if (!pieces.length) plan.remove.push(clip.id)
  let cursor = clip.position
  pieces.forEach((piece, index) => {
    const length = piece.to - piece.from
    const fields = {
      position: cursor, offset: clip.offset + piece.from, length,
      fade_in: Math.min(piece.from === 0 ? clip.fade_in ?? 0 : fade, Math.floor(length / 2)),
      fade_out: Math.min(piece.to === clip.length ? clip.fade_out ?? 0 : fade, Math.floor(length / 2))
    }
    const id = index === 0 ? clip.id : newId()
    if (index === 0) plan.update[id] = fields
    else plan.add.push({ id, track: clip.track, source: clip.source, gain_db: clip.gain_db ?? 0, ...fields })
    const segments = sliceSegments(transcript.segments, piece.from / sampleRate, piece.to / sampleRate)
    plan.transcripts[id] = { ...transcript, offset: fields.offset, segments } // kept even when empty, as the server does
    cursor += length
  })
  const end = clip.position + clip.length
  const shift = b - a
  for (const other of trackClips) {
    if (other.id !== clip.id && other.position >= end) {
      plan.update[other.id] = { ...(plan.update[other.id] || {}), position: other.position - shift }
    }
  }
  return plan
}

function round4 (x) {
  return Math.round(x * 10000) / 10000
}
