// Deleting words from a clip's transcript cuts their audio out of the timeline.
//
// Mirrors transcription/editing.py (`delete_words` + `replace_clip` with ripple): word
// times are seconds from the start of the clip's *source*; a clip shows the words whose
// middle lies inside its source range [offset, offset + length). The cut runs from the
// point before the first deleted word to the point after the last one (the middle of the
// gap to the neighbouring word; the word's own edge at either end of the clip). The clip
// keeps its head, a new clip takes the tail right after it, the splice gets 5 ms fades,
// and later clips on the track move left by the removed length. The page has no audio
// samples, so it uses the gaps' middles where the Python planner looks for the quietest
// point near them. Both pieces play the same source, so they share the same transcript.

export const FADE_SECONDS = 0.005

/** The words of `transcript` inside `clip` (by their middle), in order. */
export function clipWords (transcript, clip, sampleRate) {
  const first = clip.offset
  const last = clip.offset + clip.length
  const words = (transcript?.segments || []).flatMap((s) => s.words || [])
  return words.filter((w) => {
    const middle = ((w.start + w.end) / 2) * sampleRate
    return middle >= first && middle < last
  })
}

/** Source frame of the cut before word `i` of `words` (i == words.length: after the last). */
export function cutFrame (words, i, clip, sampleRate) {
  let seconds
  if (i === 0) seconds = words[0].start
  else if (i === words.length) seconds = words[words.length - 1].end
  else seconds = (words[i - 1].end + words[i].start) / 2
  const frame = Math.round(seconds * sampleRate)
  return Math.max(clip.offset, Math.min(clip.offset + clip.length, frame))
}

/**
 * The document changes that delete words `first..last` (indices into clipWords) of `clip`.
 *
 * @returns {{update: object, remove: string[], add: object[], transcripts: object}}
 */
export function planCut ({ clip, transcript, first, last, sampleRate, trackClips, newId }) {
  const words = clipWords(transcript, clip, sampleRate)
  const plan = { update: {}, remove: [], add: [], transcripts: {} }
  if (!words.length || first < 0 || last >= words.length || first > last) return plan
  const a = cutFrame(words, first, clip, sampleRate) // source frames
  const b = cutFrame(words, last + 1, clip, sampleRate)
  if (b <= a) return plan
  const fade = Math.round(FADE_SECONDS * sampleRate)
  const head = a - clip.offset
  const tail = clip.offset + clip.length - b
  const end = clip.position + clip.length
  const pieces = []
  if (head > 0) pieces.push({ offset: clip.offset, length: head, atStart: true, atEnd: false })
  if (tail > 0) pieces.push({ offset: b, length: tail, atStart: false, atEnd: true })
  if (!pieces.length) {
    plan.remove.push(clip.id)
  }
  let cursor = clip.position
  pieces.forEach((piece, index) => {
    const fields = {
      position: cursor, offset: piece.offset, length: piece.length,
      fade_in: Math.min(piece.atStart ? clip.fade_in ?? 0 : fade, Math.floor(piece.length / 2)),
      fade_out: Math.min(piece.atEnd ? clip.fade_out ?? 0 : fade, Math.floor(piece.length / 2))
    }
    if (index === 0) {
      plan.update[clip.id] = fields
    } else {
      const id = newId()
      plan.add.push({ id, track: clip.track, source: clip.source, gain_db: clip.gain_db ?? 0, ...fields })
      if (transcript) plan.transcripts[id] = transcript
    }
    cursor += piece.length
  })
  const shift = b - a
  for (const other of trackClips) {
    if (other.id !== clip.id && other.position >= end) {
      plan.update[other.id] = { ...(plan.update[other.id] || {}), position: other.position - shift }
    }
  }
  return plan
}
