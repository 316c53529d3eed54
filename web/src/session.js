// Who the page runs as: the project id and token from the URL, and the token's claims.
//
// The claims are only read for display (name, role); the server verifies the
// token on every request and refuses edits a role may not make.

/** The project id and token from `?project=ID&token=T`. */
export function fromLocation (location = window.location) {
  const params = new URLSearchParams(location.search)
  return { projectId: params.get('project') || '', token: params.get('token') || '' }
}

/**
 * The claims of a token (`base64url(json).signature`): {project, role, user, issuedAt,
 * expiresAt} (seconds since 1970; expiresAt null for a token that never expires).
 */
export function claims (token) {
  try {
    const body = token.split('.')[0].replace(/-/g, '+').replace(/_/g, '/')
    const padded = body + '='.repeat((4 - body.length % 4) % 4)
    const data = JSON.parse(atob(padded))
    return {
      project: String(data.p), role: String(data.r), user: String(data.u),
      issuedAt: Number(data.iat) || null, expiresAt: Number(data.exp) || null
    }
  } catch {
    return { project: '', role: 'viewer', user: 'guest', issuedAt: null, expiresAt: null }
  }
}

/** Whether a role may change the document. */
export function canEdit (role) {
  return role === 'editor' || role === 'owner'
}

/** The page URL that opens `projectId` with `token`. */
export function projectUrl (projectId, token) {
  const url = new URL(window.location.href)
  url.search = new URLSearchParams({ project: projectId, token }).toString()
  url.hash = ''
  return url.toString()
}

/** The page URL of the project list for `token`. */
export function listUrl (token) {
  const url = new URL(window.location.href)
  url.search = token ? new URLSearchParams({ token }).toString() : ''
  url.hash = ''
  return url.toString()
}
