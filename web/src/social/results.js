// Results in charts (Chart.js, the chart library the analytics dashboard bundles): per
// channel, impressions and engagement of the posts published each day over the last 30
// days (GET /api/social/results); per post, every reading of each of its channels over
// time (GET /api/social/posts/{id}/results). Engagement is likes + comments + shares +
// clicks, as the best-time suggestions count it. A table repeats the chart's figures.
import {
  CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip
} from 'chart.js'
import { h } from '../dom.js'
import { channelName } from './filters.js'

Chart.register(CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip)

const DAYS = 30
const PALETTE = ['#2453c7', '#c2410c', '#2f7d32', '#a21caf', '#0e7490', '#b7791f', '#4b5563']
const ENGAGEMENT = ['likes', 'comments', 'shares', 'clicks']

/** Likes + comments + shares + clicks; null when the network reports none of them. */
export function engagement (metrics) {
  const known = ENGAGEMENT.map((m) => metrics[m]).filter((v) => v !== null && v !== undefined)
  return known.length ? known.reduce((a, b) => a + b, 0) : null
}

const add = (a, b) => (b === null || b === undefined ? a : (a ?? 0) + b)
const isoDay = (date) => `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`
const stamp = (seconds) => new Intl.DateTimeFormat(undefined, {
  day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit'
}).format(new Date(seconds * 1000))

/** Per channel: {labels: days, series: [{channel, metric, values}]} from a results report. */
export function perChannel (report) {
  const days = new Set()
  const sums = new Map() // channel -> day -> {impressions, engagement}
  for (const post of report.posts) {
    for (const row of post.channels) {
      if (!row.channel_id) continue
      const day = isoDay(new Date(row.published_at * 1000))
      days.add(day)
      const byDay = sums.get(row.channel_id) || new Map()
      sums.set(row.channel_id, byDay)
      const cell = byDay.get(day) || { impressions: null, engagement: null }
      cell.impressions = add(cell.impressions, row.metrics.impressions)
      cell.engagement = add(cell.engagement, engagement(row.metrics))
      byDay.set(day, cell)
    }
  }
  const labels = [...days].sort()
  const series = []
  for (const [channel, byDay] of [...sums].sort()) {
    for (const metric of ['impressions', 'engagement']) {
      series.push({ channel, metric, values: labels.map((d) => (byDay.has(d) ? byDay.get(d)[metric] : null)) })
    }
  }
  return { labels, series }
}

/** Per post: {labels: reading times, series: [{channel, metric, values}]} from its readings. */
export function perPost (readings) {
  const times = [...new Set(readings.map((r) => r.taken_at))].sort((a, b) => a - b)
  const channels = [...new Set(readings.map((r) => r.channel_id))].sort()
  const series = []
  for (const channel of channels) {
    const mine = new Map(readings.filter((r) => r.channel_id === channel).map((r) => [r.taken_at, r.metrics]))
    series.push({ channel, metric: 'impressions', values: times.map((t) => (mine.has(t) ? mine.get(t).impressions ?? null : null)) })
    series.push({ channel, metric: 'engagement', values: times.map((t) => (mine.has(t) ? engagement(mine.get(t)) : null)) })
  }
  return { labels: times.map(stamp), times, series }
}

