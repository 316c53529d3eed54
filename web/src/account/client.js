// The signed-in person over the session cookie: who they are, and writes with the CSRF token.
//
// The cookie is HttpOnly: the page never sees it. It learns the session's CSRF token from
// the sign-in answer or GET /auth/session and sends it in X-CSRF-Token on every write. When
// the person's roles change the server rotates the session: the answer that did it carries
// the new CSRF token in its X-CSRF-Token header, which replaces the old one here.
import { api, ApiError } from '../api.js'

let csrf = ''
const CSRF_HEADER = 'X-CSRF-Token'
const rotated = (response) => {
  const fresh = response.headers.get(CSRF_HEADER)
  if (fresh) csrf = fresh
}

/** Remember the CSRF token of a new session (from the sign-in answer). */
export function useCsrf (token) {
  csrf = token || ''
}

/**
 * Who is signed in: GET /auth/session answers {signed_in, me} (200 for visitors too, so
 * the browser logs no error); resolves with me ({person, organisations, csrf_token}) or
 * null when no one is signed in (or this server has no accounts).
 */
export async function me () {
  try {
    const state = await api('/auth/session', { onResponse: rotated })
    if (!state.signed_in) return null
    useCsrf(state.me.csrf_token)
    return state.me
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null // no accounts here
    throw err
  }
}

/**
 * Call the API as the signed-in person; writes carry the session's CSRF token. `headers`:
 * more request headers (an Idempotency-Key).
 */
export function call (path, { method = 'GET', body, headers = {} } = {}) {
  const sent = method === 'GET' ? { ...headers } : { ...headers, [CSRF_HEADER]: csrf }
  return api(path, { method, body, headers: sent, onResponse: rotated })
}

/** A collaboration token for a project, derived from the session: {token, role, expires_at}. */
export function collabToken (projectId) {
  return call(`/projects/${encodeURIComponent(projectId)}/collab-token`, { method: 'POST', body: {} })
}

/** End this session (the cookie is cleared by the answer). */
export function signOut () {
  return call('/auth/sign-out', { method: 'POST', body: {} })
}
