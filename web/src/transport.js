// Transport: play, stop, loop, tempo, position; the local playhead clock; keyboard shortcuts.
//
// `playing`, `position` (the frame playback started from), loop, tempo and MIDI note chase
// (`chase_notes`: a seek restarts the notes held across it; docs/midi.md) live in the
// document. Each client runs its own playhead clock from the moment it saw playback
// start and publishes it through awareness.
import { h, setProp, formatTime } from './dom.js'
import { barBeatAt, gridStep } from './tempo.js'

export class Transport {
  constructor ({ project, presence, editable, onTick }) {
    Object.assign(this, { project, presence, editable, onTick })
    this.startedAt = null // performance.now() when the current run started
    this.startedFrom = 0
    this.last = { playing: false, position: 0 }
    const button = (cls, label, title, onclick) => h('button', { class: `${cls} edit`, title, onclick, disabled: !editable }, label)
    this.play = button('play', '▶', 'Play / pause (Space)', () => this.toggle())
    this.stop = button('stop', '■', 'Stop and return to start', () => this.stopAndRewind())
    this.loop = button('loop', '⟲', 'Loop (L)', () => this.toggleLoop())
    this.record = button('record', '●', 'Record into armed tracks', () => this.onRecord && this.onRecord())
    this.chase = button('chase', '♪↦', 'MIDI note chase: a seek restarts the notes held across it ' +
      '(controllers are chased either way)', () => this.toggleChase())
    this.tempo = h('input', { type: 'number', class: 'tempo edit', min: 10, max: 999, step: 0.1,
      title: 'Tempo (BPM)', disabled: !editable,
      onchange: (e) => {
        const bpm = Number(e.target.value)
        if (bpm >= 10 && bpm <= 999) project.setTransport({ tempo: bpm })
        else e.target.value = project.transport().tempo
      }
    })
    this.clock = h('span', { class: 'clock', title: 'Position' }, '0:00.000')
    this.bars = h('span', { class: 'bars' }, '1.1')
    presence.bind(this.tempo, 'transport:tempo')
    this.el = h('div', { class: 'transport' }, this.play, this.stop, this.loop, this.record,
      this.chase, h('label', { class: 'mini' }, 'BPM'), this.tempo, this.clock, this.bars)
    this._frame = this._frame.bind(this)
    requestAnimationFrame(this._frame)
    setInterval(() => this._publish(), 100)
  }

  /** The playhead in frames now. */
  playhead () {
    return this._frameAt(this.project.transport())
  }

  /** The playhead under transport `t`: like dawserver/playhead.py, a run that started
   * before the loop's end wraps there; one that started after it never loops. */
  _frameAt (t) {
    if (!t.playing || this.startedAt === null) return Number(t.position) || 0
    let frame = this.startedFrom + ((performance.now() - this.startedAt) / 1000) * this.project.sampleRate
    if (t.loop_enabled && t.loop_end > t.loop_start && this.startedFrom < t.loop_end && frame >= t.loop_end) {
      frame = t.loop_start + ((frame - t.loop_start) % (t.loop_end - t.loop_start))
    }
    return Math.round(frame)
  }

  /** Follow the document (called on every transport change). */
  update () {
    const t = this.project.transport()
    if (t.playing && (!this.last.playing || t.position !== this.last.position)) {
      this.startedAt = performance.now()
      this.startedFrom = Number(t.position) || 0
    } else if (t.playing && this.lastTransport && loopChanged(t, this.lastTransport)) {
      // The loop changed mid-run: carry on from where the old loop had got to.
      this.startedFrom = this._frameAt(this.lastTransport)
      this.startedAt = performance.now()
    }
    if (!t.playing) this.startedAt = null
    this.last = { playing: t.playing, position: t.position }
    this.lastTransport = t
    this.play.classList.toggle('on', Boolean(t.playing))
    this.play.textContent = t.playing ? '❚❚' : '▶'
    this.record.classList.toggle('on', Boolean(t.recording))
    this.loop.classList.toggle('on', Boolean(t.loop_enabled))
    this.loop.setAttribute('aria-pressed', t.loop_enabled ? 'true' : 'false')
    this.chase.classList.toggle('on', t.chase_notes !== false)
    this.chase.setAttribute('aria-pressed', t.chase_notes !== false ? 'true' : 'false')
    if (document.activeElement !== this.tempo) setProp(this.tempo, 'value', String(t.tempo))
  }

  toggle () {
    if (!this.editable) return
    const t = this.project.transport()
    if (t.playing) this.project.setTransport({ playing: false, recording: false, position: this.playhead() })
    else this.project.setTransport({ playing: true, position: Number(t.position) || 0 })
  }

  stopAndRewind () {
    if (this.editable) this.project.setTransport({ playing: false, recording: false, position: 0 })
  }

  toggleLoop () {
    if (!this.editable) return
    const t = this.project.transport()
    if (t.loop_end > t.loop_start) {
      this.project.setTransport({ loop_enabled: !t.loop_enabled })
      return
    }
    const end = this.project.endFrame() || this.project.sampleRate * 8
    this.project.setTransport({ loop_enabled: true, loop_start: 0, loop_end: end })
  }

  /** Turn MIDI note chase on or off for the project (it applies at the next seek). */
  toggleChase () {
    if (this.editable) this.project.setTransport({ chase_notes: this.project.transport().chase_notes === false })
  }

  /** Move the playhead `steps` beats (with `bars`: bars) of the tempo map on from the
   * nearest one (negative: back), as the ruler draws them. */
  nudge (steps, bars = false) {
    if (!this.editable) return
    const rate = this.project.sampleRate
    const seconds = gridStep(this.project.tempoMap(), this.playhead() / rate, steps, bars)
    this.project.setTransport({ position: Math.max(0, Math.round(seconds * rate)) })
  }

  seek (frame) {
    if (this.editable) this.project.setTransport({ position: frame })
  }

  /** Space, L, arrows (shift: a bar), Home. Returns whether the key was handled. */
  handleKey (event) {
    const target = event.target
    if (target && (target.isContentEditable || (target.tagName === 'INPUT' && target.type !== 'range' &&
      target.type !== 'checkbox' && target.type !== 'color') || target.tagName === 'TEXTAREA' || target.tagName === 'SELECT')) return false
    if (event.code === 'Space') this.toggle()
    else if (event.key === 'l' || event.key === 'L') this.toggleLoop()
    else if (target?.type === 'range') return false
    else if (event.key === 'ArrowLeft') this.nudge(-1, event.shiftKey)
    else if (event.key === 'ArrowRight') this.nudge(1, event.shiftKey)
    else if (event.key === 'Home') this.seek(0)
    else return false
    event.preventDefault()
    if (target?.tagName === 'BUTTON') target.blur() // so the key does not also press it
    return true
  }

  /** Every frame: the clock, bars and onTick; only what changed is written, so a page at
   * rest does not lay out and paint 60 times a second. */
  _frame () {
    const frame = this.playhead()
    const rate = this.project.sampleRate
    setProp(this.clock, 'textContent', formatTime(frame / rate))
    setProp(this.bars, 'textContent', barBeatAt(this.project.tempoMap(), frame / rate))
    this.onTick(frame)
    requestAnimationFrame(this._frame)
  }

  _publish () {
    this.presence.set('playhead', this.playhead())
  }
}

function loopChanged (a, b) {
  return a.loop_enabled !== b.loop_enabled || a.loop_start !== b.loop_start || a.loop_end !== b.loop_end
}
