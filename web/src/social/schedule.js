// The composer's publish time: a time typed in the person's zone, the first chosen
// channel's next free queue slot, or one of its best times (from its post history, or the
// network's defaults, each with the reason the server gives).
import { h } from '../dom.js'
import { formatWhen, localInputValue } from './zone.js'
import { channelName } from './filters.js'

/** {element, value(): Date|null, reset(date), channelsChanged()}. */
export function scheduleField ({ api, chosenChannels }) {
  const input = h('input', { type: 'datetime-local', id: 'compose-at', name: 'publish_at' })
  const slotAnswer = h('span', { class: 'slot-answer', role: 'status' })
  const best = h('div', { class: 'best-times', 'aria-live': 'polite' })
  const set = (date) => { input.value = localInputValue(date) }

  async function nextSlot () {
    const [channel] = chosenChannels()
    if (!channel) {
      slotAnswer.textContent = 'Choose a channel first.'
      return
    }
    slotAnswer.textContent = 'Looking…'
    try {
      const slot = await api().nextSlot(channel.channel_id)
      if (slot.at_epoch === null || slot.at_epoch === undefined) {
        slotAnswer.textContent = `${channelName(channel)} has no queue slots yet.`
        return
      }
      const when = new Date(slot.at_epoch * 1000)
      set(when)
      slotAnswer.textContent = `Next free slot of ${channelName(channel)}: ${formatWhen(when)}`
    } catch (err) {
      slotAnswer.textContent = `No slot found: ${err.message}`
    }
  }

  async function channelsChanged () {
    const [channel] = chosenChannels()
    if (!channel) {
      best.replaceChildren()
      return
    }
    best.replaceChildren(h('p', { class: 'hint' }, 'Finding best times…'))
    try {
      const answer = await api().bestTimes(channel.channel_id)
      best.replaceChildren(
        h('p', { class: 'best-reason', dataset: { source: answer.source } },
          `Best times for ${channelName(channel)} (${answer.source === 'history' ? 'from its history' : 'general defaults'}): ${answer.reason}.`),
        h('ul', {}, ...answer.suggestions.map((s) => {
          const when = new Date(s.next_at_epoch * 1000)
          return h('li', { title: s.reason },
            h('button', {
              type: 'button',
              class: 'link best-time',
              dataset: { weekday: s.weekday, time: s.time, at: String(s.next_at_epoch) },
              onclick: () => { set(when); slotAnswer.textContent = `Best time chosen: ${formatWhen(when)}` }
            }, `${formatWhen(when)}`), h('span', { class: 'hint' }, ` — ${s.reason}`))
        })))
    } catch (err) {
      best.replaceChildren(h('p', { class: 'hint' }, `No best times: ${err.message}`))
    }
  }

  const element = h('fieldset', { class: 'schedule' }, h('legend', {}, 'When'),
    h('label', { for: 'compose-at' }, 'Publish at'), input,
    h('button', { type: 'button', onclick: nextSlot }, 'Use next free slot'), slotAnswer, best)

  return {
    element,
    value: () => {
      if (!input.value) return null
      const date = new Date(input.value)
      return Number.isNaN(date.getTime()) ? null : date
    },
    reset: (date) => { input.value = date ? localInputValue(date) : ''; slotAnswer.textContent = ''; best.replaceChildren() },
    channelsChanged
  }
}
