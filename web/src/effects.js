// Insert effects of the selected track, or of an aux bus or the master chosen in the
// panel's chain row: enable switch and parameter sliders (document edits), built-in kinds
// and installed LV2 plug-ins; a MIDI track's instrument picker.
import { deferWhileHeld, h, holdTracker, isHeld, setProp } from './dom.js'
import { describe } from './bypassed.js'
import { pluginPicker, portControls } from './lv2.js'

// Parameters, mirroring dsp_core.effects.PARAMS: name, low, high, step, default; a step
// of 0 marks a logarithmic slider (frequencies).
export const PARAMS = {
  gain: [['gain_db', -120, 24, 0.1, 0]],
  biquad: [['freq', 10, 96000, 0, 1000], ['q', 0.05, 40, 0.01, 0.707], ['gain_db', -36, 36, 0.1, 0]],
  compressor: [['threshold_db', -80, 0, 0.1, -18], ['ratio', 1, 100, 0.1, 4], ['knee_db', 0, 36, 0.1, 6],
    ['attack_ms', 0.01, 1000, 0.01, 10], ['release_ms', 1, 5000, 1, 100], ['makeup_db', -24, 36, 0.1, 0]],
  delay: [['time_ms', 0.1, 2000, 0.1, 250], ['feedback', 0, 0.98, 0.01, 0.3], ['mix', 0, 1, 0.01, 0.3]],
  limiter: [['ceiling_db', -24, 0, 0.1, -0.3], ['release_ms', 1, 2000, 1, 50]],
  reverb: [['room_size', 0, 1, 0.01, 0.5], ['damping', 0, 1, 0.01, 0.5], ['pre_delay_ms', 0, 250, 1, 0],
    ['width', 0, 1, 0.01, 1], ['mix', 0, 1, 0.01, 0.25]],
  chorus: [['rate_hz', 0.01, 10, 0.01, 0.8], ['depth_ms', 0, 10, 0.1, 3], ['feedback', 0, 0.9, 0.01, 0],
    ['mix', 0, 1, 0.01, 0.5], ['delay_ms', 1, 30, 0.1, 12]],
  flanger: [['rate_hz', 0.01, 10, 0.01, 0.3], ['depth_ms', 0, 10, 0.1, 2], ['feedback', -0.95, 0.95, 0.01, 0.5],
    ['mix', 0, 1, 0.01, 0.5], ['delay_ms', 0.1, 10, 0.1, 1]],
  gate: [['threshold_db', -100, 0, 0.1, -50], ['range_db', 0, 120, 0.1, 80], ['attack_ms', 0.01, 500, 0.01, 1],
    ['hold_ms', 0, 2000, 1, 20], ['release_ms', 1, 5000, 1, 100]],
  saturation: [['drive_db', 0, 48, 0.1, 12], ['mix', 0, 1, 0.01, 1], ['output_db', -24, 12, 0.1, 0]],
  phaser: [['rate_hz', 0.01, 10, 0.01, 0.5], ['depth', 0, 1, 0.01, 0.7], ['center_hz', 50, 5000, 0, 700],
    ['feedback', -0.9, 0.9, 0.01, 0.3], ['mix', 0, 1, 0.01, 0.5]]
}
// Effects that take a sidechain key (dsp_core.effects.SIDECHAIN_KINDS).
export const SIDECHAIN_KINDS = new Set(['compressor', 'gate'])
export const BIQUAD_SHAPES = ['lowpass', 'highpass', 'peaking', 'lowshelf', 'highshelf']
// Instrument kinds the picker writes without more input (dsp_core.midi.INSTRUMENT_KINDS;
// a sampler needs zones, an lv2 one a plug-in).
export const INSTRUMENT_KINDS = ['synth', 'soundfont']

