// Export: an offline render of the project (POST /projects/ID/bounces), its progress, and
// a download link when it is done.
import { h } from './dom.js'
import { api } from './api.js'

export class BounceButton {
  constructor ({ projectId, token, path, editable, notify }) {
    Object.assign(this, { projectId, token, path, notify })
    this.button = h('button', { class: 'bounce edit', disabled: !editable || !path,
      title: path ? 'Render the whole project to a 24-bit WAV file' : 'This server offers no export',
      onclick: () => this.start() }, 'Export')
    this.link = h('a', { class: 'bounce-download', hidden: true, download: '' }, 'Download')
    this.el = h('span', { class: 'bounce-box' }, this.button, this.link)
  }

  async start () {
    const base = this.path.replace('{project_id}', encodeURIComponent(this.projectId))
    this.button.disabled = true
    this.link.hidden = true
    try {
      let job = await api(base, { token: this.token, method: 'POST', body: { bit_depth: '24', format: 'wav', tail: 1.0 } })
      while (job.status === 'queued' || job.status === 'rendering') {
        this.button.textContent = `Export ${Math.round(job.progress * 100)}%`
        await new Promise((resolve) => setTimeout(resolve, 250))
        job = await api(`${base}/${job.id}`, { token: this.token })
      }
      if (job.status !== 'done') throw new Error(job.error || `the export was ${job.status}`)
      this.link.href = `${job.audio}?token=${encodeURIComponent(this.token)}`
      this.link.hidden = false
      this.notify(`export ready: ${job.seconds.toFixed(1)} s, ${job.realtime_factor.toFixed(0)}x real time`)
    } catch (err) {
      this.notify(`Export: ${err.message}`, true)
    } finally {
      this.button.textContent = 'Export'
      this.button.disabled = false
    }
  }
}
