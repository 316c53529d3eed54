// Bulk scheduling from the page: a CSV file of posts (the columns POST /api/social/bulk reads,
// docs/social.md), sent in one of its two modes with the browser's time zone for times
// written without one, and what the server did: how many rows became posts, and each
// problem by row (as a spreadsheet numbers it) and column, errors before warnings.
import { h } from '../dom.js'
import { ApiError } from '../api.js'

const MODES = [
  ['valid_rows', 'Schedule the valid rows'],
  ['all_or_nothing', 'Schedule all rows or none']
]

/** A random Idempotency-Key (32 hex digits; crypto.randomUUID needs a secure page). */
function newKey () {
  return [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => b.toString(16).padStart(2, '0')).join('')
}

function labelled (id, text, control) {
  control.id = id
  return h('label', { class: 'field', for: id }, h('span', {}, text), control)
}

/** The sentence that sums up one upload's answer. */
export function bulkSummary (result) {
  const rows = `${result.total_rows} row${result.total_rows === 1 ? '' : 's'}`
  if (result.scheduled === 0 && result.mode === 'all_or_nothing' && result.errors.length) {
    return `Nothing was scheduled: ${result.errors.length} problem(s) in ${rows}. ` +
      'Fix them and send the file again.'
  }
  const rest = result.errors.length
    ? `; ${result.errors.length} problem(s) kept rows out`
    : ''
  return `${result.scheduled} of ${rows} scheduled${rest}.`
}

function problemRows (result) {
  const tagged = [
    ...result.errors.map((p) => ({ ...p, kind: 'error' })),
    ...result.warnings.map((p) => ({ ...p, kind: 'warning' }))
  ]
  return tagged.map((p) => h('tr', { class: p.kind, dataset: { row: String(p.row) } },
    h('td', { class: 'row' }, String(p.row)),
    h('td', { class: 'column' }, p.column),
    h('td', { class: 'kind' }, p.kind),
    h('td', { class: 'code' }, p.code),
    h('td', { class: 'message' }, p.message)))
}

/** The bulk section: {element}; `scheduled()` runs after an upload made posts. */
export function bulkPanel ({ api, say, scheduled }) {
  const file = h('input', { type: 'file', accept: '.csv,text/csv,text/plain', required: true })
  const mode = h('select', {}, ...MODES.map(([value, text]) => h('option', { value }, text)))
  const send = h('button', { type: 'submit' }, 'Upload and schedule')
  const outcome = h('div', { class: 'bulk-outcome', id: 'bulk-outcome' })
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
  // one Idempotency-Key per upload: kept while no answer came back (the network failed,
  // the server may have scheduled the file), so sending again gets the first answer
  // instead of scheduling twice or reporting the rows as duplicates; a new file or mode,
  // or any answer, starts a new one
  let key = null
  file.addEventListener('change', () => { key = null })
  mode.addEventListener('change', () => { key = null })

  function show (result) {
    const problems = problemRows(result)
    outcome.replaceChildren(
      h('p', { class: 'bulk-summary', id: 'bulk-summary' }, bulkSummary(result)),
      problems.length
        ? h('table', { class: 'data', id: 'bulk-problems' },
          h('caption', {}, 'Problems in the file'),
          h('thead', {}, h('tr', {}, ...['Row', 'Column', 'Kind', 'Code', 'What to do']
            .map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, problems))
        : '')
  }

  async function upload (event) {
    event.preventDefault()
    const chosen = file.files[0]
    if (!chosen) return
    send.disabled = true
    outcome.replaceChildren(h('p', { class: 'hint' }, `Sending ${chosen.name}…`))
    try {
      // the file's own type varies by system (Windows says application/vnd.ms-excel)
      const body = new Blob([await chosen.arrayBuffer()], { type: 'text/csv' })
      key = key || newKey()
      const result = await api().bulk(body, mode.value, zone, key)
      key = null
      show(result)
      say(bulkSummary(result), result.errors.length ? 'alert' : 'status')
      if (result.scheduled) scheduled()
    } catch (err) {
      outcome.replaceChildren()
      if (err instanceof ApiError && err.status !== 409) key = null // answered: nothing kept
      const lost = key ? ' (no answer came back: send the file again to see what was scheduled)' : ''
      say(`The file was not scheduled: ${err.message}${lost}`, 'alert')
    } finally {
      send.disabled = false
    }
  }

  const element = h('section', { class: 'bulk', 'aria-labelledby': 'bulk-title' },
    h('h2', { id: 'bulk-title' }, 'Bulk scheduling'),
    h('p', { class: 'hint' }, 'A CSV file with a time (datetime, or date + time), a channel and ' +
      `a text on each row. Times without a zone are read in ${zone}.`),
    h('form', { class: 'toolbar bulk-form', onsubmit: upload },
      labelled('bulk-file', 'CSV file', file),
      labelled('bulk-mode', 'Mode', mode),
      send),
    outcome)
  return { element }
}
