// The time-series chart: one Chart.js line per platform, daily grain, over the chosen range,
// with a text summary for its accessible name and the same figures as a data table.
import {
  CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip
} from 'chart.js'
import { h } from '../dom.js'
import { daysBetween, formatNumber } from './format.js'

Chart.register(CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip)
Chart.defaults.color = '#c9cdd6'
Chart.defaults.borderColor = '#2b2f38'
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", sans-serif'

// Distinct on a dark background (and for common colour blindness, paired with the legend).
const PALETTE = ['#4f8cff', '#f5a623', '#5bd17a', '#e8618c', '#b48cff', '#3fc7d6', '#ffd84d',
  '#ff7a45', '#9ad14b', '#d68cff', '#7aa6c2', '#ff9eb5']

const dayOf = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10)

/** {element, show(title, answer, kpiName, titles)}; the Chart is window.analyticsChart. */
export function trendChart () {
  const canvas = h('canvas', { id: 'trend-canvas', role: 'img' })
  const summary = h('p', { class: 'hint', id: 'trend-summary' })
  const table = h('table', { class: 'data', id: 'trend-table' })
  const empty = h('p', { class: 'empty', hidden: true })
  const frame = h('div', { class: 'chart-frame' }, canvas)
  const element = h('figure', { class: 'trend', 'aria-labelledby': 'trend-summary' },
    frame, empty, summary,
    h('details', {}, h('summary', {}, 'Data table'), table))
  canvas.setAttribute('aria-describedby', 'trend-summary')
  let chart = null

  function show (title, answer, kpiName, titles) {
    const kpi = answer.kpis[kpiName]
    const days = daysBetween(answer.first_day, answer.last_day)
    const sources = Object.keys(kpi.sources).sort()
    const datasets = sources.map((source, index) => {
      const byDay = new Map(kpi.sources[source].map(([at, value]) => [dayOf(at), value]))
      const color = PALETTE[index % PALETTE.length]
      return {
        label: titles.get(source) || source,
        source,
        data: days.map((day) => (byDay.has(day) ? byDay.get(day) : null)),
        borderColor: color,
        backgroundColor: color,
        borderWidth: 2,
        pointRadius: days.length > 120 ? 0 : 2,
        spanGaps: false
      }
    })
    const name = `${kpi.title || kpiName} of ${title} per platform, daily, ${answer.first_day} to ${answer.last_day}`
    canvas.setAttribute('aria-label', name)
    canvas.dataset.kpi = kpiName
    canvas.dataset.from = answer.first_day
    canvas.dataset.to = answer.last_day
    empty.hidden = sources.length > 0
    frame.hidden = sources.length === 0
    empty.textContent = `No ${(kpi.title || kpiName).toLowerCase()} figures for ${title} in this range: ` +
      'choose a longer range, or back-fill a source that reports them.'
    summary.textContent = `${name}: ${sources.length} platform${sources.length === 1 ? '' : 's'}` +
      (sources.length ? ` (${datasets.map((d) => d.label).join(', ')})` : '') + '.'
    table.replaceChildren(
      h('caption', {}, name),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day'),
        ...datasets.map((d) => h('th', { scope: 'col', class: 'num' }, d.label)))),
      h('tbody', {}, ...days.filter((_, i) => datasets.some((d) => d.data[i] !== null)).map((day) => {
        const i = days.indexOf(day)
        return h('tr', {}, h('th', { scope: 'row' }, day),
          ...datasets.map((d) => h('td', { class: 'num' }, formatNumber(d.data[i]))))
      })))
    if (chart === null) {
      chart = new Chart(canvas, {
        type: 'line',
        data: { labels: days, datasets },
        options: {
          animation: false,
          maintainAspectRatio: false,
          interaction: { mode: 'index', intersect: false },
          scales: {
            x: { ticks: { maxTicksLimit: 10 } },
            y: { beginAtZero: !kpi.running_total, ticks: { callback: (v) => formatNumber(v) } }
          },
          plugins: { legend: { position: 'bottom' } }
        }
      })
      window.analyticsChart = chart
    } else {
      chart.data.labels = days
      chart.data.datasets = datasets
      chart.options.scales.y.beginAtZero = !kpi.running_total
      chart.update('none')
    }
    canvas.dataset.updates = String(Number(canvas.dataset.updates || 0) + 1)
  }

  return { element, show }
}
