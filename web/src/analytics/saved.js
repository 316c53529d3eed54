// Saved dashboards: one's own and the team's shared ones; each widget drawn as a Chart.js
// line or bar chart or as a table, with CSV and Parquet downloads; a form saves the chosen
// entity and range as a new dashboard; the owner shares, unshares or deletes it.
import { BarController, BarElement, Chart } from 'chart.js'
import { h } from '../dom.js'
import { formatNumber } from './format.js'

Chart.register(BarController, BarElement)
const PALETTE = ['#4f8cff', '#f5a623', '#5bd17a', '#e8618c', '#b48cff', '#3fc7d6', '#ffd84d', '#ff7a45']

/** Chart.js datasets of a widget's rows: one per split (source, or entity name). */
function datasets (data) {
  const days = [...new Set(data.rows.map((r) => r[0]))].sort()
  const keyOf = (r) => (data.split === 'source' ? r[3] : r[2] || r[1])
  const groups = new Map()
  for (const r of data.rows) {
    if (!groups.has(keyOf(r))) groups.set(keyOf(r), new Map())
    groups.get(keyOf(r)).set(r[0], r[4])
  }
  return {
    days,
    sets: [...groups].map(([label, byDay], i) => ({
      label,
      data: days.map((d) => (byDay.has(d) ? byDay.get(d) : null)),
      borderColor: PALETTE[i % PALETTE.length],
      backgroundColor: PALETTE[i % PALETTE.length],
      borderWidth: 2,
      pointRadius: days.length > 120 ? 0 : 2
    }))
  }
}

function widgetTable (data) {
  return h('table', { class: 'data' },
    h('thead', {}, h('tr', {}, ...['Day', 'Entity', 'Platform', 'Value'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...data.rows.map((r) => h('tr', {}, h('td', {}, r[0]), h('td', {}, r[2] || r[1]),
      h('td', {}, r[3] === '*' ? 'All' : r[3]), h('td', { class: 'num' }, formatNumber(r[4]))))))
}

/** {element, render()}; `current()` gives {entity, from, to} of the page. */
export function savedPanel ({ api, say, current }) {
  const chooser = h('select', { id: 'dashboard-choice', name: 'dashboard' })
  const area = h('div', { class: 'saved-area' })
  const charts = []
  let found = []

  async function show () {
    charts.splice(0).forEach((c) => c.destroy())
    const chosen = found.find((d) => d.dashboard_id === chooser.value)
    if (!chosen) {
      area.replaceChildren(h('p', { class: 'empty' }, 'No saved dashboards yet: save the chosen track’s view below.'))
      return
    }
    const tools = [h('span', { class: 'hint' }, chosen.mine ? (chosen.shared ? 'Yours, shared with the team' : 'Yours, private') : `Shared by ${chosen.owner}`)]
    if (chosen.mine) {
      tools.push(h('button', {
        type: 'button',
        onclick: async () => {
          try {
            await api().shareDashboard(chosen.dashboard_id, !chosen.shared)
            say(chosen.shared ? 'The dashboard is private again.' : 'The dashboard is shared with the team.')
            await render(chosen.dashboard_id)
          } catch (err) { say(`Not changed: ${err.message}`, 'alert') }
        }
      }, chosen.shared ? 'Stop sharing' : 'Share with the team'),
      h('button', {
        type: 'button',
        onclick: async () => {
          try {
            await api().deleteDashboard(chosen.dashboard_id)
            say('The dashboard was deleted.')
            await render()
          } catch (err) { say(`Not deleted: ${err.message}`, 'alert') }
        }
      }, 'Delete'))
    }
    const widgets = await Promise.all(chosen.widgets.map(async (w) => {
      const box = h('figure', { class: 'widget', dataset: { widget: w.widget_id } }, h('figcaption', {}, w.title || w.metric))
      let data
      try {
        data = await api().widgetData(chosen.dashboard_id, w.widget_id)
      } catch (err) {
        box.append(h('p', { class: 'empty' }, err.message))
        return box
      }
      if (w.kind === 'table' || !data.rows.length) {
        box.append(data.rows.length ? widgetTable(data) : h('p', { class: 'empty' }, 'No figures in this range.'))
      } else {
        const canvas = h('canvas', { role: 'img', 'aria-label': `${w.title || w.metric}: ${w.kind} chart, ${data.first_day} to ${data.last_day}` })
        box.append(h('div', { class: 'chart-frame' }, canvas), h('details', {}, h('summary', {}, 'Data table'), widgetTable(data)))
        const { days, sets } = datasets(data)
        charts.push(new Chart(canvas, {
          type: w.kind,
          data: { labels: days, datasets: sets },
          options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } }
        }))
      }
      box.append(h('p', { class: 'exports' },
        h('a', { href: api().exportUrl(chosen.dashboard_id, w.widget_id, 'csv'), download: '' }, 'CSV'), ' · ',
        h('a', { href: api().exportUrl(chosen.dashboard_id, w.widget_id, 'parquet'), download: '' }, 'Parquet')))
      return box
    }))
    area.replaceChildren(h('div', { class: 'toolbar' }, ...tools), ...widgets)
  }
  chooser.addEventListener('change', show)

  const name = h('input', { id: 'new-dashboard-name', name: 'name', required: true, maxlength: 200 })
  const metric = h('input', { id: 'new-dashboard-metric', name: 'metric', value: 'streams', required: true })
  const kind = h('select', { id: 'new-dashboard-kind', name: 'kind' },
    ...[['line', 'Line'], ['bar', 'Bar'], ['table', 'Table']].map(([v, t]) => h('option', { value: v }, t)))
  const form = h('form', {
    class: 'fields',
    'aria-label': 'Save a dashboard',
    onsubmit: async (event) => {
      event.preventDefault()
      const { entity, from, to } = current()
      if (!entity) return say('Choose an artist or track first (Artists and tracks, above).', 'alert')
      try {
        const made = await api().createDashboard({
          name: name.value.trim(),
          filters: { from, to, entities: [entity] },
          widgets: [{ widget_id: 'w1', title: `${metric.value} per platform`, kind: kind.value, metric: metric.value.trim() }]
        })
        say(`Dashboard “${made.name}” saved.`)
        name.value = ''
        await render(made.dashboard_id)
      } catch (err) { say(`Not saved: ${err.message}`, 'alert') }
    }
  },
  h('label', { class: 'field', for: 'new-dashboard-name' }, h('span', {}, 'Name'), name),
  h('label', { class: 'field', for: 'new-dashboard-metric' }, h('span', {}, 'Metric'), metric),
  h('label', { class: 'field', for: 'new-dashboard-kind' }, h('span', {}, 'Widget'), kind),
  h('button', { type: 'submit' }, 'Save as dashboard'))

  async function render (chosenId) {
    found = await api().dashboards()
    const keep = chosenId || chooser.value
    chooser.replaceChildren(...found.map((d) => h('option', { value: d.dashboard_id, selected: d.dashboard_id === keep },
      `${d.name}${d.mine ? '' : ` (${d.owner})`}`)))
    await show()
  }

  const element = h('section', { class: 'panel', 'aria-labelledby': 'saved-title' },
    h('h2', { id: 'saved-title' }, 'Saved dashboards'),
    h('label', { class: 'field', for: 'dashboard-choice' }, h('span', {}, 'Dashboard'), chooser),
    area, h('details', {}, h('summary', {}, 'Save the chosen entity and range as a dashboard'), form))
  return { element, render }
}
