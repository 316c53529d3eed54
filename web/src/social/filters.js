// The toolbar's choices: whose calendar (the person's or an organisation's), and filters by
// channel, campaign and approval state. `onChange()` runs after any of them changes.
import { h } from '../dom.js'

export const STATES = [
  ['', 'Any state'], ['draft', 'Draft'], ['pending_approval', 'Pending approval'],
  ['approved', 'Approved'], ['scheduled', 'Scheduled'], ['publishing', 'Publishing'],
  ['published', 'Published'], ['failed', 'Failed'], ['expired', 'Expired']
]

function labelled (id, text, control) {
  control.id = id
  return h('label', { class: 'field', for: id }, h('span', {}, text), control)
}

function options (select, list, chosen = '') {
  select.replaceChildren(...list.map(([value, text]) =>
    h('option', { value, selected: value === chosen }, text)))
}

/** The account chooser ('' = the person) over `me`'s organisations. */
export function accountChooser (me, chosen, onChange) {
  const select = h('select', { name: 'account', onchange: () => onChange(select.value) })
  options(select, [['', `Mine (${me.person.name || me.person.email || 'me'})`],
    ...me.organisations.map((org) => [org.id, org.name])], chosen)
  return labelled('social-account', 'Calendar of', select)
}

/** The filters: {element, values(), setChannels(channels), setCampaigns(names)}. */
export function filterBar (initial, onChange) {
  const channel = h('select', { name: 'channel', onchange: onChange })
  const state = h('select', { name: 'state', onchange: onChange })
  const campaigns = h('datalist', { id: 'social-campaigns' })
  let typing = 0
  const campaign = h('input', {
    name: 'campaign', type: 'search', list: 'social-campaigns', value: initial.campaign || '',
    placeholder: 'Any campaign',
    oninput: () => { clearTimeout(typing); typing = setTimeout(onChange, 300) },
    onchange: () => { clearTimeout(typing); onChange() }
  })
  options(channel, [['', 'All channels']], initial.channel)
  options(state, STATES, initial.state || '')
  const element = h('div', { class: 'filters', role: 'group', 'aria-label': 'Filters' },
    labelled('social-channel', 'Channel', channel),
    labelled('social-campaign', 'Campaign', campaign), campaigns,
    labelled('social-state', 'State', state))
  return {
    element,
    values: () => ({ channel: channel.value, campaign: campaign.value.trim(), state: state.value }),
    setChannels (list) {
      const keep = channel.value || initial.channel || ''
      options(channel, [['', 'All channels'],
        ...list.map((c) => [c.channel_id, channelName(c)])], keep)
    },
    setCampaigns (names) {
      campaigns.replaceChildren(...[...names].sort().map((name) => h('option', { value: name })))
    }
  }
}

/** "Ada Music @ada (x)". */
export function channelName (channel) {
  const who = [channel.name, channel.handle].filter(Boolean).join(' ')
  return `${who || channel.remote_id} (${channel.network})`
}
