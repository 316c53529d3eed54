// The sample browser: a side drawer that searches the account's sample library
// (GET /samples), auditions a result matched to the project's tempo and key
// (GET /samples/ID/preview), and puts one on a track (POST /projects/ID/samples), by
// dragging it onto a lane or with "Add" (the selected track, at the playhead). The server
// writes the clip into the shared document, so every client sees it.
import { h } from './dom.js'
import { api } from './api.js'

/** The drag type a result carries (its sample id); lanes accept it. */
export const SAMPLE_TYPE = 'application/x-daw-sample'
const NOTES = ['C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B']
const KEYS = [...NOTES.map((n) => `${n} major`), ...NOTES.map((n) => `${n} minor`)]
const CLASSES = ['kick', 'snare', 'hat', 'bass', 'pad', 'vocal', 'other']
let made = 0 // ids for labels, unique per page

/** "1.25 s" / "12.0 s" for a duration. */
function seconds (s) { return `${Number(s).toFixed(s < 10 ? 2 : 1)} s` }

export class SampleBrowser {
  /**
   * `selectedTrack()` the selected track id (or null), `playhead()` in project frames,
   * `timeline` for lane positions (pxToFrames), `notify(message, isError)` for the toast.
   */
  constructor ({ project, editable, token, notify, selectedTrack, playhead, timeline }) {
    Object.assign(this, { project, editable, token, notify, selectedTrack, playhead, timeline })
    this.results = []
    this.pageSize = 50 // results per page (1..200)
    this.cursor = null // the next page's, when there is one
    this.previewUrl = null
    this.searching = 0
    const id = `samples-${++made}`
    const field = (label, input) => h('label', { class: 'sample-field' }, h('span', {}, label), input)
    this.q = h('input', { type: 'search', name: 'q', placeholder: 'kick, dark pad…', 'aria-label': 'Search text' })
    this.tags = h('input', { type: 'text', name: 'tags', placeholder: 'trap, drums', 'aria-label': 'Tags (comma-separated, all required)' })
    this.bpmMin = h('input', { type: 'number', name: 'bpm_min', min: 20, max: 400, step: 1, 'aria-label': 'Lowest BPM' })
    this.bpmMax = h('input', { type: 'number', name: 'bpm_max', min: 20, max: 400, step: 1, 'aria-label': 'Highest BPM' })
    this.key = h('select', { name: 'key', 'aria-label': 'Key' }, h('option', { value: '' }, 'any key'),
      KEYS.map((k) => h('option', { value: k }, k)))
    this.type = h('select', { name: 'type', 'aria-label': 'Type' }, h('option', { value: '' }, 'any type'),
      h('option', { value: 'loop' }, 'loop'), h('option', { value: 'one-shot' }, 'one-shot'))
    this.klass = h('select', { name: 'class', 'aria-label': 'Class' }, h('option', { value: '' }, 'any class'),
      CLASSES.map((c) => h('option', { value: c }, c)))
    this.projectKey = h('select', { name: 'project_key', 'aria-label': 'Project key (previews and adds are shifted to it)' },
      h('option', { value: '' }, 'no key'), KEYS.map((k) => h('option', { value: k }, k)))
    this.projectKey.value = this._storedKey()
    this.projectKey.addEventListener('change', () => this._storeKey(this.projectKey.value))
    this.form = h('form', { class: 'sample-search', role: 'search', 'aria-label': 'Search the sample library',
      onsubmit: (e) => { e.preventDefault(); this.search() } },
    field('Text', this.q), field('Tags', this.tags),
    h('div', { class: 'sample-row' }, field('BPM from', this.bpmMin), field('to', this.bpmMax)),
    h('div', { class: 'sample-row' }, field('Key', this.key), field('Type', this.type), field('Class', this.klass)),
    h('button', { type: 'submit', class: 'sample-go' }, 'Search'))
    this.count = h('p', { class: 'sample-count hint', role: 'status', 'aria-live': 'polite' })
    this.list = h('ul', { class: 'sample-results', 'aria-label': 'Samples found' })
    this.more = h('button', { type: 'button', class: 'sample-more', hidden: true, onclick: () => this.search(true) },
      'More results')
    this.audio = h('audio', { class: 'sample-audio', controls: true, 'aria-label': 'Sample preview' })
    this.el = h('aside', { class: 'sample-drawer', id, hidden: true, 'aria-label': 'Sample browser' },
      h('h2', {}, 'Samples'),
      h('div', { class: 'sample-match' }, field('Match key', this.projectKey),
        h('span', { class: 'hint' }, 'Previews follow the project tempo.')),
      this.form, this.count, this.list, this.more, this.audio)
    this.toggle = h('button', { class: 'samples-toggle', type: 'button', 'aria-controls': id,
      'aria-expanded': 'false', title: 'Sample browser', onclick: () => this.open(this.el.hidden) }, 'Samples')
  }

