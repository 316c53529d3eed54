// The tempo map on the page: the rules of dsp_core/tempo.py (tests/test_page_tempo.py
// checks both give the same grid). A beat is a quarter note from the song's start;
// tempo changes sit at a beat (with `ramp`: gliding linearly in tempo over the beats to
// the next change's, exact as the integral of 60/bpm), meter changes at a 0-based bar;
// two changes at one place
// resolve by id (the larger wins); without changes the transport's tempo and meter hold.

const byPlace = (key) => (a, b) => a[key] - b[key] || (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0)
const lastAt = (rows, key) => rows.filter((row, i) => i + 1 === rows.length || rows[i + 1][key] !== row[key])
const okBpm = (bpm) => Number.isFinite(bpm) && bpm >= 10 && bpm <= 999
const DENOMINATORS = [1, 2, 4, 8, 16, 32]

/** The map from the document's `tempos` and `meters` roots (plain objects) and transport. */
export function tempoMap (tempos = {}, meters = {}, transport = {}) {
  let t = Object.entries(tempos).map(([id, c]) => ({ id, beat: Number(c.beat), bpm: Number(c.bpm), ramp: c.ramp === true }))
    .filter((c) => Number.isFinite(c.beat) && c.beat >= 0 && okBpm(c.bpm)).sort(byPlace('beat'))
  t = lastAt(t, 'beat')
  if (!t.length) t = [{ id: '', beat: 0, bpm: okBpm(Number(transport.tempo)) ? Number(transport.tempo) : 120, ramp: false }]
  if (t[0].beat > 0) t.unshift({ id: '', beat: 0, bpm: t[0].bpm, ramp: false })
  let m = Object.entries(meters).map(([id, c]) => ({
    id, bar: Number(c.bar), numerator: Number(c.numerator ?? 4), denominator: Number(c.denominator ?? 4)
  })).filter((c) => Number.isInteger(c.bar) && c.bar >= 0 && Number.isInteger(c.numerator) &&
    c.numerator >= 1 && c.numerator <= 64 && DENOMINATORS.includes(c.denominator)).sort(byPlace('bar'))
  m = lastAt(m, 'bar')
  if (!m.length) m = [{ id: '', bar: 0, numerator: Number(transport.beats_per_bar) || 4, denominator: Number(transport.beat_unit) || 4 }]
  if (m[0].bar > 0) m.unshift({ id: '', bar: 0, numerator: m[0].numerator, denominator: m[0].denominator })
  // the tempo's slope (BPM per beat) after each change: 0 unless it ramps to the next
  const slopes = t.map((c, i) => c.ramp && i + 1 < t.length ? (t[i + 1].bpm - c.bpm) / (t[i + 1].beat - c.beat) : 0)
  // seconds that `beats` take from change i: 60/k ln(1 + k b / bpm), and the inverse
  const spanSeconds = (i, beats) => slopes[i] === 0 || beats <= 0
    ? beats * 60 / t[i].bpm
    : 60 / slopes[i] * Math.log1p(slopes[i] * beats / t[i].bpm)
  const spanBeats = (i, s) => slopes[i] === 0 || s <= 0
    ? s * t[i].bpm / 60
    : t[i].bpm / slopes[i] * Math.expm1(slopes[i] * s / 60)
  const seconds = [0]
  for (let i = 1; i < t.length; i++) seconds.push(seconds[i - 1] + spanSeconds(i - 1, t[i].beat - t[i - 1].beat))
  const barBeats = (meter) => meter.numerator * 4 / meter.denominator
  const meterBeats = [0]
  for (let i = 1; i < m.length; i++) meterBeats.push(meterBeats[i - 1] + (m[i].bar - m[i - 1].bar) * barBeats(m[i - 1]))
  const find = (list, value) => { let i = 0; while (i + 1 < list.length && list[i + 1] <= value) i++; return i }
  const beatToSeconds = (beat) => { const i = find(t.map((c) => c.beat), beat); return seconds[i] + spanSeconds(i, beat - t[i].beat) }
  const secondsToBeat = (s) => { const i = find(seconds, s); return t[i].beat + spanBeats(i, s - seconds[i]) }
  const meterAt = (bar) => m[find(m.map((c) => c.bar), bar)]
  const barToBeat = (bar) => { const i = find(m.map((c) => c.bar), bar); return meterBeats[i] + (bar - m[i].bar) * barBeats(m[i]) }
  /** 1-based { bar, beat } at quarter-note `beat` (whole beats of the meter's note value). */
  const barBeat = (beat) => {
    const i = find(meterBeats, beat)
    const meter = m[i]
    const inMeter = beat - meterBeats[i]
    const bars = Math.floor(inMeter / barBeats(meter) + 1e-9)
    const within = Math.max(0, inMeter - bars * barBeats(meter)) / (4 / meter.denominator)
    return { bar: meter.bar + bars + 1, beat: Math.min(Math.floor(within + 1e-9), meter.numerator - 1) + 1 }
  }
  const positionToBeat = (bar, beat) => barToBeat(bar - 1) + (beat - 1) * 4 / meterAt(bar - 1).denominator
  return {
    tempos: t,
    meters: m,
    beatToSeconds,
    secondsToBeat,
    barBeat,
    barToBeat,
    bpmAt: (beat) => { const i = find(t.map((c) => c.beat), beat); return t[i].bpm + slopes[i] * Math.max(0, beat - t[i].beat) },
    /** Every beat in [from, to) seconds: { seconds, bar, beat, isBar }. */
    grid (from, to) {
      const lines = []
      let { bar, beat } = barBeat(secondsToBeat(Math.max(0, from)))
      for (;;) {
        const s = beatToSeconds(positionToBeat(bar, beat))
        if (s >= to) return lines
        if (s >= from) lines.push({ seconds: s, bar, beat, isBar: beat === 1 })
        beat += 1
        if (beat > meterAt(bar - 1).numerator) { bar += 1; beat = 1 }
      }
    }
  }
}

/** The bar.beat the ruler shows at `seconds` (beats in the meter's own note value). */
export function barBeatAt (map, seconds) {
  const { bar, beat } = map.barBeat(map.secondsToBeat(Math.max(0, seconds)))
  return `${bar}.${beat}`
}

/** The time of the grid line (with `bars`: the bar line) `steps` lines on from the one
 * nearest `seconds` (back when negative), in seconds; never before the song's start. */
export function gridStep (map, seconds, steps, bars = false) {
  // lines found within `reach` hold the nearest one: widen until the step lands in them
  for (let reach = 4; reach < 1e7; reach *= 4) {
    const from = Math.max(0, seconds - reach)
    const lines = map.grid(from, seconds + reach).filter((line) => !bars || line.isBar)
    if (!lines.length) continue
    let here = 0
    for (let i = 1; i < lines.length; i++) {
      if (Math.abs(lines[i].seconds - seconds) < Math.abs(lines[here].seconds - seconds)) here = i
    }
    const to = here + steps
    if (to >= 0 && to < lines.length) return lines[to].seconds
    if (to < 0 && from === 0) return lines[0].seconds
  }
  return Math.max(0, seconds)
}
