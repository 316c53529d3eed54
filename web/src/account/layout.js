// The frame of every account page: a header with the person's links, then the page's content.
import { h } from '../dom.js'
import { signOut } from './client.js'

/** Where the account pages live. */
export const LINKS = [
  ['/', 'Projects'],
  ['/account/team', 'Team'],
  ['/account/sessions', 'Sessions'],
  ['/account/keys', 'API keys'],
  ['/account/two-factor', 'Two-factor'],
  ['/account/security', 'Security log'],
  ['/account/access', 'Project access']
]

/** Show `title` and `content` in `root`, under a header (with navigation when signed in). */
export function show (root, { title, me, content }) {
  document.title = `${title} · Max Booster Studio`
  const here = window.location.pathname
  const nav = me
    ? h('nav', { 'aria-label': 'Account' },
      h('ul', {}, LINKS.map(([href, text]) => h('li', {},
        h('a', { href, 'aria-current': href === here ? 'page' : null }, text)))),
      h('span', { class: 'who' }, me.person.name || me.person.email),
      h('button', { type: 'button', class: 'sign-out', onclick: async () => {
        await signOut().catch(() => {})
        window.location.assign('/account/sign-in')
      } }, 'Sign out'))
    : ''
  root.replaceChildren(
    h('header', { class: 'account-header' }, h('a', { class: 'brand', href: '/' }, 'Max Booster Studio'), nav),
    h('main', { class: 'account-main' }, h('h1', {}, title), content))
  const heading = root.querySelector('h1')
  heading.tabIndex = -1
}

/** Send someone who is not signed in to the sign-in page, back here afterwards. */
export function toSignIn () {
  const next = window.location.pathname + window.location.search
  window.location.assign(`/account/sign-in?next=${encodeURIComponent(next)}`)
}
