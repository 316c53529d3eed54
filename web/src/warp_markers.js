// A clip's warp markers on the timeline: handles at their timeline frame inside the clip
// (the clip's `warp`, pairs of [source frame, timeline frame]). Double-click the clip's
// warp strip (its top band) to add one where the source plays now (nothing moves until it
// is dragged); drag a handle sideways, or focus it and press ←/→ (Shift: further), to
// move where its source frame plays; Delete/Backspace on a focused handle, Alt-click or
// right-click removes it. A dragged marker snaps to the nearest beat of the tempo map, an
// added one to the nearest beat or transient of the source (web/src/warp_snap.js); hold
// Ctrl (⌘ on a Mac) to place it freely. Every edit keeps the markers playable
// (web/src/warp_map.js) and is one document write; the engine re-renders the clip
// (dawserver/stretch_renders.py).
import { followDrag, h } from './dom.js'
import { levelFor } from './peaks.js'
import { markerRange, withMarkerAt, withoutMarker } from './warp_map.js'
import { SNAP_PX, bypassesSnap, snapAdd, snapDrag, transients } from './warp_snap.js'

const NUDGE_SECONDS = 0.01 // an arrow key moves a focused handle this far (Shift: ×10)

// The marker under a drag, from press to release: `{clipId, source, at, moved, handle}`.
// A marker is known by its source frame (unique in a clip's warp): a collaborator's
// marker added before it shifts its index, not its source. A redraw mid-drag (any
// change to the clip) puts the new handle where the drag has it.
let dragged = null

/** Draw the warp handles of `clip` in its element `el` (none without markers). */
export function drawWarpMarkers (timeline, el, clip) {
  // markers a peer wrote badly play as none (collab/time_fields.py): none drawn either
  const warp = Array.isArray(clip.warp) && clip.warp.every((m) => Array.isArray(m) && m.length === 2) ? clip.warp : []
  const key = `${JSON.stringify(warp)}|${clip.position}|${clip.length}|${timeline.zoom}`
  if (el.dataset.warpKey === key) return
  el.dataset.warpKey = key
  const focused = document.activeElement?.closest?.('.warp-marker')
  const refocus = focused && el.contains(focused) ? Number(focused.dataset.index) : null
  el.querySelectorAll('.warp-marker').forEach((m) => m.remove())
  const seconds = (frames) => (frames / timeline.sampleRate).toFixed(3)
  const handles = warp.map(([source, at], index) => {
    const [low, high] = markerRange(warp, index, clip.position)
    return h('span', {
      class: 'warp-marker',
      role: 'slider',
      tabindex: '0',
      dataset: { index: String(index) },
      'aria-label': `Warp marker ${index + 1}`,
      'aria-valuenow': seconds(at),
      'aria-valuemin': seconds(Math.min(at, low)),
      'aria-valuemax': seconds(Math.max(at, Math.min(high, clip.position + clip.length))),
      'aria-valuetext': `source ${seconds(source)} s plays at ${seconds(at)} s`,
      title: `Warp marker ${index + 1}: source ${seconds(source)} s plays at ${seconds(at)} s; ` +
        'drag or ←/→ to move, Delete, Alt-click or right-click to remove',
      style: `left:${timeline.framesToPx(at - clip.position)}px`
    })
  })
  el.append(...handles)
  const under = dragged?.clipId === clip.id ? warp.findIndex(([source]) => source === dragged.source) : -1
  if (under >= 0) {
    dragged.handle = handles[under]
    dragged.handle.classList.toggle('dragging', dragged.moved)
    dragged.handle.style.left = `${timeline.framesToPx(dragged.at - clip.position)}px`
  }
  if (refocus !== null && handles.length) handles[Math.min(refocus, handles.length - 1)].focus()
}

/** Write the markers `make(clip)` returns for `clipId`, if they changed (refused: a message). */
function write (timeline, clipId, make) {
  if (!timeline.editable) return
  const clip = timeline.project.clip(clipId)
  if (!clip) return
  try {
    const warp = make(clip)
    if (JSON.stringify(warp) !== JSON.stringify(clip.warp || [])) timeline.project.setWarp(clipId, warp)
  } catch (err) {
    timeline.onRefuse(err.message)
  }
}

/** Add a marker to `clipId` at timeline frame `at` (see warp_map.js `withMarkerAt`). */
export function addWarpMarker (timeline, clipId, at) {
  write(timeline, clipId, (clip) => withMarkerAt(clip, at).warp)
}

/** Remove marker `index` of `clipId`. */
export function removeWarpMarker (timeline, clipId, index) {
  write(timeline, clipId, (clip) => withoutMarker(clip, index))
}

/** Move marker `index` of `clipId` (or the marker `index(warp)` picks, -1: gone, no
 * move) to timeline frame `at`, as far as it may go among the markers there now. */
