// Listening and inbox: spike alerts of the account's streams (GET /listening/alerts), the
// inbox of mentions and stream posts with language, sentiment, assignee and the time to
// the first response (GET /inbox/items, POST .../respond), and the response-time report
// (GET /inbox/report). Sentiment is scored in en, es, pt, fr, de; other languages say so.
// "Answer" opens the conversation with a reply / direct message form (answer.js); the
// streams read into it are listed and added above (streams.js).
import { h } from '../dom.js'
import { answerPanel } from './answer.js'
import { streamsPanel } from './streams.js'

const when = (seconds) => new Intl.DateTimeFormat(undefined, {
  day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit'
}).format(new Date(seconds * 1000))

/** Seconds as "45 s", "12 min", "3.5 h" (null: "not yet"). */
export function duration (seconds) {
  if (seconds === null || seconds === undefined) return 'not yet'
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`
  return `${(seconds / 3600).toFixed(1)} h`
}

function sentimentText (item) {
  if (item.sentiment === 'unknown') return `not scored (${item.language || 'und'})`
  return `${item.sentiment} (${item.score})`
}

/** The inbox section; `load()` fetches alerts, items and the report again. */
export function inboxPanel ({ api, say, channels = () => [] }) {
  const streams = streamsPanel({ api, say, channels, changed: () => load() })
  const alerts = h('ul', { class: 'alerts', id: 'listening-alerts' })
  const report = h('p', { class: 'hint', id: 'inbox-report' })
  const openOnly = h('input', { type: 'checkbox', id: 'inbox-open', onchange: () => load() })
  const body = h('tbody', {})
  const table = h('table', { class: 'data', id: 'inbox-table' },
    h('thead', {}, h('tr', {}, ...['Posted', 'Network', 'From', 'Text', 'Language', 'Sentiment',
      'Assignee', 'First response', ''].map((t) => h('th', { scope: 'col' }, t)))), body)
  const empty = h('p', { class: 'empty', id: 'inbox-empty', hidden: true }, 'Nothing in the inbox yet.')
  const element = h('section', { class: 'inbox', 'aria-labelledby': 'inbox-title' },
    h('h2', { id: 'inbox-title' }, 'Listening and inbox'),
    streams.element,
    h('h3', {}, 'Spike alerts'), alerts,
    h('div', { class: 'toolbar' }, h('label', { class: 'field', for: 'inbox-open' }, openOnly,
      h('span', {}, 'Only items without a response'))),
    report, table, empty)

  async function answer (item) {
    try {
      await api().respond(item.item_id)
      say('Marked as answered.')
    } catch (err) {
      say(`Not marked: ${err.message}`, 'alert')
    }
    await load()
  }

  const open = new Set() // items whose conversation stays open across reloads

  function panelRow (item) {
    const panel = answerPanel({ api, say, item, changed: () => load() })
    return h('tr', { class: 'answer-row', 'data-panel': item.item_id },
      h('td', { colspan: 9 }, panel.element))
  }

  function toggle (item, tr) {
    const next = tr.nextElementSibling
    if (next && next.dataset.panel === item.item_id) {
      next.remove()
      open.delete(item.item_id)
      return
    }
    open.add(item.item_id)
    tr.after(panelRow(item))
  }

  function rows (item) {
    const tr = row(item)
    return open.has(item.item_id) ? [tr, panelRow(item)] : [tr]
  }

  function row (item) {
    const button = item.first_response_at === null
      ? h('button', { type: 'button', class: 'respond', onclick: () => answer(item) }, 'Mark answered')
      : h('span', {}, `by ${item.responder}`)
    const tr = h('tr', { 'data-item': item.item_id },
      h('td', {}, when(item.posted_at)), h('td', {}, item.network), h('td', {}, item.author),
      h('td', {}, h('a', { href: item.url, rel: 'noopener noreferrer', target: '_blank' }, item.text)),
      h('td', {}, item.language), h('td', { class: `sentiment ${item.sentiment}` }, sentimentText(item)),
      h('td', { class: 'assignee' }, item.assignee || '(nobody)'),
      h('td', { class: 'response' }, duration(item.response_s)), h('td', {}, button,
        h('button', { type: 'button', class: 'answer', onclick: () => toggle(item, tr) }, 'Answer')))
    return tr
  }

  async function load () {
    streams.load()
    try {
      const [found, items, figures] = await Promise.all([
        api().alerts(), api().inbox({ open: openOnly.checked ? 'true' : '' }), api().inboxReport()])
      alerts.replaceChildren(...(found.length
        ? found.map((a) => h('li', { class: 'alert' }, `${when(a.at)}: ${a.last_hour} posts in an hour ` +
          `(about ${a.baseline.toFixed(1)} an hour before) on stream ${a.query_id}`))
        : [h('li', { class: 'hint' }, 'No spikes.')]))
      body.replaceChildren(...items.flatMap(rows))
      empty.hidden = items.length > 0
      report.textContent = `${figures.answered} of ${figures.items} answered; median first response ` +
        `${duration(figures.median_first_response_s)}.`
    } catch (err) {
      say(`The inbox could not be loaded: ${err.message}`, 'alert')
    } finally {
      element.dataset.loaded = String(Number(element.dataset.loaded || 0) + 1)
    }
  }

  return { element, load }
}
