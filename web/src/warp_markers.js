// A clip's warp markers on the timeline: handles at their timeline frame inside the clip,
// dragged sideways to move where that source frame plays (the clip's `warp`, pairs of
// [source frame, timeline frame], kept increasing in both: a handle stops one frame short
// of its neighbours). The engine re-renders the clip (dawserver/stretch_renders.py).
import { h } from './dom.js'

/** Draw the warp handles of `clip` in its element `el` (none without markers). */
export function drawWarpMarkers (timeline, el, clip) {
  const warp = Array.isArray(clip.warp) ? clip.warp : []
  const key = `${JSON.stringify(warp)}|${clip.position}|${timeline.zoom}`
  if (el.dataset.warpKey === key) return
  el.dataset.warpKey = key
  el.querySelectorAll('.warp-marker').forEach((m) => m.remove())
  warp.forEach(([source, at], index) => {
    el.append(h('span', {
      class: 'warp-marker',
      dataset: { index: String(index) },
      title: `Warp marker: source ${(source / timeline.sampleRate).toFixed(3)} s plays here; drag to move`,
      style: `left:${timeline.framesToPx(at - clip.position)}px`
    }))
  })
}

/** A press on a warp handle: drag it (true when the press was on one). */
export function pressWarpMarker (timeline, event, clipId, el) {
  const handle = event.target.closest?.('.warp-marker')
  if (!handle) return false
  event.stopPropagation()
  if (event.button !== 0 || !timeline.editable) return true
  const clip = timeline.project.clip(clipId)
  const index = Number(handle.dataset.index)
  const warp = (clip?.warp || []).map((m) => [...m])
  if (!warp[index]) return true
  const low = index > 0 ? warp[index - 1][1] + 1 : -Infinity
  const high = index + 1 < warp.length ? warp[index + 1][1] - 1 : Infinity
  const x0 = event.clientX
  const start = warp[index][1]
  let at = start
  const move = (e) => {
    at = Math.round(Math.min(high, Math.max(low, 0, start + timeline.pxToFrames(e.clientX - x0))))
    handle.style.left = `${timeline.framesToPx(at - clip.position)}px`
    handle.classList.add('dragging')
  }
  const up = () => {
    window.removeEventListener('pointermove', move)
    window.removeEventListener('pointerup', up)
    handle.classList.remove('dragging')
    if (at === start) return
    warp[index][1] = at
    timeline.project.setWarp(clipId, warp)
  }
  window.addEventListener('pointermove', move)
  window.addEventListener('pointerup', up)
  return true
}
