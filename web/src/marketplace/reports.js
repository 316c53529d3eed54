// Entry point of /sales-reports: the signed-in seller's paid sales over a chosen day range,
// charted by day, beat, licence tier and country (Chart.js), each chart with a data table
// of the same figures, and a link to the customer CSV; below, the payouts panel
// (payouts.js). Amounts are minor units per currency.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController,
  LineElement, PointElement, Tooltip
} from 'chart.js'
import { call } from '../account/client.js'
import { toSignIn } from '../account/layout.js'
import { h } from '../dom.js'
import { loadPayouts } from './payouts.js'

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController,
  LineElement, PointElement, Legend, Tooltip)
Chart.defaults.color = '#c9cdd6'
Chart.defaults.borderColor = '#2b2f38'

const DAY = /^\d{4}-\d{2}-\d{2}$/
const iso = (date) => date.toISOString().slice(0, 10)
const params = new URLSearchParams(window.location.search)
const today = iso(new Date())
const state = {
  to: DAY.test(params.get('to') || '') ? params.get('to') : today,
  from: DAY.test(params.get('from') || '') ? params.get('from') : iso(new Date(Date.now() - 29 * 86400000))
}
const charts = []
window.salesCharts = charts

/** `minor` units of `currency` as text (two decimals: the report's currencies). */
export function money (minor, currency) {
  return `${(minor / 100).toFixed(2)} ${String(currency).toUpperCase()}`
}

/** One chart and its table of `figures` ({key, title?, currency, revenue, sales}). */
function panel (title, figures, type = 'bar') {
  const canvas = h('canvas', { role: 'img', 'aria-label': `${title}: revenue` })
  const currencies = [...new Set(figures.map((f) => f.currency))]
  const labels = [...new Set(figures.map((f) => f.title || f.key))]
  const datasets = currencies.map((currency) => ({
    label: currency.toUpperCase(),
    data: labels.map((label) => {
      const found = figures.find((f) => (f.title || f.key) === label && f.currency === currency)
      return found ? found.revenue / 100 : 0
    })
  }))
  const rows = figures.map((f) => h('tr', {}, h('td', {}, f.title || f.key),
    h('td', { class: 'num' }, money(f.revenue, f.currency)), h('td', { class: 'num' }, String(f.sales))))
  const section = h('section', {}, h('h2', {}, title), canvas,
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', {}, 'Revenue'),
      h('th', {}, 'Sales'))), h('tbody', {}, ...rows)))
  charts.push(new Chart(canvas, { type, data: { labels, datasets }, options: { animation: false } }))
  return section
}

async function load (app) {
  const since = Date.parse(`${state.from}T00:00:00Z`) / 1000
  const until = Date.parse(`${state.to}T00:00:00Z`) / 1000 + 86400
  let report
  try {
    report = await call(`/api/marketplace/reports/sales?since=${since}&until=${until}`)
  } catch (error) {
    if (error.status === 401) return toSignIn()
    app.replaceChildren(h('p', { role: 'alert' }, `The report could not be loaded: ${error.message}`))
    return
  }
  while (charts.length) charts.pop().destroy()
  const from = h('input', { type: 'date', name: 'from', value: state.from, required: true })
  const to = h('input', { type: 'date', name: 'to', value: state.to, required: true })
  const form = h('form', {}, h('label', {}, 'From', from), h('label', {}, 'To', to),
    h('button', { type: 'submit' }, 'Show'))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (!DAY.test(from.value) || !DAY.test(to.value) || from.value > to.value) return
    Object.assign(state, { from: from.value, to: to.value })
    window.history.replaceState(null, '', `${window.location.pathname}?from=${state.from}&to=${state.to}`)
    load(app)
  })
  const total = report.total.map((f) => `${money(f.revenue, f.currency)} in ${f.sales} sales`).join(', ')
  app.replaceChildren(h('main', {}, h('h1', {}, 'Sales reports'), form,
    h('p', {}, total ? `Total: ${total}` : 'No paid sales in this period.'),
    h('p', {}, h('a', { href: '/api/marketplace/reports/customers.csv', download: 'customers.csv' },
      'Download the customer CSV'), ' (names and emails only of customers who agreed)'),
    h('div', { class: 'charts' }, panel('Revenue by day', report.by_day, 'line'),
      panel('Revenue by beat', report.by_beat), panel('Revenue by licence', report.by_tier),
      panel('Revenue by country', report.by_country))))
}

const root = document.getElementById('app')
const reports = h('div', { id: 'reports' }, h('p', { class: 'loading' }, 'Loading…'))
const payouts = h('section', { id: 'payouts', class: 'payouts' })
root.replaceChildren(reports, h('main', {}, payouts))
load(reports)
loadPayouts(payouts)
