// The composer: one post, a variant per channel, checked by the server as the person types
// (POST /api/social/compose/check: each network's own rules), a preview per network, media
// from the person's projects, images and videos uploaded to the account (POST
// /api/social/media; the server reads what each is and refuses what no post can carry), a
// publish time (typed, the next free slot, or a best time) and
// "Save draft" / "Submit for approval". Nothing here judges a post: the server does.
// `openEdit(post)` loads a stored post instead; "Save changes" sends the changes (PATCH),
// which supersede its queued publish (and send an approved post back when its content
// changed): the server's answer says what state it is in now.
import { h } from '../dom.js'
import { projectMedia } from './api.js'
import { channelName } from './filters.js'
import { renderPreview } from './preview.js'
import { scheduleField } from './schedule.js'

const CHECK_DELAY_MS = 250
const RENDER_POLL_MS = 500
const AUDIO_TYPES = { wav: 'audio/wav', flac: 'audio/flac', aiff: 'audio/aiff' }
/** What the media upload takes (the server decides from the content; this only filters the picker). */
const UPLOAD_TYPES = 'image/jpeg,image/png,image/webp,image/gif,video/mp4,video/quicktime'

/** A project asset as a post's media reference (MediaRef). */
function mediaRef ({ asset }) {
  return {
    asset_id: asset.id,
    kind: 'audio',
    content_type: AUDIO_TYPES[String(asset.format).toLowerCase()] || 'application/octet-stream',
    size_bytes: asset.bytes,
    duration_s: asset.duration
  }
}

const minutes = (seconds) => `${Math.floor(seconds / 60)}:${String(Math.round(seconds % 60)).padStart(2, '0')}`

function labelled (id, text, control, hint = '') {
  control.id = id
  return h('div', { class: 'field wide' }, h('label', { for: id }, text), control,
    hint ? h('span', { class: 'hint' }, hint) : '')
}

/**
 * The composer dialog. `api()` is the chosen account's API, `channels()` its channels,
 * `say(text, kind)` the page's live region, `created(post)` runs after a save.
 */
