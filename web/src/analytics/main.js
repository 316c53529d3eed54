// Entry point of /analytics: the dashboard of the signed-in person or one of their
// organisations. Connected sources with their freshness, KPIs per artist and track across
// platforms with growth, and a chart per KPI (one line per platform) over a chosen day range.
// The URL keeps the choices (?account=&from=&to=&entity=&kpi=).
import { h } from '../dom.js'
import { me as whoAmI } from '../account/client.js'
import { toSignIn } from '../account/layout.js'
import { alertsPanel } from './alerts.js'
import { analyticsApi } from './api.js'
import { audiencePanel } from './audience.js'
import { benchmarkPanel } from './benchmark.js'
import { addDays, isoDay } from './format.js'
import { KPI_ORDER, KPI_TITLES, kpiCards, kpiTable } from './kpis.js'
import { noticeArea } from './notice.js'
import { playlistsPanel } from './playlists.js'
import { savedPanel } from './saved.js'
import { sourcesPanel } from './sources.js'
import { trendChart } from './trend.js'

const DAY = /^\d{4}-\d{2}-\d{2}$/
const params = new URLSearchParams(window.location.search)
const today = isoDay(new Date())
const state = {
  account: params.get('account') || '',
  to: DAY.test(params.get('to') || '') ? params.get('to') : today,
  from: '',
  entity: params.get('entity') || '',
  kpi: KPI_ORDER.includes(params.get('kpi')) ? params.get('kpi') : '',
  loads: 0
}
state.from = DAY.test(params.get('from') || '') && params.get('from') <= state.to
  ? params.get('from') : addDays(state.to, -27)

/** The page's choices into its URL (no new history entry). */
function remember () {
  const query = new URLSearchParams()
  for (const key of ['account', 'from', 'to', 'entity', 'kpi']) if (state[key]) query.set(key, state[key])
  window.history.replaceState(null, '', `${window.location.pathname}?${query}`)
}

