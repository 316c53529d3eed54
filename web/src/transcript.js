// Transcript panel: a clip's words, highlighted with playback; select words and delete
// them to cut that audio out (one document edit, see cut.js).
import { h } from './dom.js'
import { planCut, transcriptWords } from './cut.js'
import { api } from './api.js'
import { newClipId } from './project.js'

export class TranscriptPanel {
  constructor ({ project, editable, onSelectClip, editUrl, transcribeUrl, token, notify, names = null }) {
    Object.assign(this, { project, editable, onSelectClip, editUrl, transcribeUrl, token, notify, names })
    this.jobs = new Map() // clip id -> status text of a transcription this page asked for
    this.clipId = null
    this.selection = null // [first word index, last word index]
    this.words = []
    this.signature = ''
    this.title = h('h3', {}, 'Transcript')
    this.cutButton = h('button', { class: 'cut edit', disabled: true, title: 'Cut the selected words (Delete)',
      onclick: () => this.cut() }, 'Cut selected words')
    this.body = h('div', { class: 'transcript-body', tabindex: '0',
      onkeydown: (e) => {
        if ((e.key === 'Delete' || e.key === 'Backspace') && this.selection) {
          e.preventDefault()
          e.stopPropagation() // the words, not the selected clip
          this.cut()
        }
      }
    })
    this.el = h('section', { class: 'panel transcript' }, h('div', { class: 'panel-head' }, this.title, this.cutButton), this.body)
  }

  show (clipId) {
    if (clipId !== this.clipId) this.selection = null
    this.clipId = clipId
    this.update()
  }

  update () {
    const transcripts = this.project.roots.transcripts
    let clipId = this.clipId && transcripts.get(this.clipId) ? this.clipId : null
    if (!clipId && transcripts.size) clipId = [...transcripts.keys()].sort()[0]
    const transcript = clipId ? this.project.transcript(clipId) : null
    const clip = clipId ? this.project.clip(clipId) : null
    const selected = this.clipId ? this.project.clip(this.clipId) : null
    if (selected && !transcripts.get(this.clipId)) {
      this._offerTranscription(selected)
      return
    }
    if (!transcript || !clip) {
      this.title.textContent = 'Transcript'
      this.body.replaceChildren(h('p', { class: 'hint' }, 'No clip with a transcript selected.'))
      this.words = []
      this.signature = ''
      this._syncButton()
      return
    }
    const words = transcriptWords(transcript)
    const signature = `${clipId}|${clip.offset}|${clip.length}|${JSON.stringify(words)}`
    this.shownClip = clipId
    if (signature === this.signature) return
    this.signature = signature
    this.title.textContent = `Transcript · ${this._name(clip)} (${transcript.language || '?'})`
    this.seen = words.map((word) => word.word) // sent with an edit: refused if they changed
    const reorder = Boolean(this.editable && this.editUrl)
    this.words = words.map((word, index) => h('span', {
      class: 'word', dataset: { index: String(index), start: String(word.start), end: String(word.end) },
      title: `${word.start.toFixed(2)}–${word.end.toFixed(2)} s${reorder ? ' · drag to move' : ''}`,
      draggable: reorder ? 'true' : 'false',
      onclick: (e) => this._select(index, e.shiftKey),
      ondragstart: (e) => e.dataTransfer.setData('text/x-word', String(index)),
      ondragover: (e) => { if (reorder) e.preventDefault() },
      ondrop: (e) => {
        e.preventDefault()
        const from = Number(e.dataTransfer.getData('text/x-word'))
        if (Number.isInteger(from) && from !== index) this.move(from, index)
      }
    }, word.word.trim()))
    const list = [...transcripts.keys()].sort()
    const picker = list.length > 1
      ? h('select', { onchange: (e) => this.onSelectClip(e.target.value) },
        list.map((id) => h('option', { value: id, selected: id === clipId }, id)))
      : null
    this.body.replaceChildren(...(picker ? [picker] : []), h('p', { class: 'words' }, ...this.words.flatMap((w) => [w, ' '])))
    this.selection = null
    this._paintSelection()
  }

  /** What the clip's audio is called (its asset's name). */
  _name (clip) {
    return this.names ? this.names.label(clip.source) : String(clip.source).split('/').pop()
  }

