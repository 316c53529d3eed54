// The connected sources: state and freshness (fetched → queryable) per source, a back-fill
// of the page's day range, and a form to connect another one.
import { h } from '../dom.js'
import { formatLag, formatMoment } from './format.js'

const LABELS = {
  client_id: ['Client id', 'text'],
  client_secret: ['Client secret', 'password'],
  api_key: ['API key', 'password'],
  refresh_token: ['Refresh token', 'password']
}
const STATES = { active: 'Active', needs_reconnect: 'Needs reconnecting', failing: 'Failing', disconnected: 'Disconnected' }

function field (id, text, control) {
  control.id = id
  return h('label', { class: 'field', for: id }, h('span', {}, text), control)
}

/**
 * The panel: {element, render(sources, freshness)}. `api()` gives the account's routes,
 * `range()` the page's {from, to}, `say(text, kind)` tells news, `changed()` reloads
 * the page's figures after a connection or a finished back-fill.
 */
export function sourcesPanel ({ api, platforms, range, say, changed }) {
  const byName = new Map(platforms.map((p) => [p.source, p]))
  const list = h('div', { class: 'source-list' })
  const form = connectForm({ api, platforms, say, changed })
  const element = h('section', { class: 'panel sources', 'aria-labelledby': 'sources-title' },
    h('h2', { id: 'sources-title' }, 'Sources'), list, form)

  async function follow (run, title) {
    const deadline = Date.now() + 10 * 60 * 1000
    while (Date.now() < deadline) {
      if (run.job_state === 'done' || run.job_state === 'dead') break
      say(`Back-filling ${title}: ${Math.round(run.progress * 100)} %`)
      await new Promise((resolve) => setTimeout(resolve, 500))
      run = await api().run(run.run_id)
    }
    await changed() // the figures first, then the news (a reader finds them in place)
    if (run.job_state === 'done') {
      say(`Back-fill of ${title} done: ${run.points} points through ${run.complete_through}.`)
    } else {
      say(`Back-fill of ${title} stopped: ${run.error || run.job_note || run.job_state}`, 'alert')
    }
  }

  async function backfill (source, title, button) {
    const { from, to } = range()
    button.disabled = true
    try {
      const run = await api().backfill(source.source_id, from, to)
      await follow(run, title)
    } catch (err) {
      say(`Not back-filled: ${err.message}`, 'alert')
    } finally {
      button.disabled = false
    }
  }

  function action (source, platform, title) {
    if (source.state !== 'active') return h('span', { class: 'hint' }, 'Connect it again first')
    if (!platform || !platform.history) return h('span', { class: 'hint' }, 'Read daily (current counts only)')
    const button = h('button', {
      type: 'button', 'aria-label': `Back-fill ${title} for the chosen range`,
      onclick: () => backfill(source, title, button)
    }, 'Back-fill range')
    return button
  }

  function render (sources, freshness) {
    const fresh = new Map(freshness.map((f) => [f.source, f]))
    const shown = sources.filter((s) => s.state !== 'disconnected')
    if (!shown.length) {
      list.replaceChildren(h('p', { class: 'empty', id: 'no-sources' },
        'No source connected yet. Connect one below: choose the platform, your id there ' +
        'and the credentials it gave you; then back-fill a range to see figures.'))
      return
    }
    list.replaceChildren(h('table', { class: 'data' },
      h('caption', {}, 'Connected sources and how fresh their data is'),
      h('thead', {}, h('tr', {}, ...['Platform', 'Entity', 'State', 'Fetched', 'Queryable',
        'Lag', 'Action'].map((text) => h('th', { scope: 'col' }, text)))),
      h('tbody', {}, ...shown.map((source) => {
        const platform = byName.get(source.source)
        const title = platform ? platform.title : source.source
        const f = fresh.get(source.source)
        return h('tr', { dataset: { sourceId: source.source_id, source: source.source, state: source.state } },
          h('th', { scope: 'row' }, title),
          h('td', {}, `${source.entity_name || source.entity_id} (${source.entity_kind})`),
          h('td', { class: `state state-${source.state}` }, STATES[source.state] || source.state,
            source.last_error ? h('span', { class: 'reason' }, ` · ${source.last_error}`) : null),
          h('td', {}, f ? formatMoment(f.fetched_at) : 'never'),
          h('td', {}, f ? formatMoment(f.queryable_at) : 'never'),
          h('td', {}, f ? formatLag(f.lag_s) : '–'),
          h('td', {}, action(source, platform, title)))
      }))))
  }

  return { element, render }
}

/** The form connecting a source: the platform, its entity, and the credentials it asks. */
function connectForm ({ api, platforms, say, changed }) {
  const platform = h('select', { name: 'source' },
    ...platforms.map((p) => h('option', { value: p.source }, p.title)))
  const kind = h('select', { name: 'entity_kind' })
  const entity = h('input', { name: 'entity_id', type: 'text', required: true, autocomplete: 'off' })
  const name = h('input', { name: 'entity_name', type: 'text', autocomplete: 'off' })
  const secrets = Object.fromEntries(Object.entries(LABELS).map(([key, [, type]]) =>
    [key, h('input', { name: key, type, autocomplete: 'off' })]))
  const secretFields = Object.fromEntries(Object.entries(LABELS).map(([key, [text]]) =>
    [key, field(`connect-${key}`, text, secrets[key])]))
  const submit = h('button', { type: 'submit' }, 'Connect')

  function chosen () {
    const p = platforms.find((x) => x.source === platform.value)
    kind.replaceChildren(...p.entity_kinds.map((k) => h('option', { value: k }, k)))
    for (const [key, wrapper] of Object.entries(secretFields)) {
      wrapper.hidden = !p.credentials.includes(key)
    }
  }
  platform.addEventListener('change', chosen)

  const form = h('form', {
    class: 'connect',
    'aria-labelledby': 'connect-title',
    onsubmit: async (event) => {
      event.preventDefault()
      const p = platforms.find((x) => x.source === platform.value)
      const body = {
        source: p.source, entity_kind: kind.value, entity_id: entity.value.trim(),
        entity_name: name.value.trim()
      }
      for (const key of p.credentials) body[key] = secrets[key].value
      submit.disabled = true
      try {
        await api().connect(body)
        say(`${p.title} connected.${p.history ? ' Back-fill a range to see its history.' : ''}`)
        for (const input of [entity, name, ...Object.values(secrets)]) input.value = ''
        await changed()
      } catch (err) {
        say(`Not connected: ${err.message}`, 'alert')
      } finally {
        submit.disabled = false
      }
    }
  },
  h('h3', { id: 'connect-title' }, 'Connect a source'),
  h('p', { class: 'hint' }, 'Owners connect sources and start back-fills; credentials are kept sealed and never shown again.'),
  h('div', { class: 'fields' },
    field('connect-source', 'Platform', platform),
    field('connect-kind', 'Entity kind', kind),
    field('connect-entity', 'Your id on the platform', entity),
    field('connect-name', 'Name in the catalogue', name),
    ...Object.values(secretFields), submit))
  chosen()
  return form
}
