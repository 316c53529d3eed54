// One live region for the page's news: a source connected, a back-fill's progress, refusals
// (the server's words).
import { h } from '../dom.js'

/** The region element and `say(text, kind)`: kind 'alert' for refusals, else 'status'. */
export function noticeArea () {
  const element = h('div', { class: 'notice', role: 'status', 'aria-live': 'polite' })
  function say (text, kind = 'status') {
    element.setAttribute('role', kind === 'alert' ? 'alert' : 'status')
    element.dataset.kind = kind
    element.textContent = text
  }
  return { element, say }
}
