// Entry point of /social: the social calendar of the signed-in person or one of their
// organisations. The URL keeps the choices (?account=&view=&date=&channel=&campaign=&state=)
// so a reload or a shared link shows the same calendar.
import { h } from '../dom.js'
import { me as whoAmI } from '../account/client.js'
import { toSignIn } from '../account/layout.js'
import { socialApi } from './api.js'
import { accountChooser, filterBar } from './filters.js'
import { postDialog } from './details.js'
import { nextSlotControl } from './next-slot.js'
import { noticeArea } from './notice.js'
import { calendarView } from './view.js'
import { composer } from './composer.js'
import { resultsPanel } from './results.js'
import { inboxPanel } from './inbox.js'
import { bulkPanel } from './bulk.js'
import { rightsPanel } from './rights.js'
import { formatWhen, zoneLine } from './zone.js'

const params = new URLSearchParams(window.location.search)
const state = {
  account: params.get('account') || '',
  view: params.get('view') === 'week' ? 'week' : 'month',
  date: /^\d{4}-\d{2}-\d{2}$/.test(params.get('date') || '') ? params.get('date') : '',
  channels: [],
  loads: 0
}

/** The page's choices into its URL (no new history entry). */
function remember (filters) {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries({ account: state.account, view: state.view, date: state.date, ...filters })) {
    if (value) query.set(key, value)
  }
  const text = query.toString()
  window.history.replaceState(null, '', `${window.location.pathname}${text ? `?${text}` : ''}`)
}

const isoDay = (date) => `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`

async function main () {
  const root = document.getElementById('app')
  const me = await whoAmI()
  if (!me) {
    toSignIn()
    return
  }
  const api = () => socialApi(state.account)
  const notice = noticeArea()
  const filters = filterBar({ channel: params.get('channel') || '', campaign: params.get('campaign') || '', state: params.get('state') || '' },
    () => { remember(filters.values()); calendar.refetchEvents() })
  const slotHolder = h('div', { class: 'slot-holder' })
  const campaigns = new Set()

  async function load (from, to) {
    try {
      const entries = await api().calendar(from, to, filters.values())
      for (const entry of entries) if (entry.campaign) campaigns.add(entry.campaign)
      filters.setCampaigns(campaigns)
      return entries
    } catch (err) {
      notice.say(`The calendar could not be loaded: ${err.message}`, 'alert')
      throw err
    } finally {
      state.loads += 1
      document.body.dataset.loads = String(state.loads)
      document.body.dataset.ready = 'true'
    }
  }

  async function move (entry, date) {
    try {
      await api().reschedule(entry.post_id, date, entry.time_zone)
      notice.say(`Moved to ${formatWhen(date)}.`)
      calendar.refetchEvents()
      return true
    } catch (err) {
      notice.say(`Not moved: ${err.message}`, 'alert')
      return false
    }
  }

  const dialog = postDialog({
    api,
    channels: () => new Map(state.channels.map((c) => [c.channel_id, c])),
    move: (post, date) => move(post, date),
    changed: () => calendar.refetchEvents(),
    say: notice.say,
    edit: (post) => compose.openEdit(post)
  })

  const compose = composer({
    api,
    channels: () => state.channels,
    say: notice.say,
    created: () => calendar.refetchEvents()
  })
  const results = resultsPanel({ api, channels: () => state.channels })
  const inbox = inboxPanel({ api, say: notice.say, channels: () => state.channels })
  const bulk = bulkPanel({ api, say: notice.say, scheduled: () => calendar.refetchEvents() })
  const rights = rightsPanel({ api, me, account: () => state.account, say: notice.say, channels: () => state.channels })

  async function loadChannels () {
    try {
      state.channels = await api().channels()
    } catch (err) {
      state.channels = []
      notice.say(`The channels could not be loaded: ${err.message}`, 'alert')
    }
    filters.setChannels(state.channels)
    slotHolder.replaceChildren(nextSlotControl({
      api,
      channels: state.channels,
      chosenChannel: () => filters.values().channel,
      show: (when) => calendar.gotoDate(when)
    }))
    results.load()
    inbox.load()
    rights.load()
  }

  const holder = h('div', { class: 'calendar', id: 'social-calendar' })
  root.replaceChildren(
    h('header', { class: 'social-header' },
      h('a', { class: 'brand', href: '/' }, 'Max Booster Studio'),
      h('nav', { 'aria-label': 'Pages' }, h('a', { href: '/account' }, 'Your account'))),
    h('main', { class: 'social-main' },
      h('h1', {}, 'Social calendar'),
      h('p', { class: 'zone', id: 'social-zone' }, zoneLine()),
      h('div', { class: 'toolbar' },
        accountChooser(me, state.account, async (account) => {
          state.account = account
          remember(filters.values())
          await loadChannels()
          calendar.refetchEvents()
        }),
        filters.element, slotHolder,
        h('button', { type: 'button', class: 'new-post', onclick: () => compose.open() }, 'New post')),
      notice.element, holder, results.element, inbox.element, bulk.element, rights.element),
    dialog.element)
  const calendar = calendarView(holder, {
    view: state.view,
    date: state.date,
    load,
    move,
    open: (postId) => dialog.open(postId),
    changed: ({ view, date }) => {
      state.view = view
      state.date = isoDay(date)
      remember(filters.values())
    }
  })
  await loadChannels()
}

main().catch((err) => {
  document.getElementById('app').replaceChildren(h('pre', { class: 'fatal' }, `The page failed to start: ${err.message}`))
  throw err
})
