// Chart.js charts of one API key's days: requests and errors (bars), latency p50 and p99
// (lines). Each canvas has an accessible name; the same figures are in a data table.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController,
  LineElement, PointElement, Tooltip
} from 'chart.js'
import { h } from '../dom.js'

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController,
  LineElement, PointElement, Legend, Tooltip)
Chart.defaults.color = '#c9cdd6'
Chart.defaults.borderColor = '#2b2f38'
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", sans-serif'

/** Every UTC day from `first` to `last` (YYYY-MM-DD), in order. */
export function daysBetween (first, last) {
  const out = []
  for (let at = Date.parse(`${first}T00:00:00Z`); at <= Date.parse(`${last}T00:00:00Z`); at += 86400000) {
    out.push(new Date(at).toISOString().slice(0, 10))
  }
  return out
}

const ms = (value) => (value === null || value === undefined ? '–' : `${value.toFixed(1)} ms`)

/** The charts and table of `key` over `days`; registers its Charts in window.developerCharts. */
export function keyCharts (key, days) {
  const byDay = new Map(key.days.map((d) => [d.day, d]))
  const pick = (field) => days.map((day) => (byDay.has(day) ? byDay.get(day)[field] : null))
  const requests = h('canvas', { role: 'img', 'aria-label': `Requests and errors per day of key ${key.name}` })
  const latency = h('canvas', { role: 'img', 'aria-label': `Latency p50 and p99 per day of key ${key.name}` })
  const charts = [
    new Chart(requests, {
      type: 'bar',
      data: {
        labels: days,
        datasets: [
          { label: 'Requests', data: pick('requests').map((v) => v || 0), backgroundColor: '#4f8cff' },
          { label: 'Errors', data: pick('errors').map((v) => v || 0), backgroundColor: '#ff7a7a' }
        ]
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } }
    }),
    new Chart(latency, {
      type: 'line',
      data: {
        labels: days,
        datasets: [
          { label: 'p50 (ms)', data: pick('p50_ms'), borderColor: '#5bd17a', backgroundColor: '#5bd17a', spanGaps: false },
          { label: 'p99 (ms)', data: pick('p99_ms'), borderColor: '#f5a623', backgroundColor: '#f5a623', spanGaps: false }
        ]
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } }
    })
  ]
  window.developerCharts = window.developerCharts || {}
  window.developerCharts[key.id] = charts
  const table = h('table', { class: 'data' },
    h('caption', { class: 'hint' }, `Key ${key.name}, per UTC day`),
    h('thead', {}, h('tr', {}, ...['Day', 'Requests', 'Errors', 'Rate-limited', 'p50', 'p99']
      .map((title) => h('th', { scope: 'col' }, title)))),
    h('tbody', {}, ...key.days.map((d) => h('tr', {},
      h('th', { scope: 'row' }, d.day), h('td', { class: 'num' }, d.requests),
      h('td', { class: 'num' }, d.errors), h('td', { class: 'num' }, d.rejected),
      h('td', { class: 'num' }, ms(d.p50_ms)), h('td', { class: 'num' }, ms(d.p99_ms))))))
  return h('div', {},
    h('div', { class: 'charts' },
      h('div', { class: 'chart-frame' }, requests), h('div', { class: 'chart-frame' }, latency)),
    h('details', {}, h('summary', {}, 'Data table'), table))
}

export { ms }