export class EffectsPanel {
  /** `onSelectTrack(id)` and `onSelectBus(id)`: the chain row's buttons select through the
   * page's one selection (main.js), which calls show or showBus back. `onControl(owner,
   * param, value, held)`: the automation writer, as a fader's (tracks.js mixControls); a
   * parameter's moves go to it as its lane `fx:ID:PARAM`. */
  constructor ({ project, presence, editable, bypassed = null, plugins = null,
    onSelectTrack = (id) => this.show(id), onSelectBus = (id) => this.showBus(id), onControl = () => false }) {
    Object.assign(this, { project, presence, editable, bypassed, plugins, onSelectTrack, onSelectBus, onControl })
    this.trackId = null // the selected track
    this.busId = null // an aux bus or the master selected (its timeline row, the chain row): shown instead
    this.signature = ''
    this.ownersSignature = ''
    this.controls = new Map()
    this.title = h('h3', {}, 'Effects')
    this.owners = h('div', { class: 'chain-owners', role: 'group', 'aria-label': 'Insert chain of' })
    this.body = h('div', { class: 'effects-body' })
    this.el = h('section', { class: 'panel effects' }, this.title, this.owners, this.body)
  }

  /** Show the chain of the track just selected. */
  show (trackId) {
    this.trackId = trackId
    this.busId = null
    this.update()
  }

  /** Show the chain of an aux bus or the master ('master'). */
  showBus (busId) {
    this.busId = busId
    this.update()
  }

  /** The chain shown: {id, kind ('track', 'bus' or 'master'), name, data (its JSON)}. */
  owner () {
    const bus = this.busId ? this.project.roots.buses.get(this.busId)?.toJSON() : null
    if (bus) return { id: this.busId, kind: this.busId === 'master' ? 'master' : 'bus', name: bus.name || this.busId, data: bus }
    const track = this.trackId ? this.project.roots.tracks.get(this.trackId)?.toJSON() : null
    return track ? { id: this.trackId, kind: 'track', name: track.name, data: track } : null
  }

  update () {
    this._showOwners()
    const owner = this.owner()
    if (!owner) {
      this.title.textContent = 'Effects'
      this.body.replaceChildren(h('p', { class: 'hint' }, 'Select a track, an aux bus or the master to see its effects.'))
      this.signature = ''
      return
    }
    this.title.textContent = `Effects · ${owner.kind === 'bus' ? `bus ${owner.name}` : owner.name}`
    const track = owner.data
    const effects = track.effects || []
    const midi = owner.kind === 'track' && isMidiTrack(this.project, track)
    const instrument = midi ? instrumentSignature(track) : '-'
    this.plugins?.ensure() // its pickers and lv2 cards fill in when it answers
    const signature = `${owner.kind}:${owner.id}|${effects.map((e) => `${e.id}:${e.kind}:${e.params?.uri || ''}`).join(',')}|` +
      `${instrument}|${this.plugins?.loaded || false}`
    if (signature !== this.signature && !this._waitForRelease(owner, effects, midi ? instrument : null)) {
      this._build(owner, effects, signature)
    }
    if (midi) {
      this.instrumentControls?.show(track.instrument?.params || {})
      if (this.instrumentKind) setProp(this.instrumentKind, 'value', instrumentValue(track.instrument))
    }
    effects.forEach((effect, index) => {
      this._showBypassed(owner.id, effect, index)
      const enabled = this.controls.get(`${index}:enabled`)
      if (enabled) setProp(enabled, 'checked', effect.enabled !== false)
      const key = this.controls.get(`${index}:sidechain`)
      if (key) {
        this._keySources(key, owner.id)
        setProp(key, 'value', effect.sidechain || '')
      }
      this.controls.get(`${index}:ports`)?.show(effect.params || {})
      const defaults = Object.fromEntries((PARAMS[effect.kind] || []).map((p) => [p[0], p[4]]))
      if (effect.kind === 'biquad') defaults.shape = 'peaking'
      for (const [name, value] of Object.entries({ ...defaults, ...(effect.params || {}) })) {
        const control = this.controls.get(`${index}:p:${name}`)
        if (!control) continue
        if (control.tagName === 'SELECT') setProp(control, 'value', shapeName(value))
        else if (!isHeld(control)) setProp(control, 'value', String(toSlider(control, value)))
        const readout = this.controls.get(`${index}:p:${name}:readout`)
        if (readout) readout.textContent = typeof value === 'number' ? String(+value.toFixed(3)) : String(value)
      }
    })
  }

