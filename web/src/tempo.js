// The tempo map on the page: the rules of dsp_core/tempo.py (tests/test_page_tempo.py
// checks both give the same grid). A beat is a quarter note from the song's start;
// tempo changes sit at a beat, meter changes at a 0-based bar; two changes at one place
// resolve by id (the larger wins); without changes the transport's tempo and meter hold.

const byPlace = (key) => (a, b) => a[key] - b[key] || (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0)
const lastAt = (rows, key) => rows.filter((row, i) => i + 1 === rows.length || rows[i + 1][key] !== row[key])
const okBpm = (bpm) => Number.isFinite(bpm) && bpm >= 10 && bpm <= 999
const DENOMINATORS = [1, 2, 4, 8, 16, 32]

/** The map from the document's `tempos` and `meters` roots (plain objects) and transport. */
export function tempoMap (tempos = {}, meters = {}, transport = {}) {
  let t = Object.entries(tempos).map(([id, c]) => ({ id, beat: Number(c.beat), bpm: Number(c.bpm) }))
    .filter((c) => Number.isFinite(c.beat) && c.beat >= 0 && okBpm(c.bpm)).sort(byPlace('beat'))
  t = lastAt(t, 'beat')
  if (!t.length) t = [{ id: '', beat: 0, bpm: okBpm(Number(transport.tempo)) ? Number(transport.tempo) : 120 }]
  if (t[0].beat > 0) t.unshift({ id: '', beat: 0, bpm: t[0].bpm })
  let m = Object.entries(meters).map(([id, c]) => ({
    id, bar: Number(c.bar), numerator: Number(c.numerator ?? 4), denominator: Number(c.denominator ?? 4)
  })).filter((c) => Number.isInteger(c.bar) && c.bar >= 0 && Number.isInteger(c.numerator) &&
    c.numerator >= 1 && c.numerator <= 64 && DENOMINATORS.includes(c.denominator)).sort(byPlace('bar'))
  m = lastAt(m, 'bar')
  if (!m.length) m = [{ id: '', bar: 0, numerator: Number(transport.beats_per_bar) || 4, denominator: Number(transport.beat_unit) || 4 }]
  if (m[0].bar > 0) m.unshift({ id: '', bar: 0, numerator: m[0].numerator, denominator: m[0].denominator })
  const seconds = [0]
  for (let i = 1; i < t.length; i++) seconds.push(seconds[i - 1] + (t[i].beat - t[i - 1].beat) * 60 / t[i - 1].bpm)
  const barBeats = (meter) => meter.numerator * 4 / meter.denominator
  const meterBeats = [0]
  for (let i = 1; i < m.length; i++) meterBeats.push(meterBeats[i - 1] + (m[i].bar - m[i - 1].bar) * barBeats(m[i - 1]))
  const find = (list, value) => { let i = 0; while (i + 1 < list.length && list[i + 1] <= value) i++; return i }
  const beatToSeconds = (beat) => { const i = find(t.map((c) => c.beat), beat); return seconds[i] + (beat - t[i].beat) * 60 / t[i].bpm }
  const secondsToBeat = (s) => { const i = find(seconds, s); return t[i].beat + (s - seconds[i]) * t[i].bpm / 60 }
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
    bpmAt: (beat) => t[find(t.map((c) => c.beat), beat)].bpm,
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