  /** Show (true) or hide the drawer; the first opening searches everything. */
  open (show = true) {
    this.el.hidden = !show
    this.toggle.setAttribute('aria-expanded', String(show))
    this.toggle.classList.toggle('on', show)
    if (show) {
      this.q.focus()
      if (!this.searched) this.search()
    }
  }

  /** The project's tempo at the playhead (BPM). */
  tempo () {
    const map = this.project.tempoMap()
    return map.bpmAt(map.secondsToBeat(this.playhead() / this.project.sampleRate))
  }

  /** The query string of the form's filters. */
  query () {
    const params = new URLSearchParams()
    const set = (name, value) => { if (String(value).trim()) params.set(name, String(value).trim()) }
    set('q', this.q.value)
    set('tags', this.tags.value)
    set('bpm_min', this.bpmMin.value)
    set('bpm_max', this.bpmMax.value)
    set('key', this.key.value)
    set('type', this.type.value)
    set('class', this.klass.value)
    params.set('limit', String(this.pageSize))
    return params
  }

  /**
   * Search with the form's filters and list the results (the latest search wins); `more`
   * appends the next page of the same search instead.
   */
  async search (more = false) {
    this.searched = true
    const round = ++this.searching
    const params = more ? this.lastQuery : this.query()
    if (more && this.cursor) params.set('cursor', this.cursor)
    this.lastQuery = params
    if (!more) this.count.textContent = 'searching…'
    let page
    try {
      page = await api(`/samples?${params}`, { token: this.token })
    } catch (err) {
      if (round === this.searching) this.count.textContent = `Cannot search: ${err.message}`
      return
    }
    if (round !== this.searching) return
    this.results = more ? [...this.results, ...page.samples] : page.samples
    this.cursor = page.next_cursor || null
    this.more.hidden = !this.cursor
    const shown = this.results.length
    this.count.textContent = (page.total === 1 ? '1 sample' : `${page.total} samples`) +
      (page.total > shown ? ` (${shown} shown)` : '')
    const rows = page.samples.map((s) => this._row(s))
    if (more) this.list.append(...rows)
    else this.list.replaceChildren(...rows)
  }

  _row (sample) {
    const facts = [sample.bpm ? `${Math.round(sample.bpm * 10) / 10} BPM` : '', sample.key || '',
      seconds(sample.duration), sample.type, sample.class].filter(Boolean)
    const row = h('li', { class: 'sample', draggable: this.editable ? 'true' : 'false', dataset: { sample: sample.id },
      ondragstart: (e) => {
        e.dataTransfer.setData(SAMPLE_TYPE, sample.id)
        e.dataTransfer.setData('text/plain', sample.name)
        e.dataTransfer.effectAllowed = 'copy'
      } },
    h('button', { type: 'button', class: 'sample-play', 'aria-label': `Audition ${sample.name}`,
      onclick: () => this.audition(sample) }, '▶'),
    h('span', { class: 'sample-name', title: sample.name }, sample.name),
    h('span', { class: 'sample-facts hint' }, facts.join(' · ')),
    h('button', { type: 'button', class: 'sample-add edit', disabled: !this.editable,
      'aria-label': `Add ${sample.name} to the selected track at the playhead`,
      title: 'Add to the selected track (a new track when none is selected) at the playhead',
      onclick: () => this.add(sample.id, this.selectedTrack(), this.playhead()) }, 'Add'))
    return row
  }

