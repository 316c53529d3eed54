// Tempo and meter changes on the ruler: drawn as flags at their place in the tempo map
// (web/src/tempo.js), written to the document's `tempos` and `meters` roots.
// Double-click the ruler: a tempo change at that beat (Alt: a meter change at that bar).
// Drag a flag: move it (to whole beats, or bars for a meter). Double-click a flag: change
// its value. Right-click a flag: remove it. The ramp switch on a tempo flag (↗) makes the
// tempo glide to the next change's instead of holding until it.
import { followDrag, h } from './dom.js'
import { tempoMap } from './tempo.js'

const round2 = (v) => Math.round(v * 100) / 100

// The flag under a drag, from press to release: `{id, left, el, moved}`. The ruler is redrawn whenever the document
// changes (a collaborator's edit, a new marker), which replaces every flag: the new one
// of the dragged change takes its place under the pointer.
let dragged = null

/** The map without the change `id` (where a dragged change lands is read off it). */
function mapWithout (project, id) {
  const omit = (root) => Object.fromEntries(Object.entries(root.toJSON()).filter(([key]) => key !== id))
  return tempoMap(omit(project.roots.tempos), omit(project.roots.meters), project.transport())
}

/** The nearest whole beat (tempo) or 0-based bar start (meter) to `seconds` in `map`. */
function placeAt (map, kind, seconds) {
  const beat = Math.max(0, map.secondsToBeat(Math.max(0, seconds)))
  if (kind === 'tempo') return Math.round(beat)
  const bar = map.barBeat(beat).bar - 1
  const here = map.beatToSeconds(map.barToBeat(bar))
  const next = map.beatToSeconds(map.barToBeat(bar + 1))
  return seconds - here <= next - seconds ? bar : bar + 1
}

function ask (timeline, question, answer, write) {
  const text = window.prompt(question, answer)
  if (text === null || text.trim() === '') return
  try {
    write(text.trim())
  } catch (err) {
    timeline.onRefuse(err.message)
  }
}

function writeMeter (project, id, bar, text) {
  const [numerator, denominator] = text.split('/').map((v) => Number(v))
  project.setMeterChange(id, bar, numerator, denominator)
}

/** Flags of the document's tempo and meter changes for the ruler of `timeline`. */
export function timeChangeFlags (timeline) {
  const project = timeline.project
  const map = project.tempoMap()
  const flag = (kind, change, seconds, label) => h('span', {
    class: `time-change ${kind}`,
    dataset: { change: change.id },
    title: timeline.editable ? 'Drag to move, double-click to change, right-click to remove' : '',
    style: `left:${seconds * timeline.zoom}px`,
    onpointerdown: (e) => drag(timeline, e, kind, change),
    ondblclick: (e) => { e.stopPropagation(); edit(timeline, kind, change) },
    oncontextmenu: (e) => {
      e.preventDefault()
      if (timeline.editable) project.removeTimeChange(change.id)
    }
  }, label)
  const rampSwitch = (t) => h('button', {
    class: `ramp-toggle${t.ramp ? ' on' : ''}`,
    title: t.ramp ? 'Ramping to the next tempo: click to hold instead' : 'Click to ramp to the next tempo',
    disabled: !timeline.editable,
    onpointerdown: (e) => e.stopPropagation(), // no drag, no seek
    ondblclick: (e) => e.stopPropagation(), // no tempo prompt
    onclick: (e) => {
      e.stopPropagation()
      if (timeline.editable) project.setTempoChange(t.id, t.beat, t.bpm, !t.ramp)
    }
  }, '↗')
  const flags = [
    ...map.tempos.filter((t) => t.id).map((t) => {
      const el = flag('tempo', t, map.beatToSeconds(t.beat), `♩=${round2(t.bpm)}`)
      el.classList.toggle('ramp', t.ramp)
      el.append(rampSwitch(t))
      return el
    }),
    ...map.meters.filter((m) => m.id).map((m) =>
      flag('meter', m, map.beatToSeconds(map.barToBeat(m.bar)), `${m.numerator}/${m.denominator}`))
  ]
  const under = dragged && flags.find((el) => el.dataset.change === dragged.id)
  if (under) {
    under.classList.toggle('dragging', dragged.moved)
    under.style.left = `${dragged.left}px`
    dragged.el = under
  }
  return flags
}

