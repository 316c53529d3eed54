// The server's HTTP API (projects, tokens, members, renders, assets), token as Bearer.

export class ApiError extends Error {
  constructor (status, message) {
    super(message)
    this.status = status
  }
}

/**
 * Call the API; resolves with the JSON (or Response for non-JSON), rejects with ApiError.
 * `onResponse(response)` sees every answer first (its headers), refused ones included.
 */
export async function api (path, { token, method = 'GET', body, raw = false, headers = {}, onResponse } = {}) {
  const init = { method, headers: { ...headers } }
  if (token) init.headers.Authorization = `Bearer ${token}`
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    init.body = body
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const response = await fetch(path, init)
  if (onResponse) onResponse(response)
  if (!response.ok) {
    let message = `${method} ${path}: HTTP ${response.status}`
    try {
      const data = await response.json()
      if (data && data.error) message = data.error
    } catch { /* not JSON: keep the status line */ }
    throw new ApiError(response.status, message)
  }
  if (raw) return response
  const type = response.headers.get('Content-Type') || ''
  return type.includes('json') ? response.json() : response
}

/** What this server offers beyond the document (live mix, uploads, peaks...). */
export async function features () {
  try {
    return await api('/page/features')
  } catch {
    return {}
  }
}