  /** The chain row: the selected track, each aux bus and the master; the one shown is
   * pressed, one with a bypassed plug-in marked. */
  _showOwners () {
    const buses = [...this.project.roots.buses.entries()]
      .map(([id, bus]) => [id, id === 'master' ? 'Master' : `bus ${bus.get('name') || id}`])
      .sort((a, b) => (a[0] === 'master') - (b[0] === 'master') || a[1].localeCompare(b[1]))
    const track = this.trackId ? this.project.roots.tracks.get(this.trackId) : null
    const shown = this.owner()?.id || ''
    const entries = [...(track ? [[this.trackId, track.get('name') || this.trackId]] : []), ...buses]
      .map(([id, label]) => [id, label, this.bypassed?.of(id).length || 0])
    const signature = JSON.stringify([shown, entries])
    if (signature === this.ownersSignature) return
    this.ownersSignature = signature
    this.owners.hidden = buses.length === 0
    this.owners.replaceChildren(...entries.map(([id, label, faults]) => h('button', {
      class: `chain-owner${id === shown ? ' on' : ''}`, 'aria-pressed': String(id === shown),
      dataset: { owner: id, kind: id === this.trackId && track ? 'track' : id === 'master' ? 'master' : 'bus' },
      title: faults ? `${faults} plug-in${faults > 1 ? 's' : ''} bypassed` : `Show the insert effects of ${label}`,
      onclick: () => (id === this.trackId && track ? this.onSelectTrack(id) : this.onSelectBus(id))
    }, faults ? `⚠ ${label}` : label)))
  }

  /**
   * Whether a rebuild waits until a held slider is let go: its card still shows the same
   * effect (or instrument) in the same place, and what changed is elsewhere (the LV2 list
   * arriving, a collaborator's track, another effect). The panel rebuilds on release;
   * meanwhile the drag and its automation pass go on. A card that is gone rebuilds now.
   */
  _waitForRelease (owner, effects, instrument) {
    const slots = cardSlots(owner, effects, instrument)
    return deferWhileHeld(this.body, (control) => slots.includes(control.closest('.effect')?.dataset.slot),
      () => this.update())
  }