/** The results section: {element, load()}; the chart is window.socialChart. */
export function resultsPanel ({ api, channels }) {
  const channelSelect = h('select', { id: 'results-channel', name: 'results-channel', onchange: () => load() })
  const postSelect = h('select', { id: 'results-post', name: 'results-post', onchange: () => draw() })
  const canvas = h('canvas', { id: 'results-canvas', role: 'img' })
  const summary = h('p', { class: 'hint', id: 'results-summary' })
  const table = h('table', { class: 'data', id: 'results-table' })
  const empty = h('p', { class: 'empty', hidden: true })
  const frame = h('div', { class: 'chart-frame' }, canvas)
  canvas.setAttribute('aria-describedby', 'results-summary')
  const element = h('section', { class: 'results', 'aria-labelledby': 'results-title' },
    h('h2', { id: 'results-title' }, 'Results'),
    h('div', { class: 'toolbar' },
      h('label', { class: 'field', for: 'results-channel' }, h('span', {}, 'Results of'), channelSelect),
      h('label', { class: 'field', for: 'results-post' }, h('span', {}, 'Post'), postSelect)),
    frame, empty, summary, h('details', {}, h('summary', {}, 'Data table'), table))
  let chart = null
  let report = null

  const nameOf = (id) => {
    const found = channels().find((c) => c.channel_id === id)
    return found ? channelName(found) : id
  }

  function render (title, { labels, series }) {
    const datasets = series.map((s, index) => {
      const color = PALETTE[Math.floor(index / 2) % PALETTE.length]
      return {
        label: `${nameOf(s.channel)} ${s.metric}`,
        channel: s.channel,
        metric: s.metric,
        data: s.values,
        borderColor: color,
        backgroundColor: color,
        borderDash: s.metric === 'engagement' ? [6, 4] : [],
        spanGaps: true,
        yAxisID: s.metric === 'engagement' ? 'y1' : 'y'
      }
    })
    empty.hidden = labels.length > 0
    frame.hidden = labels.length === 0
    empty.textContent = `No results for ${title} in the last ${DAYS} days yet.`
    canvas.setAttribute('aria-label', title)
    summary.textContent = `${title}: ${labels.length} point${labels.length === 1 ? '' : 's'}, ${datasets.length} line${datasets.length === 1 ? '' : 's'} (solid: impressions, left axis; dashed: engagement, right axis).`
    table.replaceChildren(
      h('thead', {}, h('tr', {}, h('th', {}, 'When'), ...datasets.map((d) => h('th', {}, d.label)))),
      h('tbody', {}, ...labels.map((label, i) => h('tr', {}, h('th', {}, label),
        ...datasets.map((d) => h('td', {}, d.data[i] === null ? '—' : String(d.data[i])))))))
    const data = { labels, datasets }
    if (chart) {
      chart.data = data
      chart.update()
    } else {
      chart = new Chart(canvas, {
        type: 'line',
        data,
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: {
            y: { beginAtZero: true, position: 'left', title: { display: true, text: 'Impressions' } },
            y1: { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'Engagement' } }
          }
        }
      })
      window.socialChart = chart
    }
    element.dataset.shown = postSelect.value ? `post:${postSelect.value}` : `channel:${channelSelect.value}`
    element.dataset.draws = String(Number(element.dataset.draws || 0) + 1)
  }

  async function draw () {
    try {
      if (postSelect.value) {
        const readings = await api().readings(postSelect.value)
        render(`Readings of one post per channel over time`, perPost(readings))
      } else {
        const who = channelSelect.value ? nameOf(channelSelect.value) : 'every channel'
        render(`Impressions and engagement per day of posting, ${who}`, perChannel(report))
      }
    } catch (err) {
      summary.textContent = `The results could not be drawn: ${err.message}`
    }
  }

  async function load () {
    const known = channels()
    const keep = channelSelect.value
    channelSelect.replaceChildren(h('option', { value: '' }, 'All channels'),
      ...known.map((c) => h('option', { value: c.channel_id, selected: c.channel_id === keep }, channelName(c))))
    const to = new Date(Date.now() + 3600 * 1000)
    const from = new Date(to.getTime() - DAYS * 86400 * 1000)
    try {
      report = await api().results(from, to, channelSelect.value)
    } catch (err) {
      summary.textContent = `The results could not be loaded: ${err.message}`
      return
    }
    postSelect.replaceChildren(h('option', { value: '' }, 'Per channel, by day'),
      ...report.posts.map((p) => h('option', { value: p.post_id },
        `${isoDay(new Date(p.published_at * 1000))} · ${(p.text || '').split('\n')[0].slice(0, 50)}`)))
    await draw()
  }

  return { element, load }
}
