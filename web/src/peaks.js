// Waveform peaks from the server (GET /projects/ID/peaks?source=...), drawn into clips.
//
// Peaks are fetched lazily: the timeline draws only the clips it has mounted (those in
// view), so a source is asked for the first time a clip of it scrolls into view, once per
// zoom level, and kept; a clip drawn again (scrolled back, remounted) draws at once.
//
// The server keeps peaks at a few zoom levels (frames per peak); a clip is drawn from
// the coarsest level that still gives at least one peak per pixel. Peaks are indexed
// in frames of the source file at its own sample rate (docs/http-api-assets.md).
import { api } from './api.js'

export const LEVELS = [64, 256, 1024, 4096, 16384, 65536]
const MAX_CANVAS = 8192

/** The coarsest level with at most `framesPerPixel` frames per peak. */
export function levelFor (framesPerPixel) {
  let best = LEVELS[0]
  for (const level of LEVELS) if (level <= framesPerPixel) best = level
  return best
}

/** Fetches and caches peaks per (source, level); `get` resolves with null when unavailable. */
export class PeakCache {
  constructor ({ projectId, token, url }) {
    this.projectId = projectId
    this.token = token
    this.url = url // the peaks path template, or null when the server offers none
    this.cache = new Map() // "level|source" -> Promise of the peaks (null: unavailable)
    this.ready = new Map() // "level|source" -> the peaks, once they have arrived
    this.sources = new Map() // source -> {frames, sampleRate} once any level has arrived
  }

  /** {frames, sampleRate} of a source whose peaks have arrived, else undefined. */
  sourceInfo (source) { return this.sources.get(source) }

  /** The peaks if they have arrived already (undefined: not yet, or never asked for). */
  peek (source, level) { return this.url ? this.ready.get(`${level}|${source}`) : null }

  get (source, level) {
    if (!this.url) return Promise.resolve(null)
    const key = `${level}|${source}`
    if (!this.cache.has(key)) {
      const path = this.url.replace('{project_id}', encodeURIComponent(this.projectId))
      const query = new URLSearchParams({ source, frames_per_peak: String(level), format: 'binary' })
      const request = api(`${path}?${query}`, { token: this.token, raw: true })
        .then(async (response) => {
          const data = decodeBinary(response.headers, await response.arrayBuffer())
          this.sources.set(source, { frames: data.frames, sampleRate: data.sampleRate })
          return data
        })
        .catch(() => null)
        .then((data) => {
          this.ready.set(key, data)
          return data
        })
      this.cache.set(key, request)
    }
    return this.cache.get(key)
  }
}

/** {sampleRate, framesPerPeak, min, max} (channels merged) from the binary answer. */
export function decodeBinary (headers, buffer) {
  const channels = Number(headers.get('X-Peaks-Channels')) || 1
  const count = Number(headers.get('X-Peaks-Count')) || 0
  const values = new Float32Array(buffer)
  const min = new Float32Array(count).fill(0)
  const max = new Float32Array(count).fill(0)
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < count; i++) {
      const at = (c * count + i) * 2
      if (values[at] < min[i]) min[i] = values[at]
      if (values[at + 1] > max[i]) max[i] = values[at + 1]
    }
  }
  return {
    sampleRate: Number(headers.get('X-Peaks-Sample-Rate')) || 48000,
    frames: Number(headers.get('X-Peaks-Frames')) || 0,
    framesPerPeak: Number(headers.get('X-Peaks-Frames-Per-Peak')) || 1024,
    min,
    max
  }
}

/**
 * Size the canvas to the clip and draw its stretch of the source's peaks: at once when they
 * are cached, else when they arrive (returns a promise of that, else null). Until then a
 * new canvas is blank, over the centre line the stylesheet draws, and a redrawn one keeps
 * its old picture, stretched; `data-peaks="drawn"` marks a canvas showing its current peaks.
 */
export function drawWaveform (canvas, peaks, clip, sampleRate, zoom) {
  const drawId = String((Number(canvas.dataset.draw) || 0) + 1)
  canvas.dataset.draw = drawId
  const draw = (data) => {
    if (canvas.dataset.draw !== drawId) return // redrawn for another zoom or trim since
    if (!data) {
      canvas.width = 0 // no peaks: the centre line shows
      return
    }
    const width = Math.max(1, Math.min(MAX_CANVAS, Math.round((clip.length / sampleRate) * zoom)))
    const height = 44
    canvas.width = width
    canvas.height = height
    const ctx = canvas.getContext('2d')
    ctx.fillStyle = 'rgba(255,255,255,0.8)'
    const ratio = data.sampleRate / sampleRate // source frames per project frame
    const first = clip.offset * ratio
    const perPx = (clip.length * ratio) / width
    for (let x = 0; x < width; x++) {
      const a = Math.floor((first + x * perPx) / data.framesPerPeak)
      const b = Math.max(a + 1, Math.floor((first + (x + 1) * perPx) / data.framesPerPeak))
      let lo = 0
      let hi = 0
      for (let i = a; i < b && i < data.max.length; i++) {
        if (data.min[i] < lo) lo = data.min[i]
        if (data.max[i] > hi) hi = data.max[i]
      }
      const top = (1 - Math.min(1, hi)) * height / 2
      const bottom = (1 - Math.max(-1, lo)) * height / 2
      ctx.fillRect(x, top, 1, Math.max(1, bottom - top))
    }
    canvas.dataset.peaks = 'drawn'
  }
  delete canvas.dataset.peaks
  const level = levelFor(sampleRate / zoom)
  const cached = peaks ? peaks.peek(clip.source, level) : null
  if (cached !== undefined) {
    draw(cached)
    return null
  }
  return peaks.get(clip.source, level).then(draw)
}
