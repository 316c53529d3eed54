// The social plug-in's routes, called as the signed-in person for one account: their own
// (account '') or an organisation's (?account=ID). Writes carry the session's CSRF token.
import { call } from '../account/client.js'

const BASE = '/api/social'

/** `path` with `params` (empty values left out) and the account named, as a URL. */
function url (path, account, params = {}) {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value)
  }
  if (account) query.set('account', account)
  const text = query.toString()
  return `${BASE}${path}${text ? `?${text}` : ''}`
}

const id = (value) => encodeURIComponent(value)

/** The routes of one account; `account` '' is the signed-in person's own. */
export function socialApi (account = '') {
  return {
    account,
    /** Posts due in [from, to) (Date), with filters {channel, campaign, state}. */
    calendar: (from, to, filters = {}) => call(url('/calendar', account, {
      from: from.toISOString(), to: to.toISOString(), ...filters
    })),
    channels: () => call(url('/channels', account)),
    post: (postId) => call(url(`/posts/${id(postId)}`, account)),
    /** Move a post to `when` (a Date), keeping its own time zone. */
    reschedule: (postId, when, timeZone) => call(url(`/posts/${id(postId)}`, account), {
      method: 'PATCH', body: { publish_at: when.toISOString(), time_zone: timeZone || null }
    }),
    retry: (postId, channelId) => call(
      url(`/posts/${id(postId)}/targets/${id(channelId)}/retry`, account),
      { method: 'POST', body: {} }),
    nextSlot: (channelId) => call(url(`/channels/${id(channelId)}/next-slot`, account))
  }
}
