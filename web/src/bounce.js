// Export: an offline render of the project (POST /projects/ID/bounces), its progress, and
// a download link when it is done; `format: 'adm'` makes the ADM BWF (immersive.js).
import { h } from './dom.js'
import { api } from './api.js'

export class BounceButton {
  constructor ({ projectId, token, path, editable, notify, format = 'wav', label = 'Export',
    title = 'Render the whole project to a 24-bit WAV file' }) {
    Object.assign(this, { projectId, token, path, notify, format, label })
    const name = format === 'wav' ? 'bounce' : `bounce-${format}` // class names of its parts
    this.button = h('button', { class: `${name} edit`, disabled: !editable || !path,
      title: path ? title : 'This server offers no export',
      onclick: () => this.start() }, label)
    this.link = h('a', { class: `${name}-download`, hidden: true, download: '' }, 'Download')
    this.el = h('span', { class: 'bounce-box' }, this.button, this.link)
  }

  async start () {
    const base = this.path.replace('{project_id}', encodeURIComponent(this.projectId))
    this.button.disabled = true
    this.link.hidden = true
    try {
      let job = await api(base, { token: this.token, method: 'POST', body: { bit_depth: '24', format: this.format, tail: 1.0 } })
      while (job.status === 'queued' || job.status === 'rendering') {
        this.button.textContent = `${this.label} ${Math.round(job.progress * 100)}%`
        await new Promise((resolve) => setTimeout(resolve, 250))
        job = await api(`${base}/${job.id}`, { token: this.token })
      }
      if (job.status !== 'done') throw new Error(job.error || `the export was ${job.status}`)
      this.link.href = `${job.audio}?token=${encodeURIComponent(this.token)}`
      this.link.hidden = false
      this.notify(`${this.label.toLowerCase()} ready: ${job.seconds.toFixed(1)} s, ${job.realtime_factor.toFixed(0)}x real time`)
    } catch (err) {
      this.notify(`${this.label}: ${err.message}`, true)
    } finally {
      this.button.textContent = this.label
      this.button.disabled = false
    }
  }
}
