// One network's preview in the composer, from the server's check of that channel: the text
// as the network will show it (links and mentions marked, as clickable or not), the link
// card, the media, the first comment, the length against the network's limit, and every
// problem (errors block; warnings advise).
import { h } from '../dom.js'

const TOKENS = /(https?:\/\/[^\s]+|[@#][\p{L}\p{N}_.]+)/gu

/** The text with links, @mentions and #tags in their own marked spans. */
function marked (text, linksClickable) {
  const parts = []
  let at = 0
  for (const match of text.matchAll(TOKENS)) {
    if (match.index > at) parts.push(text.slice(at, match.index))
    const token = match[0]
    const kind = token.startsWith('@') ? 'mention' : token.startsWith('#') ? 'tag' : linksClickable ? 'link' : 'link dead'
    parts.push(h('span', { class: kind }, token))
    at = match.index + token.length
  }
  parts.push(text.slice(at))
  return parts
}

/** The preview card of one channel (`check` is one entry of the check's `channels`). */
export function renderPreview (check) {
  const { preview } = check
  const over = check.length > check.max_length
  const counter = h('p', { class: `counter${over ? ' over' : ''}` },
    `${check.length} / ${check.max_length} ${check.unit}`,
    check.notes.length ? ` (${check.notes.join('; ')})` : '')
  const problems = check.problems.map((p) => h('li', {
    class: `problem ${p.severity}`, dataset: { field: p.field, code: p.code }
  }, `${p.severity === 'error' ? 'Error' : 'Warning'} (${p.field}): ${p.message}`))
  return h('article', {
    class: `preview network-${check.network}${check.ok ? '' : ' blocked'}`,
    dataset: { channel: check.channel_id, network: check.network, ok: String(check.ok) },
    'aria-label': `${check.network_name} preview`
  },
  h('header', {}, h('strong', {}, check.network_name), ' ',
    h('span', { class: 'handle' }, check.handle ? `@${check.handle}` : check.name)),
  h('p', { class: 'preview-text' }, ...marked(preview.text || '', check.links_clickable)),
  preview.link_card ? h('p', { class: 'link-card' }, 'Link card: ', preview.link_card) : '',
  preview.media.length
    ? h('p', { class: 'preview-media' }, `${preview.media.length} file${preview.media.length === 1 ? '' : 's'} attached`)
    : '',
  preview.first_comment
    ? h('p', { class: 'preview-comment' }, check.first_comment_allowed ? 'First comment: ' : 'First comment (not posted here): ',
      preview.first_comment)
    : '',
  counter,
  problems.length ? h('ul', { class: 'problems' }, ...problems) : h('p', { class: 'ok' }, 'Ready for this network.'))
}
