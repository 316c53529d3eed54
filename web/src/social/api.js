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
    /** A channel's per-person rights: {rights: [{person, access}]}. */
    rights: (channelId) => call(url(`/channels/${id(channelId)}/rights`, account)),
    /** Replace a channel's rights with `rights` ([{person, access}]; others keep their role's). */
    setRights: (channelId, rights) => call(url(`/channels/${id(channelId)}/rights`, account), {
      method: 'PUT', body: { rights }
    }),
    /**
     * Schedule a CSV file (a Blob of type text/csv) in `mode`, times without a zone in `zone`;
     * `key`: its Idempotency-Key (sent again with the same file, the first answer comes back).
     */
    bulk: (file, mode, zone, key) => call(url('/bulk', account, { mode, zone }), {
      method: 'POST', body: file, headers: key ? { 'Idempotency-Key': key } : {}
    }),
    post: (postId) => call(url(`/posts/${id(postId)}`, account)),
    /** Move a post to `when` (a Date), keeping its own time zone. */
    reschedule: (postId, when, timeZone) => call(url(`/posts/${id(postId)}`, account), {
      method: 'PATCH', body: { publish_at: when.toISOString(), time_zone: timeZone || null }
    }),
    /** Change a post (only the fields sent): the edit supersedes its queued publish. */
    edit: (postId, body) => call(url(`/posts/${id(postId)}`, account), { method: 'PATCH', body }),
    retry: (postId, channelId) => call(
      url(`/posts/${id(postId)}/targets/${id(channelId)}/retry`, account),
      { method: 'POST', body: {} }),
    nextSlot: (channelId) => call(url(`/channels/${id(channelId)}/next-slot`, account)),
    /** Each channel's preview, length and problems for a post as composed (nothing stored). */
    check: (body) => call(url('/compose/check', account), { method: 'POST', body }),
    bestTimes: (channelId, count = 3) => call(url(`/channels/${id(channelId)}/best-times`, account, { count })),
    create: (body) => call(url('/posts', account), { method: 'POST', body }),
    /** Queue a waveform video of an audio asset: {asset_id, network, shape, title}; the job. */
    renderWaveform: (body) => call(url('/waveforms', account), { method: 'POST', body }),
    /** A waveform render: state, progress, error, and its media reference once done. */
    waveform: (jobId) => call(url(`/waveforms/${id(jobId)}`, account)),
    /** Upload an image or video (a File) to the account's media; the upload, `media` its reference. */
    uploadMedia: (file) => call(url('/media', account, { name: file.name }), { method: 'POST', body: file }),
    /** The account's uploaded images and videos, newest first. */
    uploads: () => call(url('/media', account)),
    submit: (postId) => call(url(`/posts/${id(postId)}/submit`, account), { method: 'POST', body: {} }),
    /** Results of posts published in [from, to) (Date), optionally of one channel. */
    results: (from, to, channel = '') => call(url('/results', account, {
      from: from.toISOString(), to: to.toISOString(), channel
    })),
    readings: (postId) => call(url(`/posts/${id(postId)}/results`, account)),
    alerts: () => call(url('/listening/alerts', account)),
    queries: () => call(url('/listening/queries', account)),
    /** A new stream: {channel_id, kind, term, min_count, notify_email}. */
    addQuery: (body) => call(url('/listening/queries', account), { method: 'POST', body }),
    deleteQuery: (queryId) => call(url(`/listening/queries/${id(queryId)}`, account), { method: 'DELETE' }),
    /** Inbox items, newest first; filters {assignee, open}. */
    inbox: (filters = {}) => call(url('/inbox/items', account, filters)),
    respond: (itemId) => call(url(`/inbox/items/${id(itemId)}/respond`, account), { method: 'POST', body: {} }),
    inboxReport: () => call(url('/inbox/report', account)),
    /** The answers to one item, oldest first. */
    replies: (itemId) => call(url(`/inbox/items/${id(itemId)}/replies`, account)),
    /** Answer an item on its network: kind 'reply' (public) or 'dm' (direct message). */
    reply: (itemId, kind, text) => call(url(`/inbox/items/${id(itemId)}/replies`, account), {
      method: 'POST', body: { kind, text }
    })
  }
}

/** The signed-in person's projects and each one's audio assets (uploads, bounces, clips). */
export async function projectMedia () {
  const projects = await call('/me/projects')
  const found = []
  for (const project of projects) {
    let assets = []
    try {
      assets = await call(`/projects/${id(project.id)}/assets`)
    } catch {
      continue // a project whose assets this person may not list
    }
    for (const asset of assets) found.push({ project, asset })
  }
  return found
}
