// Answering an inbox item from the page: the thread (the item, then each answer with its
// state: queued, sending, sent with a link, failed with the network's reason) and a form
// to reply publicly or send a direct message (POST /inbox/items/{id}/replies). A direct
// message read into the inbox is answered by direct message only. Answers go out through
// the server's job queue; the thread is read again until none is still on its way.
import { h } from '../dom.js'

const PENDING = new Set(['queued', 'sending'])

function answerLine (answer) {
  const what = answer.kind === 'dm' ? 'Direct message' : 'Reply'
  const state = answer.state === 'sent' && answer.url
    ? h('a', { href: answer.url, rel: 'noopener noreferrer', target: '_blank' }, 'sent')
    : h('span', {}, answer.state === 'failed' ? `failed: ${answer.error}` : answer.state)
  return h('li', { class: `answer ${answer.state}`, 'data-reply': answer.reply_id },
    h('strong', {}, `${what} by ${answer.person}: `), h('span', { class: 'text' }, answer.text),
    ' — ', state)
}

/** The answer panel of one item; `changed()` is called once an answer was sent. */
export function answerPanel ({ api, say, item, changed, wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms)) }) {
  const direct = item.thread !== ''
  const thread = h('ol', { class: 'thread', 'aria-label': 'Conversation' },
    h('li', { class: 'incoming' }, h('strong', {}, `${item.author}: `), item.text))
  const kind = h('select', { name: 'kind', 'aria-label': 'Answer as' },
    ...(direct ? [] : [h('option', { value: 'reply' }, 'Public reply')]),
    h('option', { value: 'dm' }, 'Direct message'))
  const text = h('textarea', { name: 'text', rows: 3, required: true, 'aria-label': 'Answer', maxlength: 10000 })
  const send = h('button', { type: 'submit' }, 'Send')
  const form = h('form', { class: 'answer-form' }, kind, text, send)
  const element = h('div', { class: 'answers', 'data-answers': item.item_id }, thread, form)

  async function load () {
    const answers = await api().replies(item.item_id)
    thread.replaceChildren(thread.firstChild, ...answers.map(answerLine))
    return answers
  }

  async function follow () {
    for (let tries = 0; tries < 40; tries++) {
      const answers = await load()
      if (!answers.some((a) => PENDING.has(a.state))) return answers
      await wait(Math.min(250 * 2 ** tries, 3000))
    }
    return load()
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    send.disabled = true
    try {
      await api().reply(item.item_id, kind.value, text.value)
      text.value = ''
      say('Answer queued; it goes out in a moment.')
      const answers = await follow()
      const last = answers[answers.length - 1]
      if (last && last.state === 'failed') say(`Not sent: ${last.error}`, 'alert')
      else if (last && last.state === 'sent') { say('Answer sent.'); changed() }
    } catch (err) {
      say(`Not sent: ${err.message}`, 'alert')
    } finally {
      send.disabled = false
    }
  })

  load().catch((err) => say(`The conversation could not be loaded: ${err.message}`, 'alert'))
  return { element }
}