  /** Play the sample stretched to the project tempo and shifted to its key. */
  async audition (sample) {
    const params = new URLSearchParams({ tempo: String(this.tempo()) })
    if (this.projectKey.value) params.set('key', this.projectKey.value)
    for (const li of this.list.children) li.classList.toggle('playing', li.dataset.sample === sample.id)
    try {
      // an <audio> cannot send the token: fetch the WAV and play it from memory
      const response = await api(`/samples/${encodeURIComponent(sample.id)}/preview?${params}`,
        { token: this.token, raw: true })
      const blob = await response.blob()
      if (this.previewUrl) URL.revokeObjectURL(this.previewUrl)
      this.previewUrl = URL.createObjectURL(blob)
      this.audio.src = this.previewUrl
      this.audio.dataset.sample = sample.id
      this.audio.dataset.method = response.headers.get('X-Preview-Method') || ''
      await this.audio.play().catch(() => {}) // a browser may refuse autoplay; controls stay
    } catch (err) {
      this.notify(`Preview of ${sample.name}: ${err.message}`, true)
    }
  }

  /** The length in project frames `sample` will have at `tempo` (the server stretches a
   * sample with a BPM by tempo / BPM; a pitch shift keeps the length). */
  matchedFrames (sample, tempo) {
    const ratio = sample.bpm ? tempo / sample.bpm : 1
    return Math.ceil(sample.duration / ratio * this.project.sampleRate)
  }

  /**
   * Put a sample on `trackId` (a new track when null) at `position` project frames, or
   * the first place after it where the matched sample fits (never over another clip).
   */
  async add (sampleId, trackId, position) {
    if (!this.editable) return
    const sample = this.results.find((s) => s.id === sampleId)
    const tempo = this.tempo()
    let at = Math.max(0, Math.round(position))
    if (trackId && sample) at = this.project.firstFree(trackId, at, this.matchedFrames(sample, tempo))
    const body = { sample_id: sampleId, position_s: at / this.project.sampleRate, tempo }
    if (trackId) body.track_id = trackId
    if (this.projectKey.value) body.key = this.projectKey.value
    const name = sample?.name || 'sample'
    try {
      this.notify(`adding ${name}…`)
      await api(`/projects/${encodeURIComponent(this.project.projectId)}/samples`,
        { token: this.token, method: 'POST', body })
      this.notify(`${name} added`)
    } catch (err) {
      this.notify(`${name}: ${err.message}`, true)
    }
  }

  /** Accept dragged results on the lanes inside `area` (the timeline's element). */
  bindDrops (area) {
    const laneOf = (e) => e.dataTransfer?.types.includes(SAMPLE_TYPE) ? e.target.closest?.('.lane') : null
    area.addEventListener('dragover', (e) => {
      const lane = laneOf(e)
      if (!lane || !this.editable) return
      e.preventDefault()
      e.dataTransfer.dropEffect = 'copy'
      lane.classList.add('drop-target')
    })
    area.addEventListener('drop', (e) => {
      const lane = laneOf(e)
      if (!lane) return
      e.preventDefault()
      lane.classList.remove('drop-target')
      if (!this.editable) return
      const x = e.clientX - lane.getBoundingClientRect().left
      this.add(e.dataTransfer.getData(SAMPLE_TYPE), lane.dataset.track,
        Math.max(0, Math.round(this.timeline.pxToFrames(x))))
    })
  }

  _storedKey () {
    try { return localStorage.getItem(`daw:key:${this.project.projectId}`) || '' } catch { return '' }
  }

  _storeKey (value) {
    try { localStorage.setItem(`daw:key:${this.project.projectId}`, value) } catch { /* private mode */ }
  }
}