/** `work(item)` over `items`, `limit` at a time; the answers in order. */
async function pooled (items, limit, work) {
  const out = new Array(items.length)
  let next = 0
  async function lane () {
    while (next < items.length) {
      const index = next++
      out[index] = await work(items[index])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return out
}

function labelled (id, text, control) {
  control.id = id
  return h('label', { class: 'field', for: id }, h('span', {}, text), control)
}

/** The account chooser ('' = the person) over `me`'s organisations. */
function accountChooser (me, onChange) {
  const select = h('select', { name: 'account', onchange: () => onChange(select.value) },
    h('option', { value: '' }, `Mine (${me.person.name || me.person.email || 'me'})`),
    ...me.organisations.map((org) => h('option', { value: org.id, selected: org.id === state.account }, org.name)))
  return labelled('analytics-account', 'Analytics of', select)
}

/** From and To days and quick ranges; `onChange()` after a valid change. */
function rangePicker (say, onChange) {
  const from = h('input', { type: 'date', name: 'from', value: state.from, max: today })
  const to = h('input', { type: 'date', name: 'to', value: state.to, max: today })
  function apply () {
    if (!DAY.test(from.value) || !DAY.test(to.value)) return say('Choose both days of the range.', 'alert')
    if (from.value > to.value) return say(`The range ends (${to.value}) before it starts (${from.value}): swap them.`, 'alert')
    state.from = from.value
    state.to = to.value
    onChange()
  }
  const quick = (days, text) => h('button', {
    type: 'button',
    onclick: () => { to.value = today; from.value = addDays(today, -(days - 1)); apply() }
  }, text)
  return h('form', {
    class: 'range', 'aria-label': 'Date range', onsubmit: (event) => { event.preventDefault(); apply() }
  },
  labelled('range-from', 'From', from), labelled('range-to', 'To', to),
  h('button', { type: 'submit' }, 'Show range'),
  h('div', { class: 'quick', role: 'group', 'aria-label': 'Quick ranges' },
    quick(7, '7 days'), quick(28, '28 days'), quick(90, '90 days'), quick(365, '1 year')))
}

async function main () {
  const root = document.getElementById('app')
  const me = await whoAmI()
  if (!me) {
    toSignIn()
    return
  }
  const api = () => analyticsApi(state.account)
  const notice = noticeArea()
  const platforms = await api().platforms()
  const titles = new Map(platforms.map((p) => [p.source, p.title]))
  const sources = sourcesPanel({
    api, platforms, say: notice.say, range: () => ({ from: state.from, to: state.to }), changed: () => load()
  })
  const alerts = alertsPanel({ api, say: notice.say })
  const playlists = playlistsPanel({ api, titles })
  const audience = audiencePanel({ api, titles })
  const bench = benchmarkPanel({ api, say: notice.say })
  const saved = savedPanel({
    api, say: notice.say, current: () => ({ entity: state.entity, from: state.from, to: state.to })
  })
  const kpiArea = h('div', { class: 'kpi-area' })
  const detailTitle = h('h2', { id: 'detail-title' })
  const cardsArea = h('div', {})
  const kpiChoice = h('select', { name: 'kpi' })
  const chart = trendChart()
  const detail = h('section', { class: 'panel detail', 'aria-labelledby': 'detail-title', hidden: true },
    detailTitle, cardsArea,
    h('div', { class: 'chart-bar' }, labelled('chart-kpi', 'Chart of', kpiChoice)),
    chart.element)
  let rows = []

  function showDetail () {
    const row = rows.find((r) => r.entity.entity_id === state.entity)
    detail.hidden = !row
    if (!row) return
    const name = row.entity.name || row.entity.entity_id
    detailTitle.textContent = name
    cardsArea.replaceChildren(kpiCards(row.entity, row.kpis))
    const kpis = row.kpis.kpis
    const withData = KPI_ORDER.filter((k) => kpis[k] && Object.keys(kpis[k].sources).length)
    if (!KPI_ORDER.includes(state.kpi) || !kpis[state.kpi]) state.kpi = withData[0] || KPI_ORDER[0]
    kpiChoice.replaceChildren(...KPI_ORDER.filter((k) => kpis[k]).map((k) =>
      h('option', { value: k, selected: k === state.kpi }, KPI_TITLES[k])))
    chart.show(name, row.kpis, state.kpi, titles)
  }
  kpiChoice.addEventListener('change', () => { state.kpi = kpiChoice.value; remember(); showDetail() })

  function choose (entityId) {
    state.entity = entityId
    remember()
    kpiArea.querySelectorAll('tr[data-entity]').forEach((tr) => {
      const chosen = tr.dataset.entity === entityId
      tr.classList.toggle('chosen', chosen)
      tr.querySelector('button').setAttribute('aria-pressed', String(chosen))
    })
    showDetail()
  }

  async function loadKpis (connected) {
    const [artists, tracks] = await Promise.all([api().catalog('artist'), api().catalog('recording')])
    const entities = [...artists, ...tracks].filter((e) => !e.merged_into)
    if (!entities.length) {
      rows = []
      kpiArea.replaceChildren(h('p', { class: 'empty', id: 'no-figures' }, connected
        ? 'Nothing ingested yet: back-fill a source for the chosen range (Sources, above), or wait for its daily run.'
        : 'No figures yet: connect a source (below), then back-fill a range.'))
      return
    }
    const answers = await pooled(entities, 4, (e) => api().kpis(e.entity_id, state.from, state.to))
    rows = entities.map((entity, i) => ({ entity, kpis: answers[i] }))
    const hasFigures = (r) => KPI_ORDER.some((k) => r.kpis.kpis[k] && r.kpis.kpis[k].value !== null)
    if (!rows.some((r) => r.entity.entity_id === state.entity)) {
      state.entity = (rows.find(hasFigures) || rows[0]).entity.entity_id
    }
    const none = h('p', { class: 'empty', id: 'no-figures' },
      'No figures in this range: choose a longer range, or back-fill a source for it.')
    kpiArea.replaceChildren(...(rows.some(hasFigures) ? [] : [none]),
      kpiTable(rows, state.entity, choose))
  }

  async function load () {
    try {
      const [connected, freshness] = await Promise.all([api().sources(), api().freshness()])
      sources.render(connected, freshness)
      await loadKpis(connected.some((s) => s.state !== 'disconnected'))
      showDetail()
      const artists = rows.filter((r) => r.entity.kind === 'artist').map((r) => r.entity)
      await Promise.all([alerts.render(), playlists.render(state.from, state.to), saved.render(),
        audience.render(state.from, state.to), bench.render(state.from, state.to, state.entity, artists)])
      remember()
    } catch (err) {
      notice.say(`The dashboard could not be loaded: ${err.message}`, 'alert')
    } finally {
      state.loads += 1
      document.body.dataset.loads = String(state.loads)
      document.body.dataset.ready = 'true'
    }
  }

  root.replaceChildren(
    h('header', { class: 'analytics-header' },
      h('a', { class: 'brand', href: '/' }, 'Max Booster Studio'),
      h('nav', { 'aria-label': 'Pages' }, h('a', { href: '/social' }, 'Social calendar'),
        h('a', { href: '/account' }, 'Your account'))),
    h('main', { class: 'analytics-main' },
      h('h1', {}, 'Analytics'),
      h('p', { class: 'hint' }, 'Days are UTC days, as the platforms report them.'),
      h('div', { class: 'toolbar' },
        accountChooser(me, async (account) => {
          state.account = account
          state.entity = ''
          await load()
        }),
        rangePicker(notice.say, () => load())),
      notice.element,
      alerts.element,
      h('section', { class: 'panel', 'aria-labelledby': 'kpi-title' },
        h('h2', { id: 'kpi-title' }, 'Artists and tracks'), kpiArea),
      detail,
      audience.element,
      bench.element,
      playlists.element,
      saved.element,
      sources.element))
  await load()
}

main().catch((err) => {
  document.getElementById('app').replaceChildren(h('pre', { class: 'fatal' }, `The page failed to start: ${err.message}`))
  throw err
})
