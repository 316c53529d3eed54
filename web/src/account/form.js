// Accessible forms: labelled fields, a submit button that waits, errors read out as alerts.
import { h } from '../dom.js'

let nextId = 0

/** A labelled input: {el, input}. `hint` is tied to the input with aria-describedby. */
export function field ({ label, hint, ...attrs }) {
  const id = `f${++nextId}`
  const input = attrs.type === 'select'
    ? h('select', { id, name: attrs.name }, (attrs.options || []).map(([value, text]) => h('option', { value }, text)))
    : h('input', { id, type: 'text', ...attrs })
  const help = hint ? h('span', { class: 'field-hint', id: `${id}-hint` }, hint) : ''
  if (hint) input.setAttribute('aria-describedby', `${id}-hint`)
  return { el: h('div', { class: 'field' }, h('label', { for: id }, label), input, help), input }
}

/**
 * A form of `fields` (field() options, each with a `name`) and a submit button.
 * `onSubmit(values)` runs on submit with the button disabled; what it throws is shown in
 * the form's alert, what it returns (a string) in its status line.
 */
export function form ({ label, fields, submit, onSubmit, extra = [] }) {
  const made = fields.map((options) => field(options))
  const inputs = Object.fromEntries(fields.map((options, i) => [options.name, made[i].input]))
  const error = h('p', { class: 'form-error', role: 'alert' })
  const status = h('p', { class: 'form-status', role: 'status' })
  const button = h('button', { type: 'submit', class: 'primary' }, submit)
  const el = h('form', { 'aria-label': label, novalidate: true }, made.map((f) => f.el), extra, error, status,
    h('div', { class: 'actions' }, button))
  const show = (where, message) => {
    where.textContent = message || ''
    where.hidden = !message
  }
  show(error, '')
  show(status, '')
  el.addEventListener('submit', async (event) => {
    event.preventDefault()
    const missing = made.find((f) => f.input.required && !f.input.value.trim())
    if (missing) {
      show(error, `${missing.el.querySelector('label').textContent} is required`)
      missing.input.focus()
      return
    }
    const values = Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.type === 'checkbox' ? input.checked : input.value]))
    show(error, '')
    show(status, '')
    button.disabled = true
    el.setAttribute('aria-busy', 'true')
    try {
      show(status, await onSubmit(values))
    } catch (err) {
      show(error, err.message)
    } finally {
      button.disabled = false
      el.removeAttribute('aria-busy')
    }
  })
  return { el, inputs, button, showError: (message) => show(error, message), showStatus: (message) => show(status, message) }
}

/** An alert or status paragraph for messages outside a form. */
export function notice (text, kind = 'status') {
  return h('p', { class: kind === 'alert' ? 'form-error' : 'form-status', role: kind }, text)
}

/** "3 May 2025, 14:02" for seconds since 1970. */
export function when (seconds) {
  if (seconds === null || seconds === undefined) return '—'
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}
