// Keeps a signed-in person's collaboration token fresh. The server derives it from the
// session for an hour (POST /projects/ID/collab-token); the WebSocket presents it only when
// it (re)connects, so a token that ran out would keep a dropped connection closed. A new one
// is fetched at three quarters of its lifetime, and at once when the server refuses one.
import { ApiError } from './api.js'
import { claims } from './session.js'

/** Answers that say the session cannot give tokens any more: no retry. */
const FINAL_STATUSES = new Set([401, 403, 404])

/** Milliseconds after receiving `token` to fetch the next one; null when it never expires. */
export function renewalDelay (token, { fraction = 0.75, minimumMs = 1000 } = {}) {
  const { issuedAt, expiresAt } = claims(token)
  if (!expiresAt || !issuedAt) return null
  // from the token's own lifetime (exp - iat): a clock set wrong here does not matter
  return Math.max(minimumMs, (expiresAt - issuedAt) * fraction * 1000)
}

export class TokenRenewal {
  /**
   * `fetchToken()` resolves with {token, role, expires_at}; `onToken(made)` receives each new
   * one; `onFail(error)` hears that the session can give no more (signed out, access gone).
   */
  constructor ({ fetchToken, onToken = () => {}, onFail = () => {} }) {
    Object.assign(this, { fetchToken, onToken, onFail })
    this.token = ''
    this.timer = null
    this.pending = null
    this.stopped = false
  }

  /** Fetch the first token (errors go to the caller) and keep it fresh from then on. */
  async start () {
    const made = await this.fetchToken()
    this.accept(made)
    return made
  }

  /** Fetch a new token now (one request however many ask at once); resolves with it. */
  renew () {
    if (!this.pending) {
      this.pending = this.fetchToken().then((made) => {
        this.accept(made)
        this.onToken(made)
        return made.token
      }).finally(() => { this.pending = null })
    }
    return this.pending
  }

  /** Stop renewing (the page leaves the project). */
  stop () {
    this.stopped = true
    clearTimeout(this.timer)
  }

  accept (made) {
    this.token = made.token
    this.schedule(renewalDelay(made.token))
  }

  schedule (delay) {
    clearTimeout(this.timer)
    if (this.stopped || delay === null) return
    this.timer = setTimeout(() => {
      this.renew().catch((err) => {
        if (err instanceof ApiError && FINAL_STATUSES.has(err.status)) {
          this.stop()
          this.onFail(err)
        } else {
          this.schedule(Math.min(5000, renewalDelay(this.token, { fraction: 0.1 }) ?? 5000)) // offline: try again soon
        }
      })
    }, delay)
  }
}
