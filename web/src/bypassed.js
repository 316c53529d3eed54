// LV2 plug-ins the server plays bypassed, and restarting them (docs/lv2.md).
//
// The list is GET /projects/ID/lv2/bypassed when the page opens; after that the server
// announces every change through awareness (no polling): its own awareness client's state
// is {lv2: {bypassed: [...]}}, withdrawn once nothing is bypassed. Each entry names the
// owner (a track's or bus's id), the effect, the plug-in, the reason ('failed': hung,
// crashed or NaN, restart it; 'left_out': the document's effect cannot be played here)
// and a message. Restart is POST /projects/ID/lv2/restart (editors).
import { h } from './dom.js'
import { api } from './api.js'

const KEY = 'lv2' // the server's awareness state field (dawserver/lv2_faults.py)

export class BypassedPlugins {
  constructor ({ projectId, token, awareness, editable, notify }) {
    Object.assign(this, { projectId, token, awareness, editable, notify })
    this.list = []
    this.listeners = []
    this._announced = false // an announcement came: it, not the first answer, is the list
    this.text = h('span', { class: 'lv2-alert-text' })
    this.button = this.restartButton()
    this.el = h('span', { class: 'lv2-alert', role: 'alert', hidden: true }, this.text, this.button)
    awareness.on('change', () => this._fromAwareness())
  }

  get path () { return `/projects/${encodeURIComponent(this.projectId)}/lv2` }

  /** Ask the server once (the page just opened); announcements replace the answer. */
  async load () {
    try {
      const answer = await api(`${this.path}/bypassed`, { token: this.token })
      if (!this._announced) this._set(answer.plugins)
    } catch (err) {
      this.notify(`Cannot read the bypassed plug-ins: ${err.message}`, true)
    }
    this._fromAwareness()
  }

  onChange (fn) { this.listeners.push(fn) }

  /** The entries of `owner` (a track or bus id); of its effect `effect` at `index` too. */
  of (owner, effect = null, index = null) {
    return this.list.filter((f) => f.owner === owner && (effect === null ||
      (f.effect ? f.effect === (effect.id || String(index)) : f.index === index)))
  }

  /** A Restart button (editors; disabled while a restart runs). */
  restartButton () {
    return h('button', { class: 'edit lv2-restart', disabled: !this.editable,
      title: 'Start the failed plug-ins again (change the control that broke one first)',
      onclick: () => this.restart() }, 'Restart')
  }

  async restart () {
    try {
      const answer = await api(`${this.path}/restart`, { token: this.token, method: 'POST', body: {} })
      this._set(answer.bypassed)
      const count = answer.restarted.length
      this.notify(count ? `restarted ${count} plug-in${count > 1 ? 's' : ''}` : 'no plug-in had failed')
    } catch (err) {
      this.notify(`Restart: ${err.message}`, true)
    }
  }

  _fromAwareness () {
    const announced = new Map() // several server processes may tell the same entry
    let any = false
    this.awareness.getStates().forEach((state, clientId) => {
      if (clientId === this.awareness.clientID || !state || !state[KEY]) return
      any = true
      for (const f of state[KEY].bypassed || []) announced.set(`${f.reason}|${f.owner}|${f.effect}|${f.index}`, f)
    })
    if (any) this._announced = true
    else if (!this._announced) return // nothing announced yet: keep the first answer
    this._set([...announced.values()])
  }

  _set (list) {
    const signature = JSON.stringify(list)
    if (signature === this._signature) return
    this._signature = signature
    this.list = list
    const failed = list.filter((f) => f.reason === 'failed').length
    this.el.hidden = list.length === 0
    this.text.textContent = `${list.length} plug-in${list.length === 1 ? '' : 's'} bypassed`
    this.el.title = list.map(describe).join('\n')
    this.button.hidden = failed === 0
    this.listeners.forEach((fn) => fn(list))
  }
}

/** One line about an entry: where, which plug-in, why. */
export function describe (fault) {
  const plugin = fault.name || fault.uri || 'lv2'
  const where = fault.owner ? `${fault.owner} ${fault.effect || `#${fault.index}`}` : ''
  return `${where ? `${where} · ` : ''}${plugin}: ${fault.message}`
}
