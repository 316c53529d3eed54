// Where to go after signing in: ?next=PATH, else a page remembered earlier (an invitation
// opened before its person had an account), else the project list.
const KEY = 'mbs.after-sign-in'

/**
 * A same-site path, or '' for anything else (no open redirect to another site). Browsers
 * drop tabs and newlines from URLs ('/\t/evil.example' opens '//evil.example'), so any
 * control character or space is refused, and the path must resolve on this origin.
 */
export function safePath (path, origin = globalThis.location?.origin ?? 'http://localhost') {
  if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//') ||
      path.includes('\\') || /[\u0000-\u0020\u007f]/.test(path)) return ''
  try {
    return new URL(path, origin).origin === origin ? path : ''
  } catch {
    return ''
  }
}

/** Remember `path` to open after the next sign-in (survives the verification mail's tab). */
export function remember (path) {
  try { localStorage.setItem(KEY, path) } catch { /* storage off: ?next= still works */ }
}

/** The page to open after signing in, without forgetting it: ?next= or the remembered one. */
export function peek (location = window.location) {
  let kept = ''
  try { kept = safePath(localStorage.getItem(KEY)) } catch { /* storage off */ }
  return safePath(new URLSearchParams(location.search).get('next')) || kept
}

/** Forget the remembered page (it is on its way with a provider's sign-in). */
export function forget () {
  try { localStorage.removeItem(KEY) } catch { /* storage off */ }
}

/** The page to open after signing in (and forget the remembered one). */
export function destination (location = window.location) {
  const asked = safePath(new URLSearchParams(location.search).get('next'))
  let kept = ''
  try {
    kept = safePath(localStorage.getItem(KEY))
    localStorage.removeItem(KEY)
  } catch { /* storage off */ }
  return asked || kept || '/'
}

/** `href` with this page's ?next= passed on. */
export function withNext (href, location = window.location) {
  const next = safePath(new URLSearchParams(location.search).get('next'))
  return next ? `${href}?next=${encodeURIComponent(next)}` : href
}