/** The change `id` as the document holds it now, or undefined once removed. */
function current (project, kind, id) {
  const map = project.tempoMap()
  return (kind === 'tempo' ? map.tempos : map.meters).find((c) => c.id === id)
}

function edit (timeline, kind, change) {
  if (!timeline.editable) return
  const project = timeline.project
  if (kind === 'tempo') {
    ask(timeline, 'Tempo (beats a minute, 10 to 999)', String(round2(change.bpm)),
      (text) => project.setTempoChange(change.id, change.beat, Number(text), change.ramp))
  } else {
    ask(timeline, 'Meter (e.g. 3/4, 7/8)', `${change.numerator}/${change.denominator}`,
      (text) => writeMeter(project, change.id, change.bar, text))
  }
}

function drag (timeline, event, kind, change) {
  event.stopPropagation() // no seek
  if (event.button !== 0 || !timeline.editable) return
  const x0 = event.clientX
  const left = parseFloat(event.currentTarget.style.left) || 0
  const held = { id: change.id, left, el: event.currentTarget, moved: false }
  dragged = held
  const move = (e) => {
    if (!held.moved && Math.abs(e.clientX - x0) < 4) return
    held.moved = true
    held.left = Math.max(0, left + e.clientX - x0)
    held.el.classList.add('dragging')
    held.el.style.left = `${held.left}px`
  }
  followDrag(move, (e, cancelled) => {
    if (dragged === held) dragged = null
    held.el.classList.remove('dragging')
    if (cancelled) held.el.style.left = `${left}px` // dropped: back where it was
    if (!held.moved || cancelled) return
    const project = timeline.project
    // a collaborator may have changed its value meanwhile (kept), or removed it (stays so)
    const now = current(project, kind, change.id)
    if (!now) return
    const seconds = Math.max(0, left + e.clientX - x0) / timeline.zoom
    const place = placeAt(mapWithout(project, change.id), kind, seconds)
    if (kind === 'tempo') project.setTempoChange(change.id, place, now.bpm, now.ramp)
    else project.setMeterChange(change.id, place, now.numerator, now.denominator)
  })
}

/** Double-click on the ruler of `timeline` adds a tempo change (Alt: a meter change). */
export function bindRulerEdits (timeline) {
  timeline.ruler.addEventListener('dblclick', (e) => {
    if (!timeline.editable || e.target.closest?.('.time-change')) return
    const project = timeline.project
    const map = project.tempoMap()
    const seconds = (e.clientX - timeline.ruler.getBoundingClientRect().left) / timeline.zoom
    const kind = e.altKey ? 'meter' : 'tempo'
    const place = placeAt(map, kind, seconds)
    // The first change of a map holds from the start, so the first one added after the
    // start also writes down what held there (the transport's tempo or meter).
    const keepStart = (list, write) => {
      if (place > 0 && !list.some((c) => c.id)) write()
    }
    if (kind === 'tempo') {
      const { bar, beat } = map.barBeat(place)
      ask(timeline, `Tempo from bar ${bar} beat ${beat} (beats a minute, 10 to 999)`,
        String(round2(map.bpmAt(place))), (text) => project.doc.transact(() => {
          const bpm = Number(text)
          project.setTempoChange(null, place, bpm) // checked first: a bad answer writes nothing
          keepStart(map.tempos, () => project.setTempoChange(null, 0, map.bpmAt(0)))
        }))
    } else {
      const meter = map.meters.filter((m) => m.bar <= place).pop()
      ask(timeline, `Meter from bar ${place + 1} (e.g. 3/4, 7/8)`,
        `${meter.numerator}/${meter.denominator}`, (text) => project.doc.transact(() => {
          writeMeter(project, null, place, text)
          keepStart(map.meters, () => project.setMeterChange(null, 0, meter.numerator, meter.denominator))
        }))
    }
  })
}
