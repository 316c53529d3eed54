// Tiny DOM helpers: element construction and text formatting.

/** Create an element: h('button', {class: 'x', onclick: f}, 'text', child). */
export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value)
    } else if (key === 'class') {
      el.className = value
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value)
    } else if (key in el && typeof value !== 'string') {
      el[key] = value
    } else {
      el.setAttribute(key, value === true ? '' : value)
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

/**
 * Whether a slider is held (pointer down to up), for controls whose moves the automation
 * writer records: spread `attrs` into the slider's attributes; `release({target})` runs
 * once, with the slider as `target`, when a press ends: the pointer let go anywhere (also
 * off a slider taken out of the page mid-press), the browser taking the pointer away
 * (pointercancel: a touch turned into a scroll), the change that follows, or the window
 * losing focus mid-press. A key press is never held: its move is a touch and release at
 * once.
 */
export function holdTracker (release) {
  let held = null // the pressed slider
  const ends = ['pointerup', 'pointercancel']
  const up = () => {
    if (held === null) return
    const slider = held
    held = null
    window.removeEventListener('blur', up)
    for (const end of ends) window.removeEventListener(end, up, true)
    release({ target: slider })
  }
  const down = (e) => {
    held = e.currentTarget
    // the window losing focus mid-press (another app took it) ends it: no pointer up
    // comes; neither does one to a slider no longer in the page, so the window hears it
    window.addEventListener('blur', up)
    for (const end of ends) window.addEventListener(end, up, true)
  }
  return { attrs: { onpointerdown: down, onpointerup: up, onchange: up }, held: () => held !== null }
}

// The element a pointer pressed, until it is let go or the window loses focus (then no
// pointer up comes). Focus cannot tell: Safari (and Firefox on macOS) give a pressed
// range input no focus.
let pressed = null
if (typeof document !== 'undefined') {
  document.addEventListener('pointerdown', (e) => { pressed = e.target instanceof Element ? e.target : null }, true)
  for (const end of ['pointerup', 'pointercancel']) window.addEventListener(end, () => { pressed = null }, true)
  // not captured: a captured blur is also every element's losing focus
  window.addEventListener('blur', () => { pressed = null })
}

/** Follow a pointer drag from its press: `move(e)` on each move, then once `end(e,
 * cancelled)` when the pointer is let go, or with `cancelled` true when the browser takes
 * the pointer away (pointercancel: a touch turned into a scroll, the system took it). No
 * pointer up comes after a cancel: without it the drag went on under an unpressed pointer. */
export function followDrag (move, end) {
  const finish = (e, cancelled) => {
    window.removeEventListener('pointermove', move)
    window.removeEventListener('pointerup', up)
    window.removeEventListener('pointercancel', cancel)
    end(e, cancelled)
  }
  const up = (e) => finish(e, false)
  const cancel = (e) => finish(e, true)
  window.addEventListener('pointermove', move)
  window.addEventListener('pointerup', up)
  window.addEventListener('pointercancel', cancel)
}

/** Whether the user holds `el` now (a slider mid-drag): a refresh leaves its value alone. */
export function isHeld (el) {
  return el !== null && el !== undefined && pressed === el
}

/** The control inside `container` the user holds now, or null. */
export function heldControl (container) {
  return pressed !== null && pressed.isConnected && container.contains(pressed) ? pressed : null
}

/** Call `fn` once the held `control` is let go (pointer up or cancelled, the window's focus
 * lost, or the control no longer held), after the control's own release handlers have run. */
function afterRelease (control, fn) {
  let timer = null
  const ends = ['pointerup', 'pointercancel']
  const done = () => {
    for (const end of ends) window.removeEventListener(end, done, true)
    window.removeEventListener('blur', done)
    clearInterval(timer)
    setTimeout(fn, 0)
  }
  for (const end of ends) window.addEventListener(end, done, true)
  window.addEventListener('blur', done) // the window's own, not an element's
  timer = setInterval(() => { if (!control.isConnected || !isHeld(control)) done() }, 500)
}

const waitingForRelease = new WeakSet()

/**
 * Whether a rebuild of the controls in `container` waits: a control in it is held (a
 * slider mid-drag) and `keeps(control)` says it still shows what it showed. Replacing a
 * held slider ends its drag: the later moves go nowhere and an automation pass never
 * hears the release. `rebuild` runs once the control is let go.
 */
export function deferWhileHeld (container, keeps, rebuild) {
  const control = heldControl(container)
  if (!control || !keeps(control)) return false
  if (!waitingForRelease.has(container)) {
    waitingForRelease.add(container)
    afterRelease(control, () => {
      waitingForRelease.delete(container)
      rebuild()
    })
  }
  return true
}

/** Set a property only when it differs (keeps focus, selection and caret intact). */
export function setProp (el, name, value) {
  if (el[name] !== value) el[name] = value
}

/** "m:ss.mmm" for a time in seconds. */
export function formatTime (seconds) {
  const s = Math.max(0, seconds)
  const minutes = Math.floor(s / 60)
  const rest = (s - minutes * 60).toFixed(3).padStart(6, '0')
  return `${minutes}:${rest}`
}

/** "-6.0 dB"; "-inf dB" only for silence itself: a fader's bottom (-60 dB) still plays,
 * at a thousandth of full scale, and says so. */
export function formatDb (db) {
  return db === -Infinity ? '-inf dB' : `${db > 0 ? '+' : ''}${db.toFixed(1)} dB`
}

/** "L 30" / "C" / "R 100" for a pan in [-1, 1]. */
export function formatPan (pan) {
  const v = Math.round(pan * 100)
  return v === 0 ? 'C' : v < 0 ? `L ${-v}` : `R ${v}`
}
