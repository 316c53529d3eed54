// The LV2 plug-ins installed on the server (GET /lv2/plugins, docs/lv2.md): what the
// effect and instrument pickers offer, and the controls of an lv2 effect's or
// instrument's card and its automation lanes (one per control port, by symbol).
import { h, holdTracker, isHeld, setProp } from './dom.js'
import { api } from './api.js'

export class Lv2Catalog {
  /** `account`: the project an administrator's token (project '*') acts for: such a token
   * names one on routes without a project in the path (docs/http-api.md). */
  constructor ({ token, account = null }) {
    this.token = token
    this.account = account
    this.plugins = []
    this.byUri = new Map()
    this.reason = '' // why none are listed (no liblilv on the server, the request refused)
    this.loaded = false
    this.loading = null
    this.listeners = []
  }

  /** Ask the server the first time it is needed (a track's effects shown, an lv2 lane
   * listed): the list is megabytes, so a page that never needs it never asks. */
  ensure () {
    if (!this.loading) this.loading = this.load()
    return this.loading
  }

  /** Ask the server; listeners hear when the answer is in. */
  async load () {
    try {
      const query = this.account ? `?account=${encodeURIComponent(this.account)}` : ''
      const answer = await api(`/lv2/plugins${query}`, { token: this.token })
      this.plugins = answer.plugins
      this.reason = answer.reason || ''
    } catch (err) {
      this.reason = err.message
    }
    this.byUri = new Map(this.plugins.map((p) => [p.uri, p]))
    this.loaded = true
    for (const fn of this.listeners) fn()
  }

  onChange (fn) { this.listeners.push(fn) }

  /** The installed plug-in `uri`, or undefined. */
  plugin (uri) { return this.byUri.get(uri) }

  /** Plug-ins that can be insert effects, or (`instruments`) play a MIDI track. */
  usable (instruments = false) {
    return this.plugins.filter((p) => (instruments ? p.instrument : p.effect))
  }
}

/**
 * A plug-in's control ports as sliders and lanes see them: {symbol, name, low, high, step,
 * value (its default), toggled, points, menu, automatable}. `rate` scales an lv2:sampleRate
 * port's bounds (a frequency in Hz); a port without both bounds gets a number field.
 * `points` are the port's scale points ({value, label}, by value); `menu`: the port is
 * chosen from them (an lv2:enumeration port, or an lv2:integer one whose every value has one).
 */
export function controlSpecs (info, rate = 48000) {
  return (info?.controls || []).map((port) => {
    const scale = port.per_sample_rate ? rate : 1
    const bounded = port.minimum !== null && port.minimum !== undefined && port.maximum !== null && port.maximum !== undefined
    const low = bounded ? port.minimum * scale : null
    const high = bounded ? port.maximum * scale : null
    const start = port.default ?? port.minimum ?? 0
    // about a thousand steps, a power of ten (0..127: 0.1), so typed values stay round
    const step = port.integer || port.enumeration || port.toggled ? 1 : bounded && high > low ? 10 ** Math.floor(Math.log10((high - low) / 1000)) : 'any'
    const points = (port.scale_points || []).map(({ value, label }) => ({ value: value * scale, label }))
    return { symbol: port.symbol, name: port.name || port.symbol, low, high, step, value: start * scale,
      toggled: port.toggled, points, menu: !port.toggled && points.length > 0 && (port.enumeration || (port.integer && namesEvery(points, low, high))),
      automatable: bounded && !port.per_sample_rate }
  })
}

/** Whether `points` name every whole number from `low` to `high` (an lv2:integer port
 * whose every value has a label reads best as a menu; one with a few labelled values,
 * such as 0 = "Any" of 0..16, stays a slider that reaches the others). */
function namesEvery (points, low, high) {
  if (low === null || high === null || high - low > 256) return false
  for (let value = Math.ceil(low); value <= high; value++) if (!pointAt(points, value)) return false
  return true
}

/** The scale point named for `value` (within float32's rounding), or undefined. */
export function pointAt (points, value) {
  return points.find((p) => Math.abs(p.value - value) <= 1e-6 * Math.max(1, Math.abs(p.value)))
}

/**
 * Controls for an lv2 plug-in's ports, written through `write(symbol, value)`: a slider
 * per bounded port (a checkbox for a toggled one, a menu of its scale points' labels for
 * an enumeration one, a number field for an unbounded one); a slider's readout names a
 * scale point the value is on. A move of an automatable port goes to `record(symbol,
 * value, held)` first (the automation writer): when it answers true, a touch or latch
 * pass took it and `write` is not called. Returns {rows, show(params)}: `show` sets each
 * control to params[symbol] or its default.
 */
