// The signed-in person over the session cookie: who they are, and writes with the CSRF token.
//
// The cookie is HttpOnly: the page never sees it. It learns the session's CSRF token from
// the sign-in answer or GET /me and sends it in X-CSRF-Token on every write.
import { api, ApiError } from '../api.js'

let csrf = ''

/** Remember the CSRF token of a new session (from the sign-in answer). */
export function useCsrf (token) {
  csrf = token || ''
}

/** GET /me: {person, organisations, csrf_token}, or null when no one is signed in. */
export async function me () {
  try {
    const found = await api('/me')
    useCsrf(found.csrf_token)
    return found
  } catch (err) {
    if (err instanceof ApiError && [401, 403, 404].includes(err.status)) return null // no one, or no accounts here
    throw err
  }
}

/** Call the API as the signed-in person; writes carry the session's CSRF token. */
export function call (path, { method = 'GET', body } = {}) {
  const headers = method === 'GET' ? {} : { 'X-CSRF-Token': csrf }
  return api(path, { method, body, headers })
}

/** A collaboration token for a project, derived from the session (one hour). */
export async function collabToken (projectId) {
  const made = await call(`/projects/${encodeURIComponent(projectId)}/collab-token`, { method: 'POST', body: {} })
  return made.token
}

/** End this session (the cookie is cleared by the answer). */
export function signOut () {
  return call('/auth/sign-out', { method: 'POST', body: {} })
}
