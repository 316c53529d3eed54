// Where a warp marker snaps, as DAWs do: a dragged marker to the nearest beat of the tempo
// map (web/src/tempo.js, ramps included), an added one to the nearest beat or transient
// of its clip's source (drawn where it plays now, so adding still moves nothing), each
// only within SNAP_PX of the pointer; Ctrl (⌘ on a Mac) held places it freely. Pure
// functions of plain data: tests/test_page_warp_snap.py runs them under node.
import { timelineAt } from './warp_map.js'

/** How near (pixels) a beat or transient must be for a marker to snap to it. */
export const SNAP_PX = 8
// A transient: a peak TRANSIENT_RISE times the loudest of the TRANSIENT_LOOKBACK_S
// before it, and at least TRANSIENT_FLOOR of the source's loudest peak.
export const TRANSIENT_RISE = 2
export const TRANSIENT_FLOOR = 0.1
export const TRANSIENT_LOOKBACK_S = 0.03
/** Transients closer together than this count as one (the first). */
export const TRANSIENT_GAP_S = 0.05

/** Whether the pointer or key `event` asks to place a marker freely (no snapping). */
export const bypassesSnap = (event) => Boolean(event.ctrlKey || event.metaKey)

/** The timeline frames of the beats of tempo map `map` in [from, to) frames. */
export function beatFrames (map, from, to, sampleRate) {
  return map.grid(from / sampleRate, to / sampleRate).map((line) => Math.round(line.seconds * sampleRate))
}

/**
 * Where the source of `peaks` (web/src/peaks.js: `{ sampleRate, framesPerPeak, min, max }`)
 * has transients: the start of each peak that rises TRANSIENT_RISE times over the loudest
 * of the TRANSIENT_LOOKBACK_S before it and reaches TRANSIENT_FLOOR of the loudest peak,
 * as source frames at the peaks' rate (as fine as one peak).
 */
export function transients (peaks) {
  const count = Math.min(peaks.min.length, peaks.max.length)
  const level = new Float32Array(count)
  for (let i = 0; i < count; i++) level[i] = Math.max(Math.abs(peaks.min[i]), Math.abs(peaks.max[i]))
  const loudest = level.reduce((a, b) => Math.max(a, b), 0)
  if (!(loudest > 0)) return []
  const perSecond = peaks.sampleRate / peaks.framesPerPeak
  const lookback = Math.max(1, Math.ceil(TRANSIENT_LOOKBACK_S * perSecond))
  const gap = Math.max(1, Math.ceil(TRANSIENT_GAP_S * perSecond))
  const found = []
  let last = -Infinity
  for (let i = 0; i < count; i++) {
    if (level[i] < TRANSIENT_FLOOR * loudest || i - last < gap) continue
    let before = 0
    for (let j = Math.max(0, i - lookback); j < i; j++) before = Math.max(before, level[j])
    if (level[i] >= TRANSIENT_RISE * before) {
      found.push(i * peaks.framesPerPeak)
      last = i
    }
  }
  return found
}

/** The beats within about `radius` frames of `at` (a frame more each side: a beat's
 * rounded frame may be in reach while its exact time is not). */
const beatsNear = (map, at, radius, sampleRate) =>
  beatFrames(map, Math.max(0, at - radius - 1), at + radius + 2, sampleRate)

/** The candidate nearest `at` within `radius` frames and inside [low, high], else `at`. */
export function snapTo (at, candidates, radius, low = -Infinity, high = Infinity) {
  let best = at
  let distance = Infinity
  for (const frame of candidates) {
    const d = Math.abs(frame - at)
    if (frame >= low && frame <= high && d <= radius && d < distance) {
      best = frame
      distance = d
    }
  }
  return best
}

/**
 * Where a marker dragged to timeline frame `at` goes: the nearest beat of `map` within
 * `radius` frames that its range [low, high] (warp_map.js `markerRange`) allows, else `at`.
 */
export function snapDrag (at, { map, sampleRate, radius, low = -Infinity, high = Infinity }) {
  return snapTo(at, beatsNear(map, at, radius, sampleRate), radius, low, high)
}

/**
 * Where a marker added to `clip` at timeline frame `at` goes: the nearest beat of `map`
 * or transient of its source (`onsets`: source frames at the session rate) within
 * `radius` frames and inside the clip, else `at`.
 */
export function snapAdd (clip, at, { map, sampleRate, radius, onsets = [] }) {
  const end = clip.position + clip.length - 1
  const beats = beatsNear(map, at, radius, sampleRate)
  const heard = onsets.map((source) => Math.round(timelineAt(clip, source)))
  return snapTo(at, [...beats, ...heard], radius, clip.position, end)
}