function moveWarpMarker (timeline, clipId, index, at) {
  write(timeline, clipId, (clip) => {
    const warp = (clip.warp || []).map((m) => [...m])
    if (typeof index === 'function') index = index(warp)
    if (!warp[index]) return warp
    const [low, high] = markerRange(warp, index, clip.position)
    if (low > high) throw new Error('this warp marker cannot move: its neighbours hold it')
    warp[index][1] = Math.round(Math.min(high, Math.max(low, at)))
    return warp
  })
}

/** What snapping needs from the timeline: its tempo map, rate and SNAP_PX in frames. */
function snapping (timeline) {
  return { map: timeline.project.tempoMap(), sampleRate: timeline.sampleRate, radius: timeline.pxToFrames(SNAP_PX) }
}

const ONSETS = new WeakMap() // peaks -> their transients (source frames at the peaks' rate)

/** The transients of `clip`'s source, in session frames, from the peaks drawn at this
 * zoom (none until they have arrived). */
function onsetsOf (timeline, clip) {
  const peaks = timeline.peaks?.peek(clip.source, levelFor(timeline.sampleRate / timeline.zoom))
  if (!peaks) return []
  if (!ONSETS.has(peaks)) ONSETS.set(peaks, transients(peaks))
  return ONSETS.get(peaks).map((frame) => frame * timeline.sampleRate / peaks.sampleRate)
}

/** Listen on the timeline's rows: double-click on a warp strip, keys on a handle, right-click. */
export function bindWarpMarkers (timeline, rows) {
  rows.addEventListener('dblclick', (event) => {
    const strip = event.target.closest?.('.warp-strip')
    const el = strip?.closest('.clip')
    if (!el || !timeline.editable) return
    event.preventDefault()
    const x = event.clientX - el.getBoundingClientRect().left
    let at = Number(el.dataset.position) + timeline.pxToFrames(x)
    const clip = timeline.project.clip(el.dataset.clip)
    if (clip && !bypassesSnap(event)) at = snapAdd(clip, at, { ...snapping(timeline), onsets: onsetsOf(timeline, clip) })
    addWarpMarker(timeline, el.dataset.clip, at)
  })
  rows.addEventListener('contextmenu', (event) => {
    const handle = event.target.closest?.('.warp-marker')
    if (!handle) return
    event.preventDefault()
    removeWarpMarker(timeline, handle.closest('.clip').dataset.clip, Number(handle.dataset.index))
  })
  rows.addEventListener('keydown', (event) => {
    const handle = event.target.closest?.('.warp-marker')
    if (!handle) return
    const clipId = handle.closest('.clip').dataset.clip
    const index = Number(handle.dataset.index)
    if (event.key === 'Delete' || event.key === 'Backspace') {
      removeWarpMarker(timeline, clipId, index)
    } else if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
      const clip = timeline.project.clip(clipId)
      const step = (event.shiftKey ? 10 : 1) * NUDGE_SECONDS * timeline.sampleRate
      if (clip?.warp?.[index]) moveWarpMarker(timeline, clipId, index, clip.warp[index][1] + (event.key === 'ArrowLeft' ? -step : step))
    } else {
      return // other keys (Space, zoom...) do what they do elsewhere
    }
    event.preventDefault()
    event.stopPropagation() // not the page's keys: Delete removes a clip, ←/→ move the playhead
  })
}

/** A press on a warp handle: drag it, or with Alt remove it (true when the press was on one). */
export function pressWarpMarker (timeline, event, clipId, el) {
  const handle = event.target.closest?.('.warp-marker')
  if (!handle) return false
  event.stopPropagation()
  if (event.button !== 0 || !timeline.editable) return true
  const index = Number(handle.dataset.index)
  if (event.altKey) {
    removeWarpMarker(timeline, clipId, index)
    return true
  }
  const clip = timeline.project.clip(clipId)
  const warp = (clip?.warp || []).map((m) => [...m])
  if (!warp[index]) return true
  const [low, high] = markerRange(warp, index, clip.position)
  const x0 = event.clientX
  const start = warp[index][1]
  const held = { clipId, source: warp[index][0], at: start, moved: false, handle }
  dragged = held
  const snap = snapping(timeline)
  const move = (e) => {
    if (low > high) return
    let to = start + timeline.pxToFrames(e.clientX - x0)
    if (!bypassesSnap(e)) to = snapDrag(to, { ...snap, low, high })
    held.at = Math.round(Math.min(high, Math.max(low, to)))
    held.moved = true
    held.handle.style.left = `${timeline.framesToPx(held.at - clip.position)}px`
    held.handle.classList.add('dragging')
  }
  followDrag(move, (e, cancelled) => {
    if (dragged === held) dragged = null
    held.handle.classList.remove('dragging')
    if (cancelled) { // dropped: back where it was
      held.handle.style.left = `${timeline.framesToPx(start - clip.position)}px`
      return
    }
    if (held.at === start) return
    // into the markers the clip has now: a collaborator's added or moved ones stay
    moveWarpMarker(timeline, clipId, (now) => now.findIndex(([source]) => source === held.source), held.at)
  })
  return true
}