  _build (owner, effects, signature) {
    this.signature = signature
    this.controls.clear()
    this.instrumentControls = null
    this.instrumentKind = null
    const track = owner.data
    const midi = owner.kind === 'track' && isMidiTrack(this.project, track)
    const slots = cardSlots(owner, effects, midi ? instrumentSignature(track) : null)
    const adder = this._adderFor(owner.id)
    const instrument = midi ? this._instrument(track, slots[0]) : ''
    if (!effects.length) {
      this.body.replaceChildren(instrument, h('p', { class: 'hint' }, `This ${owner.kind} has no insert effects.`), adder)
      return
    }
    const cards = effects.map((effect, index) => {
      const key = (name) => `${owner.kind === 'track' ? 'track' : 'bus'}:${owner.id}:fx${index}:${name}`
      const enabled = h('input', { type: 'checkbox', class: 'edit', disabled: !this.editable,
        onchange: (e) => this.project.setEffectEnabled(owner.id, index, e.target.checked) })
      this.presence.bind(enabled, key('enabled'))
      this.controls.set(`${index}:enabled`, enabled)
      const rows = []
      if (effect.kind === 'biquad') {
        const select = h('select', { class: 'edit', disabled: !this.editable,
          onchange: (e) => this.project.setEffectParam(owner.id, index, 'shape', e.target.value) },
        BIQUAD_SHAPES.map((s) => h('option', { value: s }, s)))
        this.presence.bind(select, key('shape'))
        this.controls.set(`${index}:p:shape`, select)
        rows.push(h('label', { class: 'param' }, h('span', {}, 'shape'), select))
      }
      if (SIDECHAIN_KINDS.has(effect.kind)) rows.push(this._sidechain(owner.id, index, key('sidechain')))
      for (const [name, low, high, step] of PARAMS[effect.kind] || []) {
        const readout = h('span', { class: 'readout' })
        const log = step === 0
        const hold = holdTracker((e) => this._recorded(owner.id, effect, name, fromSlider(e.target), false))
        const slider = h('input', { type: 'range', class: 'edit', disabled: !this.editable,
          min: log ? Math.log10(low) : low, max: log ? Math.log10(high) : high, step: log ? 0.001 : step,
          dataset: { param: name, log: log ? 'true' : '' },
          ...hold.attrs,
          oninput: (e) => {
            const value = fromSlider(e.target)
            if (!this._recorded(owner.id, effect, name, value, hold.held())) this.project.setEffectParam(owner.id, index, name, value)
            readout.textContent = String(value)
          }
        })
        this.presence.bind(slider, key(name))
        this.controls.set(`${index}:p:${name}`, slider)
        this.controls.set(`${index}:p:${name}:readout`, readout)
        rows.push(h('label', { class: 'param' }, h('span', {}, name), slider, readout))
      }
      let title = effect.kind
      if (effect.kind === 'lv2') {
        const info = this.plugins?.plugin(effect.params?.uri)
        title = info?.name || effect.params?.uri || 'lv2'
        if (info) {
          const ports = portControls(info, { rate: this.project.sampleRate, editable: this.editable,
            write: (symbol, value) => this.project.setEffectParam(owner.id, index, symbol, value),
            record: (symbol, value, held) => this._recorded(owner.id, effect, symbol, value, held),
            bind: (input, symbol) => this.presence.bind(input, key(symbol)) })
          this.controls.set(`${index}:ports`, ports)
          rows.push(...ports.rows)
        } else if (this.plugins?.loaded) {
          rows.push(h('p', { class: 'hint' }, `${effect.params?.uri || 'This plug-in'} is not installed on this server.`))
        }
      }
      const remove = h('button', { class: 'edit remove-effect', disabled: !this.editable, title: `Remove this ${title}`,
        onclick: () => this.project.removeEffect(owner.id, index) }, '×')
      const error = h('div', { class: 'effect-error', role: 'alert', hidden: true })
      this.controls.set(`${index}:error`, error)
      const slot = slots[index + (midi ? 1 : 0)]
      return h('div', { class: 'effect', dataset: { kind: effect.kind, effect: effect.id || '', uri: effect.params?.uri || '', slot } },
        h('div', { class: 'effect-title' }, enabled, h('strong', { title: effect.params?.uri || '' }, title), h('span', { class: 'hint' }, effect.id || ''), remove),
        error, rows)
    })
    this.body.replaceChildren(instrument, ...cards, adder)
  }

