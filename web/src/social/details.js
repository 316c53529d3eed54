// A post's details in a dialog: its text, time (in the person's zone), campaign, state and
// each channel's outcome: the published post's URL, or the network's reason for a failure
// with a retry button. A time field moves the post without dragging (keyboard users);
// "Edit" opens the composer on a post that can still change.
import { h } from '../dom.js'
import { formatWhen, localInputValue } from './zone.js'
import { channelName } from './filters.js'

const STATE_WORDS = {
  draft: 'Draft',
  pending_approval: 'Pending approval',
  approved: 'Approved',
  scheduled: 'Scheduled',
  publishing: 'Publishing',
  published: 'Published',
  failed: 'Failed',
  expired: 'Expired',
  cancelled: 'Cancelled'
}

/** States whose post can still be changed (the server's EDITABLE). */
const EDITABLE = new Set(['draft', 'pending_approval', 'approved', 'scheduled', 'expired', 'failed'])

export const stateWord = (state) => STATE_WORDS[state] || state

function target (t, channels, onRetry) {
  const channel = channels.get(t.channel_id)
  const name = channel ? channelName(channel) : `${t.channel_id} (${t.network})`
  const parts = [h('strong', {}, name), ` — ${stateWord(t.state)}`]
  if (t.state === 'published' && t.url) {
    parts.push(' ', h('a', { href: t.url, target: '_blank', rel: 'noopener noreferrer', class: 'published-url' }, t.url))
  }
  if (t.error) parts.push(h('p', { class: 'reason' }, `The network said: ${t.error}`))
  if (t.state === 'failed') {
    parts.push(h('button', {
      type: 'button', class: 'retry', 'aria-label': `Retry on ${name}`,
      onclick: (event) => onRetry(t.channel_id, event.currentTarget)
    }, 'Retry'))
  }
  return h('li', { class: `target state-${t.state}`, dataset: { channel: t.channel_id } }, ...parts)
}

/**
 * The dialog: `open(postId)` loads and shows a post. `api()` is the current account's API,
 * `channels()` a Map of id to channel, `move(post, date)` reschedules (resolves true when
 * the server took it), `changed()` runs after a retry, `edit(post)` opens the composer.
 */
export function postDialog ({ api, channels, move, changed, say, edit }) {
  const body = h('div', { class: 'dialog-body' })
  const close = h('button', { type: 'button', class: 'close', onclick: () => dialog.close() }, 'Close')
  const dialog = h('dialog', { class: 'post-dialog', 'aria-labelledby': 'post-dialog-title' },
    h('h2', { id: 'post-dialog-title' }, 'Post'), body, close)

  async function retry (postId, channelId, button) {
    button.disabled = true
    try {
      await api().retry(postId, channelId)
      say('Retry queued: the post will be sent again.')
      changed()
      await open(postId)
    } catch (err) {
      button.disabled = false
      say(`Retry refused: ${err.message}`, 'alert')
    }
  }

  function moveForm (post) {
    const when = post.publish_at ? new Date(post.publish_at) : new Date()
    const input = h('input', { type: 'datetime-local', id: 'post-move-at', value: localInputValue(when) })
    const form = h('form', {
      class: 'move',
      onsubmit: async (event) => {
        event.preventDefault()
        const date = new Date(input.value)
        if (Number.isNaN(date.getTime())) return
        if (await move(post, date)) await open(post.post_id)
      }
    }, h('label', { for: 'post-move-at' }, 'Move to'), input,
    h('button', { type: 'submit' }, 'Move'))
    return form
  }

  async function open (postId) {
    body.replaceChildren(h('p', {}, 'Loading…'))
    if (!dialog.open) dialog.showModal()
    let post
    try {
      post = await api().post(postId)
    } catch (err) {
      body.replaceChildren(h('p', { role: 'alert' }, `This post could not be loaded: ${err.message}`))
      return
    }
    const known = channels()
    const when = post.publish_at ? new Date(post.publish_at) : null
    const movable = !['publishing', 'published', 'cancelled'].includes(post.state)
    const editable = EDITABLE.has(post.state) && !post.targets.some((t) => t.state === 'published')
    const editButton = h('button', {
      type: 'button',
      class: 'edit',
      onclick: () => { dialog.close(); edit(post) }
    }, 'Edit')
    body.replaceChildren(
      h('p', { class: 'post-state', dataset: { state: post.state } }, stateWord(post.state)),
      h('p', { class: 'post-text' }, post.text || '(no text)'),
      h('dl', {},
        h('dt', {}, 'When'), h('dd', { class: 'post-when' },
          when ? `${formatWhen(when)} (the post's zone: ${post.time_zone})` : 'No time yet'),
        post.campaign ? [h('dt', {}, 'Campaign'), h('dd', {}, post.campaign)] : []),
      h('h3', {}, 'Channels'),
      h('ul', { class: 'targets' }, post.targets.map((t) =>
        target(t, known, (channelId, button) => retry(post.post_id, channelId, button)))),
      movable ? moveForm(post) : '', editable ? editButton : '')
    dialog.dataset.post = post.post_id
  }

  return { element: dialog, open }
}
