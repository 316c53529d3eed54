// Markers: the timeline's named positions, listed to seek to, rename and delete.
import { h, formatTime } from './dom.js'

export class MarkersPanel {
  constructor ({ project, editable, onSeek }) {
    Object.assign(this, { project, editable, onSeek })
    this.signature = ''
    this.list = h('ul', { class: 'marker-list' })
    this.el = h('section', { class: 'panel markers' }, h('h3', {}, 'Markers'),
      h('p', { class: 'hint marker-hint' }, 'Press M to add a marker at the playhead.'), this.list)
  }

  /** Redraw from the document (deferred while a marker name is being typed). */
  update () {
    if (this.list.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return
    const markers = Object.values(this.project.roots.markers.toJSON())
      .sort((a, b) => a.position - b.position || String(a.id).localeCompare(String(b.id)))
    const signature = JSON.stringify(markers)
    if (signature === this.signature) return
    this.signature = signature
    const rate = this.project.sampleRate
    this.list.replaceChildren(...markers.map((m) => h('li', { class: 'marker-item', dataset: { marker: m.id } },
      h('button', { class: 'marker-seek', title: 'Go to this marker', onclick: () => this.onSeek(m.position) },
        formatTime(m.position / rate)),
      h('input', { type: 'text', class: 'marker-name edit', value: m.name, disabled: !this.editable,
        'aria-label': 'Marker name', spellcheck: false,
        onchange: (e) => this.project.renameMarker(m.id, e.target.value.trim()),
        onkeydown: (e) => { if (e.key === 'Enter') e.target.blur() },
        onblur: () => this.update() }),
      h('button', { class: 'marker-delete edit', title: 'Delete marker', disabled: !this.editable,
        onclick: () => this.project.removeMarker(m.id) }, '×'))))
  }
}
