// When to retry and how long to wait: Retry-After first, else jittered exponential backoff.

/** Statuses worth retrying: rate limited or the server (or a proxy) briefly unavailable. */
export const RETRY_STATUSES = new Set([429, 502, 503, 504])

export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  attempts?: number
  /** The first backoff in ms (default 250), doubled per attempt up to `capMs` (default 8000). */
  baseMs?: number
  capMs?: number
  /** Called before each wait, e.g. to log it. */
  onRetry?: (info: { attempt: number, waitMs: number, status?: number, error?: unknown }) => void
}

/** Milliseconds a `Retry-After` value asks for (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter (value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === '') return null
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const when = Date.parse(text)
  return Number.isNaN(when) ? null : Math.max(0, when - now)
}

/** The wait before attempt `attempt + 1` (attempt counts from 1). */
export function backoffMs (attempt: number, retryAfter: string | null, options: RetryOptions = {}): number {
  const asked = parseRetryAfter(retryAfter)
  if (asked !== null) return asked
  const cap = options.capMs ?? 8000
  const ceiling = Math.min(cap, (options.baseMs ?? 250) * 2 ** (attempt - 1))
  return ceiling / 2 + Math.random() * ceiling / 2
}