export function composer ({ api, channels, say, created }) {
  const state = { media: [], kept: [], videos: [], uploads: [], library: [], editing: null, variants: new Map(), sequence: 0, checks: 0, last: null, timer: 0 }
  const text = h('textarea', { rows: 5, name: 'text', oninput: later })
  const link = h('input', { type: 'url', name: 'link', placeholder: 'https://…', oninput: later })
  const firstComment = h('textarea', { rows: 2, name: 'first_comment', oninput: later })
  const campaign = h('input', { type: 'text', name: 'campaign' })
  const chosen = h('fieldset', { class: 'channels-chosen' }, h('legend', {}, 'Channels'))
  const variants = h('div', { class: 'variants' })
  const previews = h('div', { class: 'previews', 'aria-live': 'polite' })
  const mediaList = h('ul', { class: 'media-list' })
  const mediaSelect = h('select', { name: 'media-pick' })
  const mediaStatus = h('span', { class: 'hint' })
  const uploadInput = h('input', { type: 'file', name: 'media-upload', accept: UPLOAD_TYPES, multiple: true, onchange: uploadFiles })
  const uploadSelect = h('select', { name: 'upload-pick' })
  const uploadStatus = h('span', { class: 'hint', role: 'status' })
  const outcome = h('p', { class: 'compose-outcome', role: 'status' })
  const schedule = scheduleField({ api, chosenChannels: () => checkedChannels() })

  function checkedChannels () {
    const ids = [...chosen.querySelectorAll('input[type=checkbox]:checked')].map((box) => box.value)
    return channels().filter((c) => ids.includes(c.channel_id))
  }

  /** The post as the routes take it; variant fields left empty follow the post's own. */
  function body () {
    const value = (control) => control.value.trim() === '' ? null : control.value
    return {
      text: text.value,
      media: [...state.kept, ...state.videos.map((v) => v.ref), ...state.uploads.map((u) => u.media),
        ...state.media.map(mediaRef)],
      link: value(link),
      first_comment: value(firstComment),
      targets: checkedChannels().map((c) => {
        const fields = state.variants.get(c.channel_id)
        const target = { channel_id: c.channel_id }
        if (fields) {
          if (fields.text.value.trim()) target.text = fields.text.value
          if (fields.firstComment.value.trim()) target.first_comment = fields.firstComment.value
          if (fields.noMedia.checked) target.media = []
        }
        return target
      })
    }
  }

  function later () {
    clearTimeout(state.timer)
    state.timer = setTimeout(check, CHECK_DELAY_MS)
  }

  async function check () {
    const post = body()
    const sequence = ++state.sequence
    if (!post.targets.length) {
      previews.replaceChildren(h('p', { class: 'hint' }, 'Choose a channel to see its preview.'))
      state.last = null
      return
    }
    try {
      const answer = await api().check(post)
      if (sequence !== state.sequence) return // a newer check is on its way
      state.last = answer
      previews.replaceChildren(...answer.channels.map(renderPreview))
    } catch (err) {
      if (sequence !== state.sequence) return
      previews.replaceChildren(h('p', { role: 'alert' }, `Not checked: ${err.message}`))
    } finally {
      state.checks += 1
      dialog.dataset.checks = String(state.checks)
    }
  }

  function variantEditor (channel) {
    const name = channelName(channel)
    const key = channel.channel_id
    const fields = state.variants.get(key) || {
      text: h('textarea', { rows: 3, oninput: later, id: `variant-text-${key}`, 'aria-label': `Text for ${name}` }),
      firstComment: h('textarea', { rows: 2, oninput: later, id: `variant-comment-${key}`, 'aria-label': `First comment for ${name}` }),
      noMedia: h('input', { type: 'checkbox', onchange: later, id: `variant-nomedia-${key}`, 'aria-label': `No media on ${name}` })
    }
    state.variants.set(key, fields)
    fields.text.placeholder = 'Empty: the post\'s text'
    return h('details', { class: 'variant', dataset: { channel: key } },
      h('summary', {}, `Variant for ${name}`),
      h('label', { for: fields.text.id }, `Text for ${name}`), fields.text,
      h('label', { for: fields.firstComment.id }, `First comment for ${name}`), fields.firstComment,
      h('label', { class: 'inline' }, fields.noMedia, ` No media on ${name}`))
  }

  function channelsChanged () {
    variants.replaceChildren(...checkedChannels().map(variantEditor))
    schedule.channelsChanged()
    later()
  }

  function showMedia () {
    const kept = state.kept.map((ref, index) => h('li', {}, `${ref.asset_id} (${ref.kind}, already on the post)`, ' ',
      h('button', {
        type: 'button',
        class: 'link',
        'aria-label': `Remove ${ref.asset_id}`,
        onclick: () => { state.kept.splice(index, 1); showMedia(); later() }
      }, 'Remove')))
    const videos = state.videos.map((video, index) => h('li', { class: 'waveform-video' },
      `Waveform video of ${video.name} (${video.ref.width}x${video.ref.height}, ${minutes(video.ref.duration_s)})`, ' ',
      h('button', {
        type: 'button',
        class: 'link',
        'aria-label': `Remove the waveform video of ${video.name}`,
        onclick: () => { state.videos.splice(index, 1); showMedia(); later() }
      }, 'Remove')))
    const uploads = state.uploads.map((upload, index) => h('li', { class: 'uploaded-media' },
      `${upload.name} (${upload.media.kind}, ${upload.media.content_type}, ${upload.media.width}x${upload.media.height})`, ' ',
      h('button', {
        type: 'button',
        class: 'link',
        'aria-label': `Remove ${upload.name}`,
        onclick: () => { state.uploads.splice(index, 1); showMedia(); later() }
      }, 'Remove')))
    mediaList.replaceChildren(...kept, ...videos, ...uploads, ...state.media.map((item, index) => h('li', {},
      `${item.asset.name || item.asset.id} (${item.project.name}, audio, ${minutes(item.asset.duration)})`,
      ' ', h('button', {
        type: 'button',
        class: 'link',
        'aria-label': `Remove ${item.asset.name || item.asset.id}`,
        onclick: () => { state.media.splice(index, 1); showMedia(); later() }
      }, 'Remove'))))
  }

  let pickable = []
  async function loadMedia () {
    mediaStatus.textContent = 'Loading your projects…'
    try {
      pickable = await projectMedia()
      mediaSelect.replaceChildren(h('option', { value: '' }, pickable.length ? 'Choose a file' : 'No project files yet'),
        ...pickable.map((item, index) => h('option', { value: String(index) },
          `${item.project.name} — ${item.asset.name || item.asset.id} (audio, ${minutes(item.asset.duration)})`)))
      mediaStatus.textContent = ''
    } catch (err) {
      mediaStatus.textContent = `Your projects could not be listed: ${err.message}`
    }
  }

  async function loadUploads () {
    try {
      state.library = await api().uploads()
    } catch (err) {
      state.library = []
      uploadStatus.textContent = `Your uploads could not be listed: ${err.message}`
    }
    uploadSelect.replaceChildren(h('option', { value: '' }, state.library.length ? 'Choose an upload' : 'No uploads yet'),
      ...state.library.map((upload, index) => h('option', { value: String(index) },
        `${upload.name} (${upload.media.kind}, ${upload.media.content_type})`)))
  }

  function attachUpload () {
    const upload = state.library[Number(uploadSelect.value)]
    if (!uploadSelect.value || !upload) return
    state.uploads.push(upload)
    showMedia()
    later()
  }

  /** Upload each chosen file and attach it; a refused one says why (its type, size, damage). */
  async function uploadFiles () {
    const files = [...uploadInput.files]
    uploadInput.value = ''
    for (const file of files) {
      uploadStatus.textContent = `Uploading ${file.name}…`
      try {
        const upload = await api().uploadMedia(file)
        state.uploads.push(upload)
        state.library.unshift(upload)
        uploadStatus.textContent = `${file.name} uploaded and attached.`
        showMedia()
        later()
      } catch (err) {
        uploadStatus.textContent = `${file.name} was not uploaded: ${err.message}`
      }
    }
    await loadUploads()
  }

  function attach () {
    const item = pickable[Number(mediaSelect.value)]
    if (!mediaSelect.value || !item) return
    state.media.push(item)
    showMedia()
    later()
  }

  /** Render the chosen file as a waveform video for the first chosen channel's network. */
  async function attachVideo () {
    const item = pickable[Number(mediaSelect.value)]
    if (!mediaSelect.value || !item) return
    const network = (checkedChannels()[0] || {}).network || 'x'
    const name = item.asset.name || item.asset.id
    mediaStatus.textContent = `Rendering a waveform video of ${name}…`
    try {
      let job = await api().renderWaveform({ asset_id: item.asset.id, network, shape: 'square', title: item.project.name })
      while (!['done', 'dead', 'cancelled'].includes(job.state)) {
        await new Promise((resolve) => setTimeout(resolve, RENDER_POLL_MS))
        job = await api().waveform(job.job_id)
        mediaStatus.textContent = `Rendering a waveform video of ${name}… ${Math.round(job.progress * 100)}%`
      }
      if (job.state !== 'done') throw new Error(job.error || job.state)
      state.videos.push({ name, ref: job.media })
      mediaStatus.textContent = `Waveform video of ${name} attached.`
      showMedia()
      later()
    } catch (err) {
      mediaStatus.textContent = `No waveform video: ${err.message}`
    }
  }

  async function save (submit) {
    clearTimeout(state.timer)
    const post = { ...body(), campaign: campaign.value.trim() }
    const when = schedule.value()
    if (when) post.publish_at = when.toISOString()
    outcome.textContent = submit ? 'Submitting…' : 'Saving…'
    try {
      let made
      if (state.editing) {
        if (!when) post.publish_at = null
        made = await api().edit(state.editing.post_id, post)
      } else {
        made = await api().create(post)
        if (submit) made = await api().submit(made.post_id)
      }
      const words = { pending_approval: 'sent for approval', scheduled: 'scheduled', approved: 'approved', draft: 'saved as a draft' }
      const done = `${state.editing ? 'Changes saved: post' : 'Post'} ${words[made.state] || made.state}.`
      outcome.textContent = done
      outcome.dataset.post = made.post_id
      outcome.dataset.state = made.state
      say(done)
      created(made)
    } catch (err) {
      outcome.textContent = `Not saved: ${err.message}`
      outcome.setAttribute('role', 'alert')
      check() // the previews name each field to fix
      return
    }
    outcome.setAttribute('role', 'status')
  }

  const draftButton = h('button', { type: 'button', class: 'link', onclick: () => save(false) }, 'Save draft')
  const submitButton = h('button', { type: 'submit' }, 'Submit for approval')
  const title = h('h2', { id: 'compose-title' }, 'New post')
  const form = h('form', { class: 'compose', onsubmit: (event) => { event.preventDefault(); save(true) } },
    chosen,
    labelled('compose-text', 'Text', text),
    labelled('compose-link', 'Link', link, 'Where a network has no link cards it goes at the end of the text.'),
    labelled('compose-comment', 'First comment', firstComment),
    labelled('compose-campaign', 'Campaign', campaign),
    h('fieldset', { class: 'media' }, h('legend', {}, 'Media from your projects'),
      h('label', { for: 'compose-media' }, 'Project file'), mediaSelect,
      h('button', { type: 'button', onclick: attach }, 'Attach'),
      h('button', { type: 'button', onclick: attachVideo }, 'Make a waveform video'), mediaStatus, mediaList),
    h('fieldset', { class: 'media uploads' }, h('legend', {}, 'Images and videos'),
      h('label', { for: 'compose-upload' }, 'Upload (JPEG, PNG, WebP, GIF, MP4, MOV)'), uploadInput, uploadStatus,
      h('label', { for: 'compose-uploads' }, 'Your uploads'), uploadSelect,
      h('button', { type: 'button', onclick: attachUpload }, 'Add upload')),
    h('h3', {}, 'Per channel'), variants,
    schedule.element,
    h('div', { class: 'compose-actions' }, draftButton, submitButton),
    outcome)
  mediaSelect.id = 'compose-media'
  uploadInput.id = 'compose-upload'
  uploadSelect.id = 'compose-uploads'
  const close = h('button', { type: 'button', class: 'close', onclick: () => dialog.close() }, 'Close')
  const dialog = h('dialog', { class: 'compose-dialog', 'aria-labelledby': 'compose-title' },
    title,
    h('div', { class: 'compose-grid' }, form,
      h('section', { class: 'compose-previews', 'aria-label': 'Previews per network' },
        h('h3', {}, 'Previews'), previews)),
    close)

  function open (when = null) {
    const known = channels()
    // a channel the person may only view is shown, not offered (the server refuses it)
    const viewOnly = (c) => c.my_rights?.access === 'view'
    chosen.replaceChildren(h('legend', {}, 'Channels'), ...known.map((c) => h('label', { class: 'inline' },
      h('input', { type: 'checkbox', value: c.channel_id, onchange: channelsChanged, 'aria-label': channelName(c), disabled: viewOnly(c) }),
      ` ${channelName(c)}`, viewOnly(c) ? ' (view only)' : '')))
    if (!known.length) chosen.append(h('p', { class: 'hint' }, 'No channels yet: connect one first.'))
    for (const control of [text, link, firstComment, campaign]) control.value = ''
    state.editing = null
    title.textContent = 'New post'
    draftButton.hidden = false
    submitButton.textContent = 'Submit for approval'
    state.media = []
    state.kept = []
    state.videos = []
    state.uploads = []
    uploadStatus.textContent = ''
    state.variants.clear()
    variants.replaceChildren()
    showMedia()
    outcome.textContent = ''
    schedule.reset(when)
    previews.replaceChildren(h('p', { class: 'hint' }, 'Choose a channel to see its preview.'))
    if (!dialog.isConnected) document.body.append(dialog) // in the page once first used
    if (!dialog.open) dialog.showModal()
    loadMedia()
    loadUploads()
  }

  /** The composer holding a stored post; its save sends the changes. */
  function openEdit (post) {
    open(post.publish_at ? new Date(post.publish_at) : null)
    state.editing = post
    title.textContent = 'Edit post'
    draftButton.hidden = true
    submitButton.textContent = 'Save changes'
    text.value = post.text || ''
    link.value = post.link || ''
    firstComment.value = post.first_comment || ''
    campaign.value = post.campaign || ''
    state.kept = [...(post.media || [])]
    const targets = new Map(post.targets.map((t) => [t.channel_id, t]))
    for (const box of chosen.querySelectorAll('input[type=checkbox]')) box.checked = targets.has(box.value)
    channelsChanged()
    for (const [channelId, t] of targets) {
      const fields = state.variants.get(channelId)
      if (!fields) continue
      fields.text.value = t.text || ''
      fields.firstComment.value = t.first_comment || ''
      fields.noMedia.checked = Array.isArray(t.media) && t.media.length === 0
    }
    showMedia()
    dialog.dataset.editing = post.post_id
    check()
  }

  return { element: dialog, open, openEdit, lastCheck: () => state.last }
}
