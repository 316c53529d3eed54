// Entry point of /developer: the signed-in person's (or, with ?account=, an organisation's)
// API keys and their usage per UTC day from GET /api/v1/usage: requests, errors, rate-limit
// refusals and latency p50/p99, charted with Chart.js. ?days= (1 to 90) picks the range.
import { h } from '../dom.js'
import { call, me as whoAmI } from '../account/client.js'
import { toSignIn } from '../account/layout.js'
import { daysBetween, keyCharts, ms } from './charts.js'

const params = new URLSearchParams(window.location.search)
const RANGES = [7, 30, 90]
const state = {
  account: params.get('account') || '',
  days: RANGES.includes(Number(params.get('days'))) ? Number(params.get('days')) : 30
}

function usageUrl () {
  const query = new URLSearchParams({ days: String(state.days) })
  if (state.account) query.set('account', state.account)
  return `/api/v1/usage?${query}`
}

function keyCard (key, days) {
  const t = key.total
  return h('section', { class: 'key', dataset: { key: key.id }, 'aria-label': `Key ${key.name}` },
    h('h2', {}, key.name, h('code', { class: 'badge' }, `${key.prefix}…`),
      key.test ? h('span', { class: 'badge' }, 'test mode') : null,
      key.revoked ? h('span', { class: 'badge' }, 'revoked') : null),
    h('p', { class: 'figures' },
      h('span', {}, 'Requests ', h('b', { class: 'requests' }, t.requests)),
      h('span', {}, 'Errors ', h('b', { class: 'errors' }, t.errors)),
      h('span', {}, 'Rate-limited ', h('b', {}, t.rejected)),
      h('span', {}, 'p50 ', h('b', { class: 'p50' }, ms(t.p50_ms))),
      h('span', {}, 'p99 ', h('b', { class: 'p99' }, ms(t.p99_ms)))),
    keyCharts(key, days))
}

async function render (root) {
  let report
  try {
    report = await call(usageUrl())
  } catch (err) {
    root.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Could not load usage: ${err.message}`))
    return
  }
  const days = daysBetween(report.since, report.until)
  const range = h('select', {
    id: 'range',
    onchange: (event) => {
      state.days = Number(event.target.value)
      const query = new URLSearchParams({ days: String(state.days) })
      if (state.account) query.set('account', state.account)
      window.history.replaceState(null, '', `${window.location.pathname}?${query}`)
      render(root)
    }
  }, ...RANGES.map((n) => h('option', { value: String(n), selected: n === state.days }, `last ${n} days`)))
  root.replaceChildren(
    h('h1', {}, 'API usage'),
    h('p', { class: 'hint' }, `Your API keys, ${report.since} to ${report.until} (UTC). ` +
      'Figures reach this page within seconds of the requests.'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Range', range)),
    report.keys.length
      ? h('div', { id: 'keys' }, ...report.keys.map((key) => keyCard(key, days)))
      : h('p', { class: 'empty' }, 'No API keys yet: make one on your account page.'))
  document.body.dataset.ready = 'true'
}

async function start () {
  const app = document.getElementById('app')
  const who = await whoAmI()
  if (!who) return toSignIn()
  const main = h('main', {})
  app.replaceChildren(
    h('header', { class: 'bar' }, h('a', { class: 'brand', href: '/' }, 'Max Booster Studio'),
      h('nav', {}, h('a', { href: '/account' }, 'Account'), ' ', h('a', { href: '/api/docs' }, 'API reference'))),
    main)
  await render(main)
}

start()
