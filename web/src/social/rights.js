// Per-channel rights from the page: for one channel of the account, each of the account's
// people (the person alone on their own account; an organisation's members) with the access
// the channel names for them (publish, approval, view) or none (their role's). Saving
// replaces the channel's rights (PUT /api/social/channels/{id}/rights); only the account's
// owners and admins may, and the server's refusal is shown as it is.
import { h } from '../dom.js'
import { call } from '../account/client.js'
import { channelName } from './filters.js'

export const ACCESSES = [
  ['', "Their role's"],
  ['publish', 'Publish'],
  ['approval', 'Needs approval'],
  ['view', 'View only']
]

/** The people of an account: [{id, name}] ('' = the signed-in person's own account). */
async function peopleOf (me, account) {
  if (!account) return [{ id: me.person.id, name: me.person.name || me.person.email || me.person.id }]
  const members = await call(`/accounts/${encodeURIComponent(account)}/members`)
  return members.map((m) => ({ id: m.id, name: m.email ? `${m.name} <${m.email}>` : m.name }))
}

/** The rights section: {element, load()}; `account()` is the account chosen on the page. */
export function rightsPanel ({ api, me, account, say, channels }) {
  const channel = h('select', { id: 'rights-channel', onchange: () => draw() })
  const body = h('tbody', {})
  const save = h('button', { type: 'submit' }, 'Save rights')
  const table = h('table', { class: 'data', id: 'rights-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Person'), h('th', { scope: 'col' }, 'Access'))),
    body)
  const empty = h('p', { class: 'empty', id: 'rights-empty', hidden: true },
    'Connect a channel to give people rights on it.')
  const form = h('form', { class: 'rights-form', onsubmit: store },
    h('label', { class: 'field', for: 'rights-channel' }, h('span', {}, 'Channel'), channel),
    table, save)

  async function draw () {
    body.replaceChildren()
    if (!channel.value) return
    try {
      const [people, named] = await Promise.all([
        peopleOf(me, account()), api().rights(channel.value)])
      const access = new Map(named.rights.map((r) => [r.person, r.access]))
      for (const person of named.rights) {
        // someone named who left the organisation still holds a row until it is cleared
        if (!people.some((p) => p.id === person.person)) people.push({ id: person.person, name: person.person })
      }
      body.replaceChildren(...people.map((person) => {
        const select = h('select', { 'aria-label': `Access of ${person.name}`, dataset: { person: person.id } },
          ...ACCESSES.map(([value, text]) => h('option', { value, selected: value === (access.get(person.id) || '') }, text)))
        return h('tr', { dataset: { person: person.id } }, h('td', { class: 'person' }, person.name), h('td', {}, select))
      }))
    } catch (err) {
      say(`The rights could not be loaded: ${err.message}`, 'alert')
    }
  }

  async function store (event) {
    event.preventDefault()
    const rights = [...body.querySelectorAll('select')]
      .filter((select) => select.value)
      .map((select) => ({ person: select.dataset.person, access: select.value }))
    save.disabled = true
    try {
      await api().setRights(channel.value, rights)
      say(`Rights saved for ${channel.selectedOptions[0].textContent}.`)
    } catch (err) {
      say(`Rights not saved: ${err.message}`, 'alert')
    } finally {
      save.disabled = false
    }
    await draw()
  }

  function load () {
    const list = channels()
    const chosen = channel.value
    channel.replaceChildren(...list.map((c) => h('option', { value: c.channel_id, selected: c.channel_id === chosen }, channelName(c))))
    form.hidden = list.length === 0
    empty.hidden = list.length !== 0
    return draw()
  }

  const element = h('section', { class: 'rights', 'aria-labelledby': 'rights-title' },
    h('h2', { id: 'rights-title' }, 'Channel rights'),
    h('p', { class: 'hint' }, 'Who may publish on a channel, who needs approval, who may only look. ' +
      "A person left at their role's access publishes if their role lets them."),
    form, empty)
  return { element, load }
}
