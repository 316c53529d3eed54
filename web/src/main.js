// Entry point: the project list, or the project view of ?project=ID&token=T.
//
// Without ?token= the page asks who is signed in (the session cookie): a signed-in person
// gets their projects (GET /me/projects), and ?project=ID opens with a collaboration
// token derived from the session (POST /projects/ID/collab-token), renewed before it runs
// out (renewal.js).
import { h } from './dom.js'
import { features as loadFeatures } from './api.js'
import { fromLocation, claims as readClaims, canEdit, listUrl } from './session.js'
import { me as whoAmI, collabToken } from './account/client.js'
import { safePath } from './account/next.js'
import { TokenRenewal } from './renewal.js'
import { showMyProjects } from './myprojects.js'
import { Project } from './project.js'
import { Presence, renderPeople, markTouched } from './presence.js'
import { Timeline } from './timeline.js'
import { FaderWriter } from './automation.js'
import { Transport } from './transport.js'
import { EffectsPanel } from './effects.js'
import { PianoRoll } from './pianoroll.js'
import { TranscriptPanel } from './transcript.js'
import { CommentsPanel } from './comments.js'
import { MarkersPanel } from './markers.js'
import { ClipTimePanel } from './clip_time.js'
import { BounceButton } from './bounce.js'
import { ImmersivePanel } from './immersive.js'
import { SampleBrowser } from './samples.js'
import { PeakCache } from './peaks.js'
import { SourceNames } from './names.js'
import { LiveMix } from './live.js'
import { BypassedPlugins, describe as describeBypassed } from './bypassed.js'
import { Lv2Catalog } from './lv2.js'
import { uploadAudio, projectFrames } from './assets.js'
import { showProjectList, sharePanel } from './projects.js'

const root = document.getElementById('app')
const toast = h('div', { class: 'toast', role: 'status' })
document.body.append(toast)

function notify (message, isError = false) {
  toast.textContent = message
  toast.classList.toggle('error', isError)
  toast.classList.add('show')
  clearTimeout(notify.timer)
  notify.timer = setTimeout(() => toast.classList.remove('show'), 4000)
}

/**
 * A provider's sign-in comes back here as /#second_factor=TOKEN&expires_at=T[&next=PATH]
 * when two-step sign-in is on: the sign-in page asks for the code. Whether it went there.
 */
function forwardSecondFactor () {
  const fragment = new URLSearchParams(window.location.hash.slice(1))
  if (!fragment.get('second_factor')) return false
  const next = safePath(fragment.get('next'))
  fragment.delete('next')
  window.location.replace(`/account/sign-in${next ? `?next=${encodeURIComponent(next)}` : ''}#${fragment}`)
  return true
}

async function main () {
  if (forwardSecondFactor()) return
  const { projectId, token: given } = fromLocation()
  const features = loadFeatures() // asked for while the document syncs
  const me = given ? null : await whoAmI()
  if (!projectId) {
    document.title = 'Projects · Max Booster Studio'
    if (me) await showMyProjects(root, { me, notify })
    else await showProjectList(root, { token: given, claims: readClaims(given), features: await features, notify })
    document.body.dataset.ready = 'true'
    return
  }
  if (!given && !me && (await features).accounts) { // a project link opened signed out
    window.location.assign(`/account/sign-in?next=${encodeURIComponent(window.location.pathname + window.location.search)}`)
    return
  }
  const renewal = me ? new TokenRenewal({ fetchToken: () => collabToken(projectId) }) : null
  const token = renewal ? (await renewal.start()).token : given
  const claims = readClaims(token)
  if (me) claims.user = me.person.name || me.person.email // shown to the others, not a right
  await openProject({ projectId, token, claims, features, home: listUrl(given), renewal })
}

/** performance.mark(name) once the frame being prepared now has been painted. */
function markAfterPaint (name) {
  requestAnimationFrame(() => {
    const channel = new MessageChannel()
    channel.port1.onmessage = () => performance.mark(name)
    channel.port2.postMessage(null)
  })
}

