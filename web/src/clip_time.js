// The selected clip's time: stretch, pitch, tempo following, crossfade and warp markers
// (one added at the playhead, or all cleared: the keyboard's way to what the timeline's
// warp strip does). Each change is one document write; the server renders the stretch
// (Rubber Band) as a job, and while it runs the clip is silent in the live mix and drawn
// "rendering" (dawserver/stretch_renders.py). A clip plays warp markers or follows the
// tempo, not both (dsp_core/session.py): each switch waits for the other to be off.
import { h } from './dom.js'
import { STRETCH_RANGE } from './project.js'
import { withMarkerAt } from './warp_map.js'

export class ClipTimePanel {
  constructor ({ project, editable, playhead = () => 0, notify = () => {} }) {
    Object.assign(this, { project, editable, playhead, notify })
    this.clipId = null
    this.signature = ''
    this.body = h('div', { class: 'clip-time-body' })
    this.el = h('section', { class: 'panel clip-time' }, h('h3', {}, 'Stretch & pitch'), this.body)
    this.update()
  }

  show (clipId) {
    this.clipId = clipId || null
    this.update()
  }

  /** Redraw from the document (deferred while a field is being typed in; a focused switch
   * or button keeps the focus). */
  update () {
    const active = this.body.contains(document.activeElement) ? document.activeElement : null
    if (active?.tagName === 'INPUT' && active.type !== 'checkbox') return
    const clip = this.clipId ? this.project.clip(this.clipId) : null
    const job = clip ? this.project.stretchJob(clip.id) : null
    const signature = JSON.stringify([clip, job])
    if (signature === this.signature) return
    this.signature = signature
    // without a selected clip the panel steps aside, leaving its width to the others
    this.el.hidden = !clip
    if (!clip) {
      this.body.replaceChildren()
      return
    }
    const set = (fields) => this.project.setClipTime(clip.id, fields)
    const number = (label, key, value, attrs, parse = Number) => h('label', {}, label,
      h('input', { type: 'number', class: `clip-${key} edit`, value, disabled: !this.editable, ...attrs,
        onchange: (e) => { const v = parse(e.target.value); if (Number.isFinite(v)) set({ [key]: v }) } }))
    const following = Boolean(clip.follow_tempo)
    const markers = Array.isArray(clip.warp) ? clip.warp.length : 0
    const status = job && job.status === 'running'
      ? `rendering… ${Math.round((job.progress || 0) * 100)}%`
      : job && job.status === 'failed' ? `failed: ${job.error}` : ''
    this.body.replaceChildren(
      number('Stretch ×', 'stretch', clip.stretch ?? 1, { min: STRETCH_RANGE[0], max: STRETCH_RANGE[1], step: 0.01, disabled: !this.editable || following }),
      number('Pitch (semitones)', 'semitones', clip.semitones ?? 0, { min: -24, max: 24, step: 1 }),
      h('label', { title: markers ? 'A clip plays its warp markers or follows the tempo, not both: clear its markers first' : null },
        h('input', { type: 'checkbox', class: 'clip-follow edit', checked: following,
          disabled: !this.editable || !(clip.source_bpm > 0) || (markers > 0 && !following),
          onchange: (e) => set({ follow_tempo: e.target.checked }) }), ' Follow tempo'),
      number('Source BPM', 'source_bpm', clip.source_bpm ?? 0, { min: 0, max: 999, step: 0.1 }),
      number('Crossfade (frames, 0 = overlap)', 'crossfade', clip.crossfade ?? 0, { min: 0, step: 1 }, (v) => Math.max(0, Math.round(Number(v)))),
      h('p', { class: 'clip-warp' }, `Warp markers: ${markers} `,
        h('button', { class: 'clip-warp-add edit', disabled: !this.editable || following,
          title: 'Add a warp marker where the playhead crosses this clip (nothing moves until it is dragged)',
          onclick: () => this.addMarker(clip.id) }, '+ at playhead'),
        ' ',
        h('button', { class: 'clip-warp-clear edit', disabled: !this.editable || !markers,
          title: 'Remove every warp marker of this clip', onclick: () => this.project.setWarp(clip.id, []) }, 'Clear')),
      h('p', { class: 'clip-time-status hint' }, status))
    if (active?.className) this.body.querySelector(`.${active.className.split(' ')[0]}`)?.focus()
  }

  /** Add a warp marker to clip `clipId` at the playhead (a message says why not). */
  addMarker (clipId) {
    const clip = this.project.clip(clipId)
    if (!clip || !this.editable) return
    try {
      this.project.setWarp(clipId, withMarkerAt(clip, this.playhead()).warp)
    } catch (err) {
      this.notify(`Warp: ${err.message}`, true)
    }
  }
}
