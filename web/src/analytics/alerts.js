// Milestones and alerts: the account's newest milestones (thresholds crossed, unusual growth)
// as the server words them, and the signed-in person's alert-mail preferences.
import { h } from '../dom.js'

const KINDS = [['threshold', 'Thresholds crossed (1k, 10k, 100k… and the team’s own)'],
  ['unusual_growth', 'Unusual growth (a spike or a jump)']]

/** {element, render()}: the panel; `render()` reloads it. */
export function alertsPanel ({ api, say }) {
  const list = h('ul', { class: 'milestones', id: 'milestone-list', 'aria-live': 'polite' })
  const email = h('input', { type: 'checkbox', id: 'alert-email', name: 'email' })
  const kinds = new Map(KINDS.map(([kind]) => [kind, h('input', { type: 'checkbox', name: kind, id: `alert-${kind}` })]))
  const cooldown = h('input', { type: 'number', id: 'alert-cooldown', name: 'cooldown', min: 0, max: 720, step: 1 })
  const form = h('form', {
    class: 'alert-prefs',
    'aria-label': 'Alert mail',
    onsubmit: async (event) => {
      event.preventDefault()
      try {
        await api().savePreferences({
          email: email.checked,
          kinds: KINDS.map(([kind]) => kind).filter((kind) => kinds.get(kind).checked),
          cooldown_s: Math.max(0, Number(cooldown.value) || 0) * 3600
        })
        say('Alert preferences saved.')
      } catch (err) {
        say(`The preferences were not saved: ${err.message}`, 'alert')
      }
    }
  },
  h('label', { for: 'alert-email' }, email, ' Mail me new milestones'),
  ...KINDS.map(([kind, text]) => h('label', { for: `alert-${kind}` }, kinds.get(kind), ` ${text}`)),
  h('label', { class: 'field', for: 'alert-cooldown' }, h('span', {}, 'At most one mail every (hours)'), cooldown),
  h('button', { type: 'submit' }, 'Save preferences'))

  async function render () {
    const [found, prefs] = await Promise.all([api().milestones(20), api().preferences()])
    list.replaceChildren(...found.map((m) => h('li', { class: `milestone kind-${m.kind}`, dataset: { milestone: m.milestone_id } },
      h('time', { datetime: m.day }, m.day), ' ',
      h('span', { class: 'badge' }, m.kind === 'threshold' ? 'Threshold' : 'Unusual growth'), ' ',
      m.text)))
    if (!found.length) {
      list.replaceChildren(h('li', { class: 'empty' },
        'No milestones yet: they appear as figures come in (1k, 10k, 100k… and unusual growth).'))
    }
    email.checked = prefs.email
    for (const [kind, box] of kinds) box.checked = prefs.kinds.includes(kind)
    cooldown.value = String(Math.round(prefs.cooldown_s / 3600))
  }

  const element = h('section', { class: 'panel', 'aria-labelledby': 'alerts-title' },
    h('h2', { id: 'alerts-title' }, 'Milestones and alerts'), list,
    h('details', {}, h('summary', {}, 'Alert mail'), form))
  return { element, render }
}