async function openProject ({ projectId, token, claims, features: asked, home, renewal }) {
  const editable = canEdit(claims.role)
  document.body.classList.toggle('viewer', !editable)
  const project = new Project(projectId, token, { renew: renewal && (() => renewal.renew()) })
  const status = h('span', { class: 'status', title: 'Connection' }, 'connecting')
  const synced = project.connect((text, final) => {
    status.textContent = text
    status.dataset.state = text
    if (final) notify(`Cannot open the project: ${text}`, true)
  })
  const features = await asked
  const presence = new Presence(project.awareness, claims.user, claims.role)
  // One selection: a track (and maybe its clip), or an aux bus or the master (`bus`) chosen
  // from its timeline row or the Effects panel's chain row, whose chain the panel then shows
  // (the other panels keep the track); selecting a track or clip selects the track again.
  const view = { track: null, clip: null, bus: null }
  const selectBus = (bus) => {
    view.bus = bus
    timeline.setSelection(view.track, view.clip, view.bus)
    effects.showBus(view.bus)
  }
  const select = (track, clip) => {
    view.track = track ?? view.track
    view.clip = clip === undefined ? view.clip : clip
    view.bus = null
    presence.set('selected', view.track)
    timeline.setSelection(view.track, view.clip, view.bus)
    effects.show(view.track)
    pianoroll.show(view.track)
    immersive.show(view.track)
    transcript.show(view.clip)
    clipTime.show(view.clip)
  }
  const peaks = new PeakCache({ projectId, token, url: features.peaks || null })
  const names = new SourceNames({
    projectId, token, url: features.upload || null, onChange: () => timeline.relabel()
  })
  let writer = null // the automation writer: made with the transport, below
  const timeline = new Timeline({
    project, presence, editable, peaks, names,
    onSelectTrack: (id) => select(id, null),
    onSelectClip: (id) => select(project.clip(id)?.track, id),
    onSelectBus: selectBus,
    onDropFiles: (trackId, position, files) => dropFiles({ project, features, token: project.token, trackId, position, files }),
    onSeek: (frame) => transport.seek(frame),
    onRefuse: (message) => notify(message, true),
    onControl: (trackId, param, value, held) => writer.control(trackId, param, value, held),
    controlValue: (trackId, param) => writer?.written(trackId, param) ?? null
  })
  const transport = new Transport({
    project, presence, editable,
    onTick: (frame) => {
      const level = `${Math.min(100, Math.round(Math.sqrt(live.level()) * 140))}%`
      if (meter.firstChild.style.width !== level) meter.firstChild.style.width = level
      timeline.setPlayheads(frame, presence.others())
      writer.tick(frame)
      transcript.tick(frame)
    }
  })
  writer = new FaderWriter({ project, transport, notify })
  transport.onRecord = () => toggleRecording({ project, transport, live, features, listen })
  const bypassed = new BypassedPlugins({ projectId, token, awareness: project.awareness, editable, notify })
  timeline.bypassedOf = (trackId) => bypassed.of(trackId).map(describeBypassed)
  bypassed.onChange(() => {
    for (const [id, header] of timeline.headers) header.showBypassed(timeline.bypassedOf(id))
    effects.update()
  })
  const plugins = new Lv2Catalog({ token, account: claims.project === '*' ? projectId : null })
  project.plugins = plugins // the lv2 effects' automation lanes read their ports
  plugins.onChange(() => effects.update())
  const effects = new EffectsPanel({ project, presence, editable, bypassed, plugins,
    onSelectTrack: (id) => select(id), onSelectBus: selectBus,
    onControl: (ownerId, param, value, held) => writer.control(ownerId, param, value, held) })
  const pianoroll = new PianoRoll({ project, editable, notify, playhead: () => transport.playhead() })
  const transcript = new TranscriptPanel({
    project, editable, token, notify, names, editUrl: features.transcript_edit || null,
    transcribeUrl: features.transcribe || null,
    onSelectClip: (id) => {
      select(project.clip(id)?.track, id)
      timeline.reveal(project.clip(id)?.track) // its lane may be out of view, not mounted
    }
  })
  const comments = new CommentsPanel({
    project, editable, user: claims.user, selectedTrack: () => view.track,
    playhead: () => transport.playhead(), onSeek: (frame) => transport.seek(frame)
  })
  const clipTime = new ClipTimePanel({ project, editable, notify, playhead: () => transport.playhead() })
  const samples = new SampleBrowser({ project, editable, token, notify, timeline,
    selectedTrack: () => view.track, playhead: () => transport.playhead() })
  samples.bindDrops(timeline.el)
  const markers = new MarkersPanel({ project, editable, onSeek: (frame) => transport.seek(frame) })
  const bounce = new BounceButton({ projectId, token, path: features.bounce || null, editable, notify })
  const immersive = new ImmersivePanel({ project, presence, editable, bouncePath: features.bounce || null,
    token, notify, playhead: () => transport.playhead(), onMonitor: (monitor) => switchMonitor(monitor) })
  const switchMonitor = async (monitor) => {
    live.monitor = monitor
    if (!live.active || live.sending) return // a recording connection keeps its mix until it ends
    live.stop()
    try { await live.start() } catch (err) { notify(`Live mix: ${err.message}`, true) }
    listen.classList.toggle('on', live.active)
  }
  const live = new LiveMix({ projectId, token, available: Boolean(features.rtc), serverMs: features.rtc_receive_ms || 0 })
  live.monitor = immersive.monitor.value
  const listen = h('button', {
    class: 'listen', disabled: !features.rtc,
    title: features.rtc ? 'Listen to the live mix (WebRTC)' : 'This server offers no live mix stream',
    onclick: async () => {
      try {
        if (live.active) live.stop()
        else await live.start()
      } catch (err) { notify(`Live mix: ${err.message}`, true) }
      listen.classList.toggle('on', live.active)
    }
  }, 'Listen')
  const meter = h('span', { class: 'meter', title: 'Live mix level' }, h('span', { class: 'meter-fill' }))
  const volume = h('input', { type: 'range', class: 'volume', min: 0, max: 1.5, step: 0.01, value: 1,
    title: 'Listening volume (yours only)', oninput: (e) => live.setVolume(Number(e.target.value)) })
  const name = h('input', { type: 'text', class: 'project-name edit', disabled: !editable, spellcheck: false,
    'aria-label': 'Project name', onchange: (e) => project.setName(e.target.value.trim() || 'Untitled') })
  const people = h('ul', { class: 'people', 'aria-label': 'Who is here' })
  const badge = h('span', { class: `role-badge role-${claims.role}` }, claims.role)
  root.replaceChildren(
    h('header', { class: 'topbar' },
      h('a', { class: 'projects-link', href: home, title: 'All projects' }, '☰'),
      name, badge, transport.el, listen, meter, volume, bounce.el, samples.toggle, bypassed.el, people, status),
    editable ? '' : h('div', { class: 'viewer-banner', role: 'note' }, 'View only — you see every change live, but cannot edit.'),
    h('main', { class: 'workspace' }, timeline.el, samples.el),
    h('footer', { class: 'panels' }, effects.el, immersive.el, pianoroll.el, transcript.el, clipTime.el, markers.el, comments.el,
      claims.role === 'owner' ? sharePanel({ projectId, token: () => project.token, notify }) : ''))
  if (!editable) {
    for (const el of root.querySelectorAll('.edit')) el.disabled = true
  }

  // Document changes, gathered per microtask: which tracks and clips to redraw.
  let changes = null
  const shown = { document: false, lane: false } // drawn the whole document; a lane
  const flush = () => {
    const batch = changes
    changes = null
    document.title = `${project.name} · Max Booster Studio`
    if (document.activeElement !== name) name.value = project.name
    timeline.update(batch)
    shown.document = shown.document || batch.full
    if (!shown.lane && timeline.headers.size) {
      shown.lane = true
      markAfterPaint('daw:first-lane') // the first track lane is on screen
    }
    if (batch.full || batch.ruler) {
      transport.update()
      if (writer.transportChanged()) { // passes ended: the mute buttons show the document's
        for (const header of timeline.headers.values()) header.showMute?.()
      }
    }
    if (batch.full || !view.track || batch.tracks.has(view.track)) immersive.update()
    // the effects panel's key pickers list every track and bus by name
    if (batch.full || !view.track || batch.tracks.size || batch.buses) effects.update()
    if (batch.full || batch.midi || batch.ruler || batch.tracks.has(view.track)) pianoroll.update()
    if (batch.full || batch.transcripts || batch.clips.size) transcript.update()
    if (batch.full || batch.clips.size) clipTime.update()
    if (batch.full || batch.comments) comments.update()
    if (batch.full || batch.ruler) markers.update()
    markTouched(root, presence.others())
  }
  const collect = (rootName) => (events) => {
    if (!changes) {
      changes = { full: false, tracks: new Set(), clips: new Set(), ruler: false, transcripts: false }
      queueMicrotask(flush)
    }
    for (const event of events) {
      const key = event.path.length ? [event.path[0]] : [...event.keysChanged]
      if (rootName === 'tracks') {
        if (!event.path.length) changes.full = true // a track added or removed
        else key.forEach((id) => changes.tracks.add(String(id)))
      } else if (rootName === 'clips') {
        key.forEach((id) => changes.clips.add(String(id)))
      } else if (rootName === 'transport' || rootName === 'markers' || rootName === 'tempos' ||
        rootName === 'meters') {
        changes.ruler = true
      } else if (rootName === 'jobs') {
        // a stretch job's clip shows "rendering" while it runs
        key.forEach((id) => { const clip = project.roots.jobs.get(id)?.get('clip'); if (clip) changes.clips.add(String(clip)) })
      } else if (rootName === 'transcripts') {
        changes.transcripts = true
        key.forEach((id) => changes.clips.add(String(id)))
      } else if (rootName === 'comments') {
        changes.comments = true
      } else if (rootName === 'midi_clips') {
        changes.midi = true
      } else if (rootName === 'buses') {
        changes.buses = true // an aux bus's or the master's chain, maybe the one shown
      } else if (rootName === 'meta') {
        changes.full = true
      }
    }
  }
  for (const [rootName, map] of Object.entries(project.roots)) map.observeDeep(collect(rootName))
  const refresh = () => {
    collect('meta')([{ path: [], keysChanged: new Set() }])
  }
  const describe = (key) => {
    const [kind, id, ...rest] = key.split(':')
    if (kind === 'track') return `${project.roots.tracks.get(id)?.get('name') || id} ${rest.join(' ').replace('gain_db', 'fader')}`
    if (kind === 'bus') return `${id === 'master' ? 'Master' : `bus ${project.roots.buses.get(id)?.get('name') || id}`} ${rest.join(' ')}`
    if (kind === 'clip') return `clip ${project.clip(id) ? names.label(project.clip(id).source) : id}`
    return [id, ...rest].join(' ')
  }
  presence.onChange(() => {
    renderPeople(people, presence, describe)
    markTouched(root, presence.others())
    timeline.showGhosts(presence.others())
  })
  renderPeople(people, presence, describe)
  const typing = (el) => el && (el.isContentEditable || el.tagName === 'TEXTAREA' ||
    (el.tagName === 'INPUT' && ['text', 'number'].includes(el.type)))
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && !typing(e.target) && ['z', 'Z', 'y'].includes(e.key)) {
      e.preventDefault()
      if (!editable) return
      if (e.key === 'y' || e.shiftKey) project.redo()
      else project.undo()
      return
    }
    if ((e.key === 'Delete' || e.key === 'Backspace') && !typing(e.target) && view.clip) {
      e.preventDefault()
      if (editable && project.clip(view.clip)) project.removeClip(view.clip)
      return
    }
    if ((e.key === 'm' || e.key === 'M') && !typing(e.target) && !e.ctrlKey && !e.metaKey) {
      e.preventDefault()
      if (editable) project.addMarker(transport.playhead(), `Marker ${project.roots.markers.size + 1}`)
      return
    }
    if (e.key === '+' || e.key === '=' || e.key === '-') {
      if (typing(e.target)) return
      timeline.setZoom(timeline.zoom * (e.key === '-' ? 1 / 1.5 : 1.5))
      return
    }
    transport.handleKey(e)
  })
  if (renewal) {
    renewal.onToken = ({ token: fresh, role }) => {
      project.setToken(fresh) // the WebSocket presents it when it reconnects
      for (const part of [peaks, names, bounce, live, transcript, immersive, samples, bypassed, plugins]) part.token = fresh // and HTTP calls
      if (role !== claims.role) notify(`Your role on this project is now ${role}: reload the page to use it`)
    }
    renewal.onFail = (err) => notify(`Cannot renew your access to this project: ${err.message}`, true)
  }
  window.daw = { project, presence, timeline, transport, live, features, renewal, writer, pianoroll, immersive, samples, bypassed, plugins, effects } // for tests and the console
  await synced
  performance.mark('daw:synced')
  status.textContent = 'connected'
  // The synced document has been drawn already where it arrived after the observers; an
  // empty one (or one that came before them) has not.
  if (!shown.document) refresh()
  bypassed.load() // not awaited: announcements follow it anyway
  // the catalogue is asked for when first needed (Lv2Catalog.ensure), not here
  document.body.dataset.ready = 'true'
  await Promise.resolve() // that redraw runs first
  await timeline.settled() // every lane in view shows its waveforms
  markAfterPaint('daw:interactive')
}

