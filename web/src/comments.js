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

  update () {
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
      h('strong', {}, c.author), ' ', c.text, where ? h('span', { class: 'hint' }, ` · ${where}`) : '')
    }))
    this.list.scrollTop = this.list.scrollHeight
  }
}
