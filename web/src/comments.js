// Comments: the project's conversation, pinned to a track and a time when one is selected.
import { h, formatTime } from './dom.js'

export class CommentsPanel {
  constructor ({ project, editable, user, selectedTrack, playhead, onSeek }) {
    Object.assign(this, { project, editable, user, selectedTrack, playhead, onSeek })
    this.signature = ''
    this.list = h('ul', { class: 'comment-list' })
    this.input = h('input', { type: 'text', class: 'comment-text edit', placeholder: 'Write a comment, Enter to post',
      disabled: !editable,
      onkeydown: (e) => {
        if (e.key !== 'Enter' || !e.target.value.trim()) return
        this.project.addComment(this.user, e.target.value.trim(), this.selectedTrack() || '', this.playhead())
        e.target.value = ''
      }
    })
    this.el = h('section', { class: 'panel comments' }, h('h3', {}, 'Comments'), this.list, this.input)
  }

  /** Redraw from the document (deferred while a comment is being edited). */
  update () {
    if (this.list.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return
    const comments = Object.values(this.project.roots.comments.toJSON())
      .sort((a, b) => a.created_at - b.created_at)
    const signature = JSON.stringify(comments)
    if (signature === this.signature) return
    this.signature = signature
    const rate = this.project.sampleRate
    this.list.replaceChildren(...comments.map((c) => {
      const track = c.track ? this.project.roots.tracks.get(c.track)?.get('name') || c.track : ''
      const where = [track, c.position >= 0 ? formatTime(c.position / rate) : ''].filter(Boolean).join(' @ ')
      return h('li', { class: 'comment', dataset: { comment: c.id },
        onclick: () => { if (c.position >= 0) this.onSeek(c.position) } },
      h('strong', {}, c.author), ' ', h('span', { class: 'comment-body' }, c.text),
      where ? h('span', { class: 'hint' }, ` · ${where}`) : '',
      h('span', { class: 'comment-actions' },
        h('button', { class: 'comment-edit edit', title: 'Edit comment', disabled: !this.editable,
          onclick: (e) => { e.stopPropagation(); this.startEdit(e.target.closest('.comment'), c) } }, '✎'),
        h('button', { class: 'comment-delete edit', title: 'Delete comment', disabled: !this.editable,
          onclick: (e) => { e.stopPropagation(); this.project.removeComment(c.id) } }, '×')))
    }))
    this.list.scrollTop = this.list.scrollHeight
  }

  /** Swap a comment's text for an input: Enter saves (as a document edit), Escape cancels. */
  startEdit (item, comment) {
    const input = h('input', { type: 'text', class: 'comment-edit-text', value: comment.text,
      onclick: (e) => e.stopPropagation(),
      onkeydown: (e) => {
        if (e.key === 'Enter' && e.target.value.trim()) {
          this.project.editComment(comment.id, e.target.value.trim())
          e.target.blur()
        } else if (e.key === 'Escape') e.target.blur()
      },
      onblur: () => { this.signature = ''; this.update() } })
    item.querySelector('.comment-body').replaceWith(input)
    input.focus()
  }
}
