// What the page calls a clip's audio. Clips name their audio by asset id (the SHA-256 of
// its bytes, docs/document-schema.md), so the page asks the project's asset list
// (GET /projects/ID/assets) for the names people gave their files; a path (a project
// file opened locally) shows its last part, and an id not known yet its first 8 digits
// until the list arrives.
import { api } from './api.js'

const ASSET_ID = /^[0-9a-f]{64}$/

export class SourceNames {
  /** `url`: the assets path template (null: no asset API); `onChange()` after new names. */
  constructor ({ projectId, token, url, onChange = () => {} }) {
    Object.assign(this, { projectId, token, url, onChange })
    this.names = new Map() // asset id -> name
    this.asked = new Set() // ids a list was fetched for (not asked again: no loop on a foreign id)
    this.waiting = new Set() // ids seen since the last fetch started
    this.pending = null
  }

  /** A short human name for a clip's `source`. */
  label (source) {
    const text = String(source)
    if (!ASSET_ID.test(text)) return text.split('/').pop()
    const name = this.names.get(text)
    if (name) return name
    if (!this.asked.has(text)) {
      this.waiting.add(text)
      this._fetch()
    }
    return `${text.slice(0, 8)}…`
  }

  _fetch () {
    if (!this.url || this.pending) return
    const ids = [...this.waiting]
    this.waiting.clear()
    for (const id of ids) this.asked.add(id)
    const path = this.url.replace('{project_id}', encodeURIComponent(this.projectId))
    this.pending = Promise.resolve()
      .then(() => api(path, { token: this.token }))
      .then((rows) => {
        let changed = false
        for (const row of Array.isArray(rows) ? rows : []) {
          if (row && row.id && row.name && this.names.get(row.id) !== row.name) {
            this.names.set(row.id, row.name)
            changed = true
          }
        }
        if (changed) this.onChange()
      })
      .catch(() => { for (const id of ids) this.asked.delete(id) }) // try again on next sight
      .finally(() => {
        this.pending = null
        if (this.waiting.size) setTimeout(() => this._fetch(), 250)
      })
  }
}
