// The selected clip's time: stretch, pitch, tempo following and crossfade. Each change is
// one document write; the server renders the stretch (Rubber Band) as a job, and while it
// runs the clip is silent in the live mix and drawn "rendering" (dawserver/stretch_renders.py).
import { h } from './dom.js'
import { STRETCH_RANGE } from './project.js'

export class ClipTimePanel {
  constructor ({ project, editable }) {
    Object.assign(this, { project, editable })
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

  /** Redraw from the document (deferred while a field is being typed in). */
  update () {
    if (this.body.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return
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
    const status = job && job.status === 'running'
      ? `rendering… ${Math.round((job.progress || 0) * 100)}%`
      : job && job.status === 'failed' ? `failed: ${job.error}` : ''
    this.body.replaceChildren(
      number('Stretch ×', 'stretch', clip.stretch ?? 1, { min: STRETCH_RANGE[0], max: STRETCH_RANGE[1], step: 0.01, disabled: !this.editable || following }),
      number('Pitch (semitones)', 'semitones', clip.semitones ?? 0, { min: -24, max: 24, step: 1 }),
      h('label', {}, h('input', { type: 'checkbox', class: 'clip-follow edit', checked: following,
        disabled: !this.editable || !(clip.source_bpm > 0),
        onchange: (e) => set({ follow_tempo: e.target.checked }) }), ' Follow tempo'),
      number('Source BPM', 'source_bpm', clip.source_bpm ?? 0, { min: 0, max: 999, step: 0.1 }),
      number('Crossfade (frames, 0 = overlap)', 'crossfade', clip.crossfade ?? 0, { min: 0, step: 1 }, (v) => Math.max(0, Math.round(Number(v)))),
      h('p', { class: 'clip-time-status hint' }, status))
  }
}
