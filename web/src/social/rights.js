// Per-channel rights from the page: for one channel of the account, each of the account's
// people (the person alone on their own account; an organisation's members) with the access
// the channel names for them (publish, approval, view) or none (their role's). Saving
// replaces the channel's rights (PUT /api/social/channels/{id}/rights); only the account's
// owners and admins may (`my_rights.manage`): anyone else reads their own access only.
// Save stays off until the chosen channel's rights have been read, so a failed or outdated
// load can never be saved over the rights; someone the channel names who left the account
// is listed apart and dropped by the next save.
import { h } from '../dom.js'
import { call } from '../account/client.js'
import { channelName } from './filters.js'

export const ACCESSES = [
  ['', "Their role's"],
  ['publish', 'Publish'],
  ['approval', 'Needs approval'],
  ['view', 'View only']
]

const OWN_ACCESS = {
  publish: 'You may publish on this channel.',
  approval: 'Your posts on this channel need approval before they are scheduled.',
  view: 'You may only view posts on this channel.'
}

/** The people of an account: [{id, name}] ('' = the signed-in person's own account). */
async function peopleOf (me, account) {
  if (!account) return [{ id: me.person.id, name: me.person.name || me.person.email || me.person.id }]
  const members = await call(`/accounts/${encodeURIComponent(account)}/members`)
  return members.map((m) => ({ id: m.id, name: m.email ? `${m.name} <${m.email}>` : m.name }))
}

/** The sentence telling a person who does not manage `chosen` what they may do on it. */
function ownAccess (chosen) {
  const mine = chosen.my_rights
  const source = mine.named ? 'The channel names you.' : 'Your role decides.'
  return `${OWN_ACCESS[mine.access]} ${source} Only the account's owners and admins change a channel's rights.`
}

/** The rights section: {element, load()}; `account()` is the account chosen on the page. */
export function rightsPanel ({ api, me, account, say, channels }) {
  const channel = h('select', { id: 'rights-channel', onchange: () => draw() })
  const body = h('tbody', {})
  const save = h('button', { type: 'submit', disabled: true }, 'Save rights')
  const table = h('table', { class: 'data', id: 'rights-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Person'), h('th', { scope: 'col' }, 'Access'))),
    body)
  const own = h('p', { id: 'rights-own', class: 'hint', hidden: true })
  const empty = h('p', { class: 'empty', id: 'rights-empty', hidden: true },
    'Connect a channel to give people rights on it.')
  const form = h('form', { class: 'rights-form', onsubmit: store },
    h('label', { class: 'field', for: 'rights-channel' }, h('span', {}, 'Channel'), channel),
    own, table, save)
  let drawn = 0 // the number of the latest draw: an older one's answer is dropped

  function chosenChannel () {
    return channels().find((c) => c.channel_id === channel.value)
  }

  function row (person, access, former) {
    const select = h('select', { 'aria-label': `Access of ${person.name}`, dataset: { person: person.id } },
      ...ACCESSES.map(([value, text]) => h('option', { value, selected: value === (access || '') }, text)))
    const name = former
      ? [person.name, h('span', { class: 'hint' }, ' (no longer in the account: the next save drops them)')]
      : [person.name]
    if (former) select.disabled = true
    return h('tr', { class: former ? 'former' : '', dataset: { person: person.id } },
      h('td', { class: 'person' }, ...name), h('td', {}, select))
  }

  async function draw () {
    const number = ++drawn
    save.disabled = true
    body.replaceChildren()
    const chosen = chosenChannel()
    if (!chosen) return
    const manages = !chosen.my_rights || chosen.my_rights.manage
    table.hidden = save.hidden = !manages
    own.hidden = manages
    if (!manages) {
      own.textContent = ownAccess(chosen)
      return
    }
    try {
      const [people, named] = await Promise.all([
        peopleOf(me, account()), api().rights(chosen.channel_id)])
      if (number !== drawn) return // another channel was chosen meanwhile
      const access = new Map(named.rights.map((r) => [r.person, r.access]))
      const members = new Set(people.map((p) => p.id))
      const former = named.rights.filter((r) => !members.has(r.person))
      body.replaceChildren(...people.map((p) => row(p, access.get(p.id), false)),
        ...former.map((r) => row({ id: r.person, name: r.person }, r.access, true)))
      save.disabled = false
    } catch (err) {
      if (number === drawn) say(`The rights could not be loaded: ${err.message}`, 'alert')
    }
  }

  async function store (event) {
    event.preventDefault()
    if (save.disabled) return
    const chosen = channel.value
    const number = drawn // the table saved: another channel chosen meanwhile draws anew
    const rights = [...body.querySelectorAll('tr:not(.former) select')]
      .filter((select) => select.value)
      .map((select) => ({ person: select.dataset.person, access: select.value }))
    save.disabled = true
    try {
      await api().setRights(chosen, rights)
      say(`Rights saved for ${channel.selectedOptions[0].textContent}.`)
    } catch (err) {
      // the choices stay as they are, to be saved again (unless another channel's table
      // is drawn by now: its own load turns Save on)
      say(`Rights not saved: ${err.message}`, 'alert')
      if (number === drawn) save.disabled = false
      return
    }
    if (channel.value === chosen) await draw()
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
