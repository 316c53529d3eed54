// Numbers, growth and days as the dashboard shows them; days are UTC calendar days
// (YYYY-MM-DD), as the server stores daily points (midnight UTC).

const numbers = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 0 })

/** "12,345", or an en dash for no figure. */
export function formatNumber (value) {
  return value === null || value === undefined ? '–' : numbers.format(value)
}

/** "+12.5 %" / "−3.0 %", or an en dash when there is nothing to compare with. */
export function formatChange (change) {
  if (change === null || change === undefined) return '–'
  const percent = change * 100
  const sign = percent > 0 ? '+' : percent < 0 ? '−' : ''
  return `${sign}${Math.abs(percent).toFixed(1)} %`
}

/** The UTC day of a Date as YYYY-MM-DD. */
export const isoDay = (date) => date.toISOString().slice(0, 10)

/** The day `n` days after the YYYY-MM-DD `day` (n may be negative). */
export function addDays (day, n) {
  const date = new Date(`${day}T00:00:00Z`)
  date.setUTCDate(date.getUTCDate() + n)
  return isoDay(date)
}

/** Every day from `from` to `to` (YYYY-MM-DD, inclusive). */
export function daysBetween (from, to) {
  const out = []
  for (let day = from; day <= to && out.length < 1200; day = addDays(day, 1)) out.push(day)
  return out
}

/** An epoch-seconds moment as "3 Dec 2026, 15:04" in the browser's zone. */
export function formatMoment (seconds) {
  if (!seconds) return '–'
  return new Date(seconds * 1000).toLocaleString('en-GB', {
    day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit'
  })
}

/** "0.4 s", "3 min", "2 h" for a lag in seconds. */
export function formatLag (seconds) {
  if (seconds === null || seconds === undefined) return '–'
  if (seconds < 60) return `${seconds.toFixed(1)} s`
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`
  return `${(seconds / 3600).toFixed(1)} h`
}