  /** A MIDI track's instrument: its kind (or an installed LV2 instrument) and, for an
   * lv2 one, a control per port. */
  _instrument (track, slot) {
    const current = track.instrument
    const select = h('select', { class: 'edit instrument-kind', disabled: !this.editable, 'aria-label': 'Instrument',
      onchange: (e) => {
        const value = e.target.value
        if (value.startsWith('lv2:')) this.project.setInstrument(track.id, 'lv2', { uri: value.slice(4) })
        else if (value) this.project.setInstrument(track.id, value)
      } },
    current ? '' : h('option', { value: '' }, 'none'),
    INSTRUMENT_KINDS.map((k) => h('option', { value: k }, k)),
    current?.kind === 'sampler' ? h('option', { value: 'sampler', disabled: true }, 'sampler (its zones)') : '',
    h('optgroup', { label: 'LV2 instruments' }, (this.plugins?.usable(true) || [])
      .map((p) => h('option', { value: `lv2:${p.uri}`, title: p.uri }, p.name))))
    if (current?.kind === 'lv2' && !this.plugins?.plugin(current.params?.uri)) {
      select.append(h('option', { value: instrumentValue(current), disabled: true }, `${current.params?.uri} (not installed)`))
    }
    select.value = instrumentValue(current)
    this.instrumentKind = select
    this.presence.bind(select, `track:${track.id}:instrument`)
    const rows = []
    const info = current?.kind === 'lv2' ? this.plugins?.plugin(current.params?.uri) : null
    if (info) {
      this.instrumentControls = portControls(info, { rate: this.project.sampleRate, editable: this.editable,
        write: (symbol, value) => this.project.setInstrumentParam(track.id, symbol, value),
        bind: (input, symbol) => this.presence.bind(input, `track:${track.id}:instrument:${symbol}`) })
      rows.push(...this.instrumentControls.rows)
    }
    return h('div', { class: 'effect instrument', dataset: { kind: current?.kind || '', uri: current?.params?.uri || '', slot } },
      h('div', { class: 'effect-title' }, h('strong', {}, 'Instrument'), select), rows)
  }

  /** A parameter's move, to the automation writer: whether a touch or latch pass took it
   * (then its lane plays and the static value stays). An effect without an id has no lanes. */
  _recorded (ownerId, effect, name, value, held) {
    return Boolean(effect.id) && this.onControl(ownerId, `fx:${effect.id}:${name}`, value, held)
  }

  /** The error badge of the effect at `index` while the server plays it bypassed. */
  _showBypassed (ownerId, effect, index) {
    const slot = this.controls.get(`${index}:error`)
    if (!slot || !this.bypassed) return
    const faults = this.bypassed.of(ownerId, effect, index)
    const signature = JSON.stringify(faults)
    if (slot.dataset.signature === signature) return
    slot.dataset.signature = signature
    slot.hidden = faults.length === 0
    slot.title = faults.map(describe).join('\n')
    slot.parentElement.classList.toggle('bypassed', faults.length > 0)
    const failed = faults.some((f) => f.reason === 'failed')
    slot.replaceChildren(...(faults.length ? [
      h('span', { class: 'badge' }, failed ? 'failed · bypassed' : 'bypassed'),
      h('span', { class: 'reason' }, faults.map(describe).join('; ')),
      failed ? this.bypassed.restartButton() : h('span', { class: 'hint' }, 'fix or remove this effect')
    ] : []))
  }

  /** The key picker of a compressor or gate (on a track, an aux bus or the master): its
   * own input, or any other track or aux bus (docs/engine.md#sidechains-and-delay-compensation). */
  _sidechain (ownerId, index, presenceKey) {
    const select = h('select', { class: 'edit sidechain', disabled: !this.editable, 'aria-label': 'Sidechain key',
      onchange: (e) => this.project.setEffectSidechain(ownerId, index, e.target.value) })
    this._keySources(select, ownerId)
    this.presence.bind(select, presenceKey)
    this.controls.set(`${index}:sidechain`, select)
    return h('label', { class: 'param' }, h('span', {}, 'key'), select)
  }

  /** The key picker's sources: its own input, every other track and aux bus by name. Its
   * options are replaced only when those changed (a collaborator's track, a rename). */
  _keySources (select, ownerId) {
    const sources = [['', 'own input']]
    this.project.roots.tracks.forEach((t, id) => { if (id !== ownerId) sources.push([id, `track ${t.get('name') || id}`]) })
    // the master hears every track and bus: keying anything by it is always a cycle
    this.project.roots.buses.forEach((b, id) => { if (id !== 'master' && id !== ownerId) sources.push([id, `bus ${b.get('name') || id}`]) })
    const signature = JSON.stringify(sources)
    if (select.dataset.sources === signature) return
    select.dataset.sources = signature
    const before = select.value
    select.replaceChildren(...sources.map(([id, label]) => h('option', { value: id }, label)))
    select.value = before
  }