  /** The selected clip has no transcript: offer to transcribe it (server speech recognition). */
  _offerTranscription (clip) {
    const name = this._name(clip)
    const signature = `offer|${clip.id}|${this.jobs.get(clip.id) || ''}`
    this.words = []
    this.shownClip = null
    this._syncButton()
    if (signature === this.signature) return
    this.signature = signature
    this.title.textContent = `Transcript · ${name}`
    const status = this.jobs.get(clip.id)
    const button = h('button', { class: 'transcribe edit', disabled: !this.editable || !this.transcribeUrl || Boolean(status),
      title: this.transcribeUrl ? 'Recognise the words of this clip on the server' : 'This server offers no transcription',
      onclick: () => this.transcribe(clip.id) }, 'Transcribe')
    this.body.replaceChildren(h('p', { class: 'hint' }, `${name} has no transcript yet.`), button,
      status ? h('span', { class: 'job-status' }, ` ${status}`) : '')
  }

  /** Queue a transcription job and follow it until its transcript lands in the document. */
  async transcribe (clipId) {
    const path = this.transcribeUrl.replace('{project_id}', encodeURIComponent(this.project.projectId))
      .replace('{clip_id}', encodeURIComponent(clipId))
    const show = (text) => { this.jobs.set(clipId, text); this.update() }
    try {
      show('queued…')
      const answer = await api(path, { token: this.token, method: 'POST', body: {} })
      let job = answer.job
      while (job.status === 'queued' || job.status === 'running') {
        show(job.status === 'queued' ? 'queued…' : `recognising… ${Math.round(job.progress * 100)}%`)
        await new Promise((resolve) => setTimeout(resolve, 400))
        job = await api(answer.url, { token: this.token })
      }
      if (job.status !== 'done') throw new Error(job.error || `the job was ${job.status}`)
      show('done')
    } catch (err) {
      this.notify(`Transcription: ${err.message}`, true)
    } finally {
      this.jobs.delete(clipId)
      this.update()
    }
  }

  /** Highlight the word under the playhead (timeline frame). */
  tick (frame) {
    if (!this.words.length) return
    const clip = this.project.clip(this.shownClip)
    if (!clip) return
    const t = (frame - clip.position) / this.project.sampleRate // clip time
    for (const el of this.words) {
      const on = t >= Number(el.dataset.start) && t < Number(el.dataset.end)
      if (el.classList.contains('current') !== on) el.classList.toggle('current', on)
    }
  }

  _select (index, extend) {
    if (extend && this.selection) this.selection = [Math.min(this.selection[0], index), Math.max(this.selection[1], index)]
    else this.selection = [index, index]
    this._paintSelection()
    this.body.focus()
  }

  _paintSelection () {
    this.words.forEach((el, i) => el.classList.toggle('selected',
      Boolean(this.selection) && i >= this.selection[0] && i <= this.selection[1]))
    this._syncButton()
  }

  _syncButton () {
    this.cutButton.disabled = !this.editable || !this.selection
  }

  /** Move word `from` (or the selection holding it) before word `to`: the server reorders
   * the audio (POST .../transcript/edit {"order": [...]}) and writes it into the document. */
  async move (from, to) {
    const count = this.words.length
    const [first, last] = this.selection && from >= this.selection[0] && from <= this.selection[1]
      ? this.selection : [from, from]
    if (to >= first && to <= last) return
    const moved = []
    for (let i = first; i <= last; i++) moved.push(i)
    const rest = [...Array(count).keys()].filter((i) => i < first || i > last)
    const at = rest.indexOf(to)
    const order = [...rest.slice(0, at), ...moved, ...rest.slice(at)]
    this.selection = null
    this._paintSelection()
    const path = this.editUrl.replace('{project_id}', encodeURIComponent(this.project.projectId))
      .replace('{clip_id}', encodeURIComponent(this.shownClip))
    try {
      await api(path, { token: this.token, method: 'POST', body: { order, words: this.seen } })
    } catch (err) { this.notify(`Move: ${err.message}`, true) }
  }

  /** Delete the selected words: through the server's text-edit route, else planned here. */
  async cut () {
    if (!this.editable || !this.selection) return
    const [first, last] = this.selection
    const clipId = this.shownClip
    this.selection = null
    this._paintSelection()
    if (this.editUrl) {
      const path = this.editUrl.replace('{project_id}', encodeURIComponent(this.project.projectId))
        .replace('{clip_id}', encodeURIComponent(clipId))
      const indices = Array.from({ length: last - first + 1 }, (_, i) => first + i)
      try {
        await api(path, { token: this.token, method: 'POST', body: { delete: indices, words: this.seen } })
      } catch (err) { this.notify(`Cut: ${err.message}`, true) }
      return
    }
    const clip = this.project.clip(clipId)
    let plan
    try {
      plan = planCut({
        clip, transcript: this.project.transcript(clipId), first, last,
        sampleRate: this.project.sampleRate,
        trackClips: this.project.clipsOn(clip.track),
        newId: newClipId
      })
    } catch (err) {
      this.notify(`Cut: ${err.message}`, true)
      return
    }
    this.project.applyCut(plan)
  }
}
