// The mailed invitation link (/account/invite?token=...): accept it as the invited person.
import { h } from '../dom.js'
import { call, me as whoAmI } from './client.js'
import { notice } from './form.js'
import { remember } from './next.js'

/** The invitation page's content. Accepting is a click, never automatic on arrival. */
export function invitePage ({ me, token }) {
  if (!token) return notice('This page accepts an invitation from the link in its mail; that link carries a token this address lacks.', 'alert')
  const here = `/account/invite?token=${encodeURIComponent(token)}`
  if (!me) {
    remember(here) // signing up goes through the verification mail, maybe in another tab
    const next = encodeURIComponent(here)
    return h('div', { class: 'invite' },
      notice('You are invited to join an organisation. Sign in with the address the invitation was sent to, or sign up with it first; then you come back here to accept.'),
      h('p', { class: 'actions' },
        h('a', { class: 'button primary', href: `/account/sign-in?next=${next}` }, 'Sign in'), ' ',
        h('a', { class: 'button', href: `/account/sign-up?next=${next}` }, 'Sign up')))
  }
  const box = h('div', { class: 'invite' })
  const result = h('div', { 'aria-live': 'polite' })
  const accept = h('button', { type: 'button', class: 'primary accept', onclick: async () => {
    accept.disabled = true
    try {
      const joined = await call('/invitations/accept', { method: 'POST', body: { token } })
      const org = ((await whoAmI())?.organisations || []).find((o) => o.id === joined.account_id)
      box.replaceChildren(notice(`You joined ${org ? org.name : joined.account_id} as ${joined.role}.`),
        h('p', {}, h('a', { class: 'button primary', href: '/' }, 'Open its projects'), ' ', h('a', { class: 'button', href: '/account/team' }, 'See the team')))
    } catch (err) {
      accept.disabled = false
      result.replaceChildren(notice(err.message, 'alert'))
    }
  } }, 'Accept invitation')
  box.append(notice(`You are invited to join an organisation. Accept as ${me.person.email}?`), h('p', {}, accept), result)
  return box
}