async function dropFiles ({ project, features, token, trackId, position, files }) {
  for (const file of files) {
    try {
      notify(`uploading ${file.name}…`)
      const asset = await uploadAudio({ features, projectId: project.projectId, token, blob: file, name: file.name })
      const length = projectFrames(asset.frames, asset.sampleRate, project.sampleRate)
      const at = project.firstFree(trackId, position, length) // never over another clip
      project.addClip(trackId, { source: asset.source, position: at, length })
      notify(`${file.name} added`)
      position = at + length
    } catch (err) {
      notify(`${file.name}: ${err.message}`, true)
    }
  }
}

/** A take whose live-mix delay moved more than this (ms) is reported as possibly off. */
const TAKE_DRIFT_WARN_MS = 30

async function toggleRecording ({ project, transport, live, features, listen }) {
  if (project.transport().recording) {
    const position = transport.playhead()
    let overTake = null
    try { // the round trip over the take places it, declared before the take ends
      overTake = await live.takeRoundTrip()
      if (overTake) await live.declare(overTake)
    } catch (err) { notify(`Recording: the take keeps the round trip measured before it (${err.message})`, true) }
    const drift = Math.round(live.takeDrift())
    live.lastTake = { roundTrip: overTake || live.declared, drift }
    project.setTransport({ recording: false, playing: false, position })
    live.stop() // ends the microphone; the server adds the take to the armed tracks
    if (drift > TAKE_DRIFT_WARN_MS) {
      notify(`The live mix's delay moved by ${drift} ms during the take (a busy computer or ` +
        'network): parts of it may be off by up to that much. Nudge them, or record again.', true)
    }
    listen.classList.remove('on')
    return
  }
  const armed = project.tracks().filter((t) => t.arm)
  if (!armed.length) return notify('Arm a track (R) to record into it', true)
  // The take runs from the playhead on; the engine refuses clips that overlap on a track.
  const from = transport.playhead()
  const inTheWay = armed.filter((t) => project.clipsOn(t.id).some((c) => c.position + c.length > from))
  if (inTheWay.length) {
    return notify(`Recording here would run into clips on ${inTheWay.map((t) => t.name).join(', ')}: ` +
      'move the playhead after them or arm an empty track', true)
  }
  if (!features.rtc) return notify('Recording needs the server\'s WebRTC endpoint, which it does not offer', true)
  let latency
  try {
    const mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false } })
    // The take is placed earlier by the round trip, measured on the connection that
    // records once its jitter buffer has settled, and declared to the server there.
    live.stop()
    await live.start({ mic })
    listen.classList.add('on')
    notify('measuring the round trip…')
    latency = await live.roundTrip(mic)
    await live.declare(latency)
    await live.beginTake()
  } catch (err) { return notify(`Recording: ${err.message}`, true) }
  project.setTransport({ recording: true, playing: true, position: transport.playhead() })
  notify(`recording into ${armed.map((t) => t.name).join(', ')} (round trip ${Math.round(latency.total)} ms)`)
}

main().catch((err) => {
  root.replaceChildren(h('pre', { class: 'fatal' }, `The page failed to start: ${err.message}`))
  throw err
})