  /** The adders of `ownerId`'s chain, kept while it is shown: a kind chosen, a search typed
   * and a plug-in picked outlive a rebuild (a collaborator's effect); the LV2 list arriving
   * fills the kept picker in. */
  _adderFor (ownerId) {
    const loaded = this.plugins?.loaded || false
    const kept = this.adder
    if (kept?.owner === ownerId && (kept.loaded === loaded || (kept.picker && this.plugins.usable().length))) {
      if (kept.loaded !== loaded) kept.picker.fill()
      kept.loaded = loaded
      return kept.el
    }
    this.adder = { owner: ownerId, loaded, ...this._adder(ownerId) }
    return this.adder.el
  }

  /** A kind picker and an Add button that appends that effect to the chain of `ownerId`
   * (a track or bus); a searchable picker of the server's LV2 effects and its own Add
   * button: `{el, picker}`. */
  _adder (ownerId) {
    const kind = h('select', { class: 'edit add-effect-kind', disabled: !this.editable, 'aria-label': 'Effect kind' },
      Object.keys(PARAMS).map((k) => h('option', { value: k }, k)))
    kind.value = 'reverb'
    const add = h('button', { class: 'edit add-effect', disabled: !this.editable,
      onclick: () => this.project.addEffect(ownerId, kind.value) }, 'Add effect')
    const builtIn = h('div', { class: 'effect-add' }, kind, add)
    if (!this.plugins) return { el: builtIn, picker: null }
    if (this.plugins.loaded && !this.plugins.usable().length) {
      const why = this.plugins.reason ? `: ${this.plugins.reason}` : ''
      return { el: h('div', { class: 'effect-adders' }, builtIn, h('p', { class: 'hint lv2-none' }, `No LV2 plug-ins${why}`)), picker: null }
    }
    const picker = pluginPicker(this.plugins, { editable: this.editable, label: 'LV2 plug-in' })
    const addPlugin = h('button', { class: 'edit add-lv2', disabled: !this.editable,
      onclick: () => { if (picker.select.value) this.project.addEffect(ownerId, 'lv2', { uri: picker.select.value }) } }, 'Add plug-in')
    return { el: h('div', { class: 'effect-adders' }, builtIn, h('div', { class: 'effect-add lv2-add' }, picker.search, picker.select, addPlugin)), picker }
  }
}

/** Whether `track` plays MIDI: it has an instrument or a MIDI clip. */
export function isMidiTrack (project, track) {
  if (track.instrument) return true
  for (const clip of project.roots.midi_clips.values()) if (clip.get('track') === track.id) return true
  return false
}

/** What the instrument card of a MIDI track shows: its kind and plug-in. */
function instrumentSignature (track) {
  return `${track.instrument?.kind || ''}:${track.instrument?.params?.uri || ''}`
}

/** One name per card of `owner`'s panel (its instrument's first when `instrument` is
 * given), saying what the card shows and where: a held slider's card keeps its name
 * across a change only if it still shows the same thing in the same place. */
function cardSlots (owner, effects, instrument) {
  const base = `${owner.kind}:${owner.id}`
  return [...(instrument === null ? [] : [`${base}|instrument|${instrument}`]),
    ...effects.map((e, index) => `${base}|${index}|${e.id}:${e.kind}:${e.params?.uri || ''}`)]
}

/** The instrument picker's value for a track's instrument. */
function instrumentValue (instrument) {
  if (!instrument) return ''
  return instrument.kind === 'lv2' ? `lv2:${instrument.params?.uri || ''}` : instrument.kind
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
