// A clip's time map on the page: which source frame each timeline frame plays, and the
// rules the engine holds warp markers to (dsp_core/stretch.py's check_warp and
// dsp_core/graph.py's clip_stretch), so the page never writes markers the server would
// play as unstretched. Markers are `[source frame, timeline frame]`, absolute, in session
// frames, increasing in both; slope 1 before the first, the last segment's slope after
// the last. tests/test_page_warp.py runs these against the Python rules.

export const MIN_STRETCH = 0.25
export const MAX_STRETCH = 4

const markersOf = (clip) => (Array.isArray(clip.warp) ? clip.warp : [])

/** The source frame (fractional) that timeline frame `at` plays in `clip` as it is now. */
export function sourceAt (clip, at) {
  const warp = markersOf(clip)
  if (!warp.length) return (Number(clip.offset) || 0) + (at - clip.position) / (Number(clip.stretch) || 1)
  if (at <= warp[0][1]) return warp[0][0] - (warp[0][1] - at)
  for (let i = 0; i + 1 < warp.length; i++) {
    const [[x0, y0], [x1, y1]] = [warp[i], warp[i + 1]]
    if (at <= y1) return x0 + (at - y0) * (x1 - x0) / (y1 - y0)
  }
  const n = warp.length
  const slope = n >= 2 ? (warp[n - 1][1] - warp[n - 2][1]) / (warp[n - 1][0] - warp[n - 2][0]) : 1
  return warp[n - 1][0] + (at - warp[n - 1][1]) / slope
}

/** The timeline frame (fractional) where `clip` plays source frame `source` now
 * (`sourceAt` the other way round). */
export function timelineAt (clip, source) {
  const warp = markersOf(clip)
  if (!warp.length) return clip.position + (source - (Number(clip.offset) || 0)) * (Number(clip.stretch) || 1)
  if (source <= warp[0][0]) return warp[0][1] - (warp[0][0] - source)
  for (let i = 0; i + 1 < warp.length; i++) {
    const [[x0, y0], [x1, y1]] = [warp[i], warp[i + 1]]
    if (source <= x1) return y0 + (source - x0) * (y1 - y0) / (x1 - x0)
  }
  const n = warp.length
  const slope = n >= 2 ? (warp[n - 1][1] - warp[n - 2][1]) / (warp[n - 1][0] - warp[n - 2][0]) : 1
  return warp[n - 1][1] + (source - warp[n - 1][0]) * slope
}

/** Why `warp` cannot play on a clip at `position` (as the engine refuses it), or ''. */
export function warpProblem (warp, position) {
  for (let i = 0; i < warp.length; i++) {
    const [x, y] = warp[i]
    if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0) {
      return `warp marker ${i + 1} would need a frame before the start (${x}, ${y})`
    }
    if (!i) continue
    const [px, py] = warp[i - 1]
    if (x <= px || y <= py) return 'warp markers must increase in both source and timeline time'
    const ratio = (y - py) / (x - px)
    if (!(ratio >= MIN_STRETCH && ratio <= MAX_STRETCH)) {
      return `the warp between markers ${i} and ${i + 1} would stretch by ${ratio.toFixed(3)}; ` +
        `keep each stretch within ${MIN_STRETCH}…${MAX_STRETCH}`
    }
  }
  if (warp.length && warp[0][1] - warp[0][0] > position) {
    return "the first warp marker would put the source's start after the clip's start"
  }
  return ''
}

/**
 * `clip`'s markers with one more at timeline frame `at`, pinning the source frame that
 * plays there now (so nothing moves until it is dragged): `{ warp, index }`. A clip
 * stretched without markers gets them at its start and end too, keeping its stretch. Throws an
 * Error saying why where no marker can go.
 */
export function withMarkerAt (clip, at) {
  if (clip.follow_tempo) throw new Error('this clip follows the tempo: switch Follow tempo off to place warp markers')
  at = Math.round(at)
  if (at < clip.position || at >= clip.position + clip.length) throw new Error('a warp marker goes inside its clip')
  const source = Math.round(sourceAt(clip, at))
  const warp = markersOf(clip).map((m) => [...m])
  if (warp.some(([x, y]) => x === source || y === at)) throw new Error('a warp marker is already there')
  if (!warp.length && (Number(clip.stretch) || 1) !== 1) {
    const end = clip.position + clip.length
    warp.push(...[clip.position, end].filter((y) => y !== at).map((y) => [Math.round(sourceAt(clip, y)), y]))
  }
  warp.push([source, at])
  warp.sort((a, b) => a[1] - b[1])
  const problem = warpProblem(warp, clip.position)
  if (problem) throw new Error(problem)
  return { warp, index: warp.findIndex(([, y]) => y === at) }
}

/** `clip`'s markers without marker `index`; throws an Error saying why it must stay. */
export function withoutMarker (clip, index) {
  const warp = markersOf(clip).filter((_, i) => i !== index).map((m) => [...m])
  const problem = warpProblem(warp, clip.position)
  if (problem) throw new Error(`cannot remove that warp marker: ${problem}`)
  return warp
}

/** The timeline frames marker `index` may move to, [low, high], keeping `warp` playable. */
export function markerRange (warp, index, position) {
  const [x] = warp[index]
  let low = 0
  let high = Infinity
  if (index > 0) {
    const [px, py] = warp[index - 1]
    low = Math.max(low, py + 1, Math.ceil(py + MIN_STRETCH * (x - px)))
    high = Math.min(high, Math.floor(py + MAX_STRETCH * (x - px)))
  } else {
    high = Math.min(high, position + x) // the source's start stays at or before the clip's
  }
  if (index + 1 < warp.length) {
    const [nx, ny] = warp[index + 1]
    low = Math.max(low, Math.ceil(ny - MAX_STRETCH * (nx - x)))
    high = Math.min(high, ny - 1, Math.floor(ny - MIN_STRETCH * (nx - x)))
  }
  return [low, high]
}