export function portControls (info, { rate, editable, write, bind = () => {}, record = () => false }) {
  const controls = new Map()
  const rows = controlSpecs(info, rate).map((spec) => {
    const readout = h('span', { class: 'readout' })
    const move = (value, held = false) => {
      if (!(spec.automatable && record(spec.symbol, value, held))) write(spec.symbol, value)
    }
    let input
    if (spec.toggled) {
      input = h('input', { type: 'checkbox', class: 'edit', disabled: !editable, dataset: { param: spec.symbol },
        onchange: (e) => move(e.target.checked ? (spec.high || 1) : (spec.low || 0)) })
    } else if (spec.menu) {
      input = h('select', { class: 'edit lv2-choice', disabled: !editable, dataset: { param: spec.symbol },
        onchange: (e) => {
          const value = Number(e.target.value)
          if (Number.isFinite(value)) move(value)
        } },
      spec.points.map((p) => h('option', { value: String(p.value) }, p.label)))
    } else {
      const range = spec.low !== null
      const hold = holdTracker((e) => {
        const value = Number(e.target.value)
        if (spec.automatable && e.target.value !== '' && Number.isFinite(value)) record(spec.symbol, value, false)
      })
      input = h('input', { type: range ? 'range' : 'number', class: 'edit', disabled: !editable,
        step: spec.step, dataset: { param: spec.symbol }, ...(range ? { min: spec.low, max: spec.high } : {}),
        ...hold.attrs,
        oninput: (e) => {
          // a number field half typed ("-", "1e") reads "": no value yet, not 0
          if (e.target.value === '') return
          const value = Number(e.target.value)
          if (!Number.isFinite(value)) return
          move(value, hold.held())
          label(readout, spec, value)
        } })
    }
    bind(input, spec.symbol)
    controls.set(spec.symbol, { input, readout, spec })
    return h('label', { class: 'param', title: spec.symbol }, h('span', {}, spec.name), input, readout)
  })
  const show = (params = {}) => {
    for (const [symbol, { input, readout, spec }] of controls) {
      const value = Number(params[symbol] ?? spec.value)
      if (spec.toggled) setProp(input, 'checked', value > (spec.low || 0))
      else if (spec.menu) choose(input, spec, value)
      else if (!isHeld(input)) setProp(input, 'value', String(value))
      if (!spec.menu) label(readout, spec, value)
    }
  }
  return { rows, show }
}

/** A menu set to `value`: its scale point's option, else one more option with the number
 * (a value a peer, a project file or automation wrote between the points). */
function choose (select, spec, value) {
  const point = pointAt(spec.points, value)
  let other = select.querySelector('option.other')
  if (point) {
    other?.remove()
    setProp(select, 'value', String(point.value))
    return
  }
  if (!other) other = select.appendChild(h('option', { class: 'other', disabled: true }))
  other.value = String(value)
  other.textContent = format(value)
  setProp(select, 'value', other.value)
}

/** A slider's readout: the value, or the name of the scale point it is on. */
function label (readout, spec, value) {
  const point = pointAt(spec.points, value)
  readout.textContent = point ? point.label : format(value)
  readout.title = point ? format(value) : ''
}

/** A picker of installed plug-ins: a search box over a list grouped by class. */
export function pluginPicker (catalog, { instruments = false, editable, label }) {
  const select = h('select', { class: 'edit lv2-plugin', disabled: !editable, 'aria-label': label })
  const search = h('input', { type: 'search', class: 'edit lv2-search', disabled: !editable,
    placeholder: 'Search plug-ins', 'aria-label': `Search ${label}`, oninput: () => fill() })
  const fill = () => {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean)
    const groups = new Map()
    for (const p of catalog.usable(instruments)) {
      const text = `${p.name} ${p.category} ${p.uri}`.toLowerCase()
      if (!words.every((w) => text.includes(w))) continue
      const group = p.category || 'Other'
      if (!groups.has(group)) groups.set(group, [])
      groups.get(group).push(p)
    }
    const before = select.value
    select.replaceChildren(...[...groups.keys()].sort().map((group) => h('optgroup', { label: group },
      groups.get(group).sort((a, b) => a.name.localeCompare(b.name)).map((p) => h('option', { value: p.uri, title: p.uri }, p.name)))))
    if ([...select.options].some((o) => o.value === before)) select.value = before
  }
  fill()
  return { search, select, fill }
}

function format (value) {
  return String(+Number(value).toFixed(3))
}
