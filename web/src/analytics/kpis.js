// Cross-platform KPIs: a table of the catalogue's artists and tracks with each KPI over the
// chosen range, and the chosen entity's cards with growth over 7, 28 and 90 days.
import { h } from '../dom.js'
import { formatChange, formatNumber } from './format.js'

export const KPI_ORDER = ['followers', 'listeners', 'streams', 'views']
export const KPI_TITLES = {
  followers: 'Followers', listeners: 'Monthly listeners', streams: 'Streams', views: 'Views'
}
const KINDS = { artist: 'Artist', recording: 'Track' }

/** The table of entities (`rows`: [{entity, kpis}]); `choose(entityId)` shows one. */
export function kpiTable (rows, chosen, choose) {
  return h('table', { class: 'data kpi-table', id: 'kpi-table' },
    h('caption', {}, 'KPIs per artist and track over the chosen range, summed across platforms ' +
      '(running totals: the last reading; flows: the sum)'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Kind'),
      ...KPI_ORDER.map((k) => h('th', { scope: 'col', class: 'num' }, KPI_TITLES[k])))),
    h('tbody', {}, ...rows.map(({ entity, kpis }) =>
      h('tr', { dataset: { entity: entity.entity_id }, class: entity.entity_id === chosen ? 'chosen' : '' },
        h('th', { scope: 'row' }, h('button', {
          type: 'button', class: 'link', 'aria-pressed': String(entity.entity_id === chosen),
          onclick: () => choose(entity.entity_id)
        }, entity.name || entity.entity_id)),
        h('td', {}, KINDS[entity.kind] || entity.kind),
        ...KPI_ORDER.map((k) => {
          const kpi = kpis.kpis[k]
          const value = kpi ? kpi.value : null
          return h('td', {
            class: 'num', dataset: { kpi: k, value: value === null ? '' : String(value) }
          }, formatNumber(value))
        })))))
}

/** The chosen entity's KPI cards: value over the range and growth over 7, 28, 90 days. */
export function kpiCards (entity, answer) {
  const cards = KPI_ORDER.filter((k) => answer.kpis[k]).map((k) => {
    const kpi = answer.kpis[k]
    const platforms = Object.keys(kpi.sources).length
    return h('article', {
      class: 'kpi-card', dataset: { kpi: k, value: kpi.value === null ? '' : String(kpi.value) },
      'aria-labelledby': `kpi-${k}-title`
    },
    h('h3', { id: `kpi-${k}-title` }, KPI_TITLES[k] || kpi.title),
    h('p', { class: 'kpi-value' }, formatNumber(kpi.value)),
    h('p', { class: 'hint' }, kpi.value === null
      ? 'No figures in this range'
      : `${kpi.running_total ? `on ${answer.last_day}` : `${answer.first_day} to ${answer.last_day}`}` +
        ` · ${platforms} platform${platforms === 1 ? '' : 's'}`),
    h('dl', { class: 'growth', title: 'Growth to the last day; – where there is no earlier figure to compare with' }, ...['7d', '28d', '90d'].flatMap((window) => {
      const g = kpi.growth[window]
      const change = g ? g.change : null
      return [h('dt', {}, `${window.replace('d', '')} days`),
        h('dd', {
          dataset: { window, change: change === null ? '' : String(change) },
          class: change > 0 ? 'up' : change < 0 ? 'down' : ''
        }, formatChange(change))]
    })))
  })
  return h('div', { class: 'kpi-cards', 'aria-label': `KPIs of ${entity.name || entity.entity_id}`, role: 'group' },
    ...cards)
}
