// "Next free slot": the first queue slot of a channel that no post holds
// (GET /api/social/channels/{id}/next-slot), shown in the person's zone, with a way there.
import { h } from '../dom.js'
import { formatWhen } from './zone.js'
import { channelName } from './filters.js'

/** The control: a channel to ask about, the button and the answer. `show(date)` goes there. */
export function nextSlotControl ({ api, channels, chosenChannel, show }) {
  const select = h('select', { id: 'social-slot-channel', name: 'slot-channel' },
    ...channels.map((c) => h('option', { value: c.channel_id, selected: c.channel_id === chosenChannel() }, channelName(c))))
  const answer = h('span', { class: 'slot-answer', role: 'status', 'aria-live': 'polite' })
  const button = h('button', {
    type: 'button',
    class: 'next-slot',
    disabled: !channels.length,
    onclick: async () => {
      answer.replaceChildren('Looking…')
      try {
        const slot = await api().nextSlot(select.value)
        if (slot.at_epoch === null || slot.at_epoch === undefined) {
          answer.replaceChildren('This channel has no queue slots yet.')
          return
        }
        const when = new Date(slot.at_epoch * 1000)
        answer.replaceChildren(`Next free slot: ${formatWhen(when)} `,
          h('button', { type: 'button', class: 'link', onclick: () => show(when) }, 'Show it'))
        answer.dataset.at = String(slot.at_epoch)
      } catch (err) {
        answer.replaceChildren(`No slot found: ${err.message}`)
      }
    }
  }, 'Next free slot')
  return h('div', { class: 'slot', role: 'group', 'aria-label': 'Queue slots' },
    h('label', { for: 'social-slot-channel' }, 'Slot for'), select, button, answer)
}
