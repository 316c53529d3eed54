// Entry point of /account/...: draws the page the path names (sign-in, team, keys...).
import { h } from '../dom.js'
import { features as loadFeatures } from '../api.js'
import { me as whoAmI } from './client.js'
import { show, toSignIn, LINKS } from './layout.js'
import { notice } from './form.js'
import { signInPage } from './sign-in.js'
import { signUpPage } from './sign-up.js'
import { verifyPage } from './verify.js'
import { resetPage } from './reset.js'
import { invitePage } from './invite.js'
import { teamPage } from './team.js'
import { sessionsPage } from './sessions.js'
import { keysPage } from './keys.js'
import { twoFactorPage } from './two-factor.js'
import { securityPage } from './security.js'
import { accessPage } from './access.js'
import { passwordSection } from './password.js'

/** Each page: its title, its content, and whether it needs someone signed in. */
const PAGES = {
  '': { title: 'Your account', signedIn: true, draw: overview },
  'sign-in': { title: 'Sign in', draw: signInPage },
  'sign-up': { title: 'Sign up', draw: signUpPage },
  verify: { title: 'Verify your email', draw: verifyPage },
  reset: { title: 'Reset your password', draw: resetPage },
  invite: { title: 'Invitation', draw: invitePage },
  team: { title: 'Team', signedIn: true, draw: teamPage },
  sessions: { title: 'Sessions', signedIn: true, draw: sessionsPage },
  keys: { title: 'API keys', signedIn: true, draw: keysPage },
  'two-factor': { title: 'Two-step sign-in', signedIn: true, draw: twoFactorPage },
  security: { title: 'Security log', signedIn: true, draw: securityPage },
  access: { title: 'Project access', signedIn: true, draw: accessPage }
}

function overview ({ me }) {
  return h('div', {}, notice(`Signed in as ${me.person.email}${me.person.two_factor ? ' (two-step sign-in on)' : ''}.`),
    h('ul', { class: 'overview' }, LINKS.map(([href, text]) => h('li', {}, h('a', { href }, text)))),
    me.person.email ? passwordSection() : '')
}

async function main () {
  const root = document.getElementById('app')
  const name = window.location.pathname.replace(/^\/account\/?/, '').replace(/\/$/, '')
  const page = PAGES[name]
  const [me, features] = await Promise.all([whoAmI(), loadFeatures()])
  if (!page) {
    show(root, { title: 'No such page', me, content: notice(`There is no account page "${name}".`, 'alert') })
  } else if (page.signedIn && !me) {
    toSignIn()
    return
  } else {
    const token = new URLSearchParams(window.location.search).get('token') || ''
    show(root, { title: page.title, me, content: page.draw({ me, features, token }) })
  }
  document.body.dataset.page = name || 'overview'
  document.body.dataset.ready = 'true'
}

main().catch((err) => {
  document.getElementById('app').replaceChildren(h('pre', { class: 'fatal' }, `The page failed to start: ${err.message}`))
  throw err
})
