// Listening streams from the page: the account's queries (GET /listening/queries) and a
// form to add one (POST /listening/queries) on an X or Bluesky channel: a keyword, a
// hashtag, the channel's mentions or its direct messages; optionally the spike threshold
// and an address to mail spikes to (one of the account's people: the server refuses any
// other with 422, shown as said). "Stop" deletes a stream with its items.
import { h } from '../dom.js'

const NETWORKS = new Set(['x', 'bluesky'])
const KINDS = [['keyword', 'Keyword'], ['hashtag', 'Hashtag'], ['mention', 'Mentions'],
  ['dm', 'Direct messages']]
const NEEDS_TERM = new Set(['keyword', 'hashtag'])

function field (label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input)
}

/** The streams section; `channels()` gives the account's channels, `changed()` is called
 * after a stream was added or stopped (it should call `load()`, which reads them again). */
export function streamsPanel ({ api, say, channels, changed = () => {} }) {
  const channel = h('select', { name: 'channel_id', required: true })
  const kind = h('select', { name: 'kind' },
    ...KINDS.map(([value, text]) => h('option', { value }, text)))
  const term = h('input', { name: 'term', maxlength: 200, placeholder: 'e.g. new single' })
  const minCount = h('input', { name: 'min_count', type: 'number', min: 1, max: 100000, value: 10 })
  const email = h('input', { name: 'notify_email', type: 'email', maxlength: 320, placeholder: 'optional' })
  const add = h('button', { type: 'submit' }, 'Add stream')
  const termField = field('Term', term)
  const form = h('form', { class: 'stream-form', id: 'stream-form', 'aria-label': 'New stream' },
    field('Channel', channel), field('Stream', kind), termField,
    field('Spike at (posts an hour)', minCount), field('Mail spikes to', email), add)
  const list = h('ul', { class: 'streams', id: 'listening-streams' })
  const element = h('div', { class: 'listening-streams' }, h('h3', {}, 'Streams'), list, form)

  function showTerm () {
    termField.hidden = !NEEDS_TERM.has(kind.value)
    term.required = !termField.hidden
  }
  kind.addEventListener('change', showTerm)
  showTerm()

  function fillChannels () {
    const usable = (channels() || []).filter((c) => NETWORKS.has(c.network))
    const chosen = channel.value
    channel.replaceChildren(...usable.map((c) =>
      h('option', { value: c.channel_id }, `${c.name || c.handle} (${c.network})`)))
    if (usable.some((c) => c.channel_id === chosen)) channel.value = chosen
    add.disabled = usable.length === 0
  }

  async function stop (query) {
    try {
      await api().deleteQuery(query.query_id)
      say('Stream stopped.')
    } catch (err) {
      say(`Not stopped: ${err.message}`, 'alert')
    }
    changed() // the inbox reads the streams again, with its items
  }

  function line (query) {
    const what = NEEDS_TERM.has(query.kind) ? `${query.kind} ${query.term}` : query.kind
    return h('li', { 'data-query': query.query_id },
      `${what} on ${query.network} (spike at ${query.min_count}` +
      `${query.notify_email ? `, mailed to ${query.notify_email}` : ''}) `,
      h('button', { type: 'button', class: 'stop', onclick: () => stop(query) }, 'Stop'))
  }

  async function load () {
    fillChannels()
    try {
      const found = await api().queries()
      list.replaceChildren(...(found.length ? found.map(line)
        : [h('li', { class: 'hint' }, 'No streams yet.')]))
    } catch (err) {
      say(`The streams could not be loaded: ${err.message}`, 'alert')
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    add.disabled = true
    const body = { channel_id: channel.value, kind: kind.value, min_count: Number(minCount.value) }
    if (NEEDS_TERM.has(kind.value)) body.term = term.value
    if (email.value.trim()) body.notify_email = email.value.trim()
    try {
      await api().addQuery(body)
      term.value = ''
      say('Stream added; it is read every few minutes.')
      changed()
    } catch (err) {
      say(`Stream not added: ${err.message}`, 'alert')
    } finally {
      add.disabled = false
    }
  })

  return { element, load }
}
