// Insert effects of the selected track: enable switch and parameter sliders (document edits).
import { h, setProp } from './dom.js'

// Parameters, mirroring dsp_core.effects.PARAMS: name, low, high, step, default; a step
// of 0 marks a logarithmic slider (frequencies).
export const PARAMS = {
  gain: [['gain_db', -120, 24, 0.1, 0]],
  biquad: [['freq', 10, 20000, 0, 1000], ['q', 0.05, 40, 0.01, 0.707], ['gain_db', -36, 36, 0.1, 0]],
  compressor: [['threshold_db', -80, 0, 0.1, -18], ['ratio', 1, 100, 0.1, 4], ['knee_db', 0, 36, 0.1, 6],
    ['attack_ms', 0.01, 1000, 0.01, 10], ['release_ms', 1, 5000, 1, 100], ['makeup_db', -24, 36, 0.1, 0]],
  delay: [['time_ms', 0.1, 2000, 0.1, 250], ['feedback', 0, 0.98, 0.01, 0.3], ['mix', 0, 1, 0.01, 0.3]],
  limiter: [['ceiling_db', -24, 0, 0.1, -0.3], ['release_ms', 1, 2000, 1, 50]]
}
export const BIQUAD_SHAPES = ['lowpass', 'highpass', 'peaking', 'lowshelf', 'highshelf']

export class EffectsPanel {
  constructor ({ project, presence, editable }) {
    Object.assign(this, { project, presence, editable })
    this.trackId = null
    this.signature = ''
    this.controls = new Map()
    this.title = h('h3', {}, 'Effects')
    this.body = h('div', { class: 'effects-body' })
    this.el = h('section', { class: 'panel effects' }, this.title, this.body)
  }

  show (trackId) {
    this.trackId = trackId
    this.update()
  }

  update () {
    const track = this.trackId ? this.project.roots.tracks.get(this.trackId)?.toJSON() : null
    if (!track) {
      this.title.textContent = 'Effects'
      this.body.replaceChildren(h('p', { class: 'hint' }, 'Select a track to see its effects.'))
      this.signature = ''
      return
    }
    this.title.textContent = `Effects · ${track.name}`
    const effects = track.effects || []
    const signature = `${track.id}|${effects.map((e) => `${e.id}:${e.kind}`).join(',')}`
    if (signature !== this.signature) this._build(track, effects, signature)
    effects.forEach((effect, index) => {
      const enabled = this.controls.get(`${index}:enabled`)
      if (enabled) setProp(enabled, 'checked', effect.enabled !== false)
      const defaults = Object.fromEntries((PARAMS[effect.kind] || []).map((p) => [p[0], p[4]]))
      if (effect.kind === 'biquad') defaults.shape = 'peaking'
      for (const [name, value] of Object.entries({ ...defaults, ...(effect.params || {}) })) {
        const control = this.controls.get(`${index}:${name}`)
        if (!control) continue
        if (control.tagName === 'SELECT') setProp(control, 'value', shapeName(value))
        else if (!(document.activeElement === control && control.matches(':active'))) setProp(control, 'value', String(toSlider(control, value)))
        const readout = this.controls.get(`${index}:${name}:readout`)
        if (readout) readout.textContent = typeof value === 'number' ? String(+value.toFixed(3)) : String(value)
      }
    })
  }

  _build (track, effects, signature) {
    this.signature = signature
    this.controls.clear()
    if (!effects.length) {
      this.body.replaceChildren(h('p', { class: 'hint' }, 'This track has no insert effects.'))
      return
    }
    const cards = effects.map((effect, index) => {
      const key = (name) => `track:${track.id}:fx${index}:${name}`
      const enabled = h('input', { type: 'checkbox', class: 'edit', disabled: !this.editable,
        onchange: (e) => this.project.setEffectEnabled(track.id, index, e.target.checked) })
      this.presence.bind(enabled, key('enabled'))
      this.controls.set(`${index}:enabled`, enabled)
      const rows = []
      if (effect.kind === 'biquad') {
        const select = h('select', { class: 'edit', disabled: !this.editable,
          onchange: (e) => this.project.setEffectParam(track.id, index, 'shape', e.target.value) },
        BIQUAD_SHAPES.map((s) => h('option', { value: s }, s)))
        this.presence.bind(select, key('shape'))
        this.controls.set(`${index}:shape`, select)
        rows.push(h('label', { class: 'param' }, h('span', {}, 'shape'), select))
      }
      for (const [name, low, high, step] of PARAMS[effect.kind] || []) {
        const readout = h('span', { class: 'readout' })
        const log = step === 0
        const slider = h('input', { type: 'range', class: 'edit', disabled: !this.editable,
          min: log ? Math.log10(low) : low, max: log ? Math.log10(high) : high, step: log ? 0.001 : step,
          dataset: { param: name, log: log ? 'true' : '' },
          oninput: (e) => {
            const value = fromSlider(e.target)
            this.project.setEffectParam(track.id, index, name, value)
            readout.textContent = String(value)
          }
        })
        this.presence.bind(slider, key(name))
        this.controls.set(`${index}:${name}`, slider)
        this.controls.set(`${index}:${name}:readout`, readout)
        rows.push(h('label', { class: 'param' }, h('span', {}, name), slider, readout))
      }
      return h('div', { class: 'effect', dataset: { kind: effect.kind } },
        h('div', { class: 'effect-title' }, enabled, h('strong', {}, effect.kind), h('span', { class: 'hint' }, effect.id || '')),
        rows)
    })
    this.body.replaceChildren(...cards)
  }
}

function shapeName (value) {
  return typeof value === 'number' ? BIQUAD_SHAPES[Math.round(value)] || 'peaking' : String(value)
}

function toSlider (slider, value) {
  return slider.dataset.log ? Math.log10(Math.max(1e-6, Number(value))) : Number(value)
}

function fromSlider (slider) {
  const raw = Number(slider.value)
  return slider.dataset.log ? Math.round(10 ** raw * 10) / 10 : raw
}
