// Scenarios of the TypeScript SDK against a running server, driven by
// tests/test_sdk_typescript.py: node test/scenarios.mjs DIST BASE_URL API_KEY SCENARIO.
// Each asserts with node:assert and prints one JSON line of what it saw.
import assert from 'node:assert/strict'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const [dist, baseUrl, apiKey, scenario] = process.argv.slice(2)
const sdk = await import(pathToFileURL(path.join(dist, 'index.js')).href)
const waits = []
const retries = { attempts: 3, baseMs: 10, capMs: 10, onRetry: (info) => waits.push(info) }
const api = new sdk.MaxBooster({ baseUrl, apiKey, retries })

async function pagesCreatesOnceAndHonoursIfMatch () {
  const first = await api.createProject('One', { idempotencyKey: 'make-one' })
  const again = await api.createProject('One', { idempotencyKey: 'make-one' })
  assert.deepEqual(again, first)
  const made = [first]
  for (const name of ['Two', 'Three']) made.push(await api.createProject(name))
  const page = await api.listProjects({ limit: 2 })
  assert.equal(page.data.length, 2)
  assert.ok(page.next_cursor)
  const walked = []
  for await (const project of api.iterProjects({}, 2)) walked.push(project)
  assert.deepEqual(walked.map((p) => p.id), made.map((p) => p.id))
  const filtered = []
  for await (const project of api.iterProjects({ name_contains: 'T' }, 1)) filtered.push(project.name)
  assert.deepEqual(filtered, ['Two', 'Three'])
  const sparse = await api.getProject(first.id, ['name'])
  assert.deepEqual(Object.keys(sparse).sort(), ['id', 'name'])

  const etag = (await fetch(`${baseUrl}/api/v1/projects/${first.id}`,
    { headers: { Authorization: `Bearer ${apiKey}` } })).headers.get('ETag')
  assert.equal((await api.renameProject(first.id, 'Uno', { ifMatch: etag })).name, 'Uno')
  const stale = await api.renameProject(first.id, 'Eins', { ifMatch: etag }).catch((e) => e)
  assert.ok(stale instanceof sdk.PreconditionFailedError, String(stale))
  assert.ok(stale instanceof sdk.ApiError)
  assert.equal(stale.status, 412)
  assert.ok(stale.problem.etag)
  assert.equal((await api.deleteProject(first.id)).id, first.id)
  const gone = await api.getProject(first.id).catch((e) => e)
  assert.ok(gone instanceof sdk.NotFoundError, String(gone))
  assert.ok(gone.detail.includes(first.id))
  const reused = await api.createProject('Other', { idempotencyKey: 'make-one' }).catch((e) => e)
  assert.ok(reused instanceof sdk.UnprocessableError, String(reused))
  const odd = await api.getProject('../usage').catch((e) => e)
  assert.ok(odd instanceof sdk.NotFoundError, String(odd))  // encoded: never reaches /usage
  const transcripts = await api.listTranscripts(made[1].id)
  assert.deepEqual(transcripts, { data: [], next_cursor: null })
  const untranscribed = await api.getTranscript(made[1].id, 'clip-1').catch((e) => e)
  assert.ok(untranscribed instanceof sdk.NotFoundError, String(untranscribed))
  assert.match(untranscribed.detail, /transcription-jobs/)
  const noClip = await api.createTranscriptionJob(made[1].id, 'clip-1', 'en').catch((e) => e)
  assert.ok(noClip instanceof sdk.NotFoundError, String(noClip))
  return { made: made.map((p) => p.id), waits }
}

// Seeded by the test through the plug-ins' services (tests/sdk_seed.py).
async function pluginResourcesAndTrackWrites () {
  const first = await api.listReleases({ limit: 2 })
  assert.deepEqual(first.data.map((r) => r.id), ['rel-1', 'rel-2'])
  const rest = await api.listReleases({ limit: 2, cursor: first.next_cursor, fields: 'title' })
  assert.deepEqual(rest, { data: [{ id: 'rel-3', title: 'Night Drive' }], next_cursor: null })
  assert.deepEqual((await api.listReleases({ status: 'ready' })).data.map((r) => r.id), ['rel-2'])
  assert.deepEqual(await api.getRelease('rel-2'), first.data[1])
  const [delivery, ...more] = (await api.listReleaseDeliveries('rel-2')).data
  assert.equal(more.length, 0)
  assert.equal(delivery.store, 'fake')
  assert.equal(delivery.release_id, 'rel-2')
  const statements = await api.listRoyaltyStatements()
  assert.deepEqual(statements.data.map((s) => s.totals), [{ USD: 1000, EUR: 350 }])

  const beats = []
  for await (const beat of sdk.paginate((cursor) => api.listBeats({ limit: 2, cursor }))) beats.push(beat.id)
  assert.deepEqual(beats, ['beat-3', 'beat-2', 'beat-1'])
  const beat = await api.getBeat('beat-2')
  assert.equal(beat.tiers[0].price, 2999)
  assert.deepEqual((await api.listBeats({ status: 'sold_exclusive' })).data, [])
  const orders = await api.listOrders({ status: 'paid' })
  assert.deepEqual(orders.data.map((o) => [o.id, o.amount]), [['order-1', 2999]])
  const licences = await api.listLicences()
  assert.deepEqual(licences.data.map((l) => [l.id, l.seller, l.download_limit]), [['lic-1', 'seller-x', 3]])
  const lost = await api.listOrders({ status: 'lost' }).catch((e) => e)
  assert.ok(lost instanceof sdk.UnprocessableError, String(lost))
  const odd = await api.getBeat('../orders').catch((e) => e)
  assert.ok(odd instanceof sdk.NotFoundError, String(odd))  // encoded: never reaches /orders

  const project = await api.createProject('Demo')
  const track = await api.addTrack(project.id, { name: 'Keys', channels: 2 }, 'keys-1')
  assert.equal(track.channels, 2)
  assert.deepEqual(await api.addTrack(project.id, { name: 'Keys', channels: 2 }, 'keys-1'), track)
  const etag = (await fetch(`${baseUrl}/api/v1/projects/${project.id}/tracks/${track.id}`,
    { headers: { Authorization: `Bearer ${apiKey}` } })).headers.get('ETag')
  const changed = await api.changeTrack(project.id, track.id, { gain_db: -3.5, mute: true }, { ifMatch: etag })
  assert.deepEqual([changed.gain_db, changed.mute, changed.pan], [-3.5, true, track.pan])
  const stale = await api.changeTrack(project.id, track.id, { pan: 0.5 }, { ifMatch: etag }).catch((e) => e)
  assert.ok(stale instanceof sdk.PreconditionFailedError, String(stale))
  const tracks = await api.listTracks(project.id)
  assert.deepEqual(tracks.data.map((t) => [t.id, t.gain_db]), [[track.id, -3.5]])
  return { project: project.id, track: track.id, waits }
}

async function rateLimited () {
  const page = await api.listProjects()
  assert.deepEqual(page.data, [])
  const missing = await api.getProject('nope-00000000').catch((e) => e)
  assert.ok(missing instanceof sdk.NotFoundError, String(missing))
  return { waits }
}

async function unreachable () {
  const error = await api.listProjects().catch((e) => e)
  assert.ok(error instanceof TypeError, String(error))  // fetch's network error, after retries
  return { waits }
}

async function badInput () {
  assert.throws(() => new sdk.MaxBooster({ baseUrl, apiKey: 'secret' }), /mbk_live_/)
  assert.equal(sdk.parseRetryAfter('3'), 3000)
  const now = Date.parse('Thu, 03 Dec 2026 12:00:00 GMT')
  assert.equal(sdk.parseRetryAfter('Thu, 03 Dec 2026 12:00:02 GMT', now), 2000)
  assert.equal(sdk.parseRetryAfter('soon'), null)
  return {}
}

// Seeded by the test: one project with a transcript of "one two three" on clip `speech`
// and a queued transcription job.
async function cancelsJobsAndEditsTranscripts () {
  const [project] = (await api.listProjects()).data
  const { data: [job] } = await api.listTranscriptionJobs(project.id, { status: 'queued' })
  const cancelled = await api.cancelTranscriptionJob(project.id, job.id)
  assert.equal(cancelled.status, 'cancelled')
  assert.equal(cancelled.id, job.id)
  const missing = await api.cancelTranscriptionJob(project.id, 'no-such-job').catch((e) => e)
  assert.ok(missing instanceof sdk.NotFoundError, String(missing))
  const edited = await api.editTranscript(project.id, 'speech', { delete: [1] }, 'cut-1')
  assert.deepEqual(await api.editTranscript(project.id, 'speech', { delete: [1] }, 'cut-1'), edited)
  const outside = await api.editTranscript(project.id, 'speech', { delete: [9] }).catch((e) => e)
  assert.ok(outside instanceof sdk.BadRequestError, String(outside))
  return { project: project.id, job: job.id, clips: edited.clips, waits }
}

// Seeded by the test: one project with a transcript of "one two three" on clip `speech`,
// opened on the server (an undo history that starts empty).
async function undoesAndRedoesTextEdits () {
  const [project] = (await api.listProjects()).data
  const nothing = await api.undoTranscriptEdit(project.id).catch((e) => e)
  assert.ok(nothing instanceof sdk.ConflictError, String(nothing))
  const edited = await api.editTranscript(project.id, 'speech', { delete: [1] })
  const undone = await api.undoTranscriptEdit(project.id, 'undo-1')
  assert.deepEqual(await api.undoTranscriptEdit(project.id, 'undo-1'), undone)
  assert.deepEqual([undone.can_undo, undone.can_redo], [false, true])
  const redone = await api.redoTranscriptEdit(project.id)
  assert.deepEqual(redone.clips, [...edited.clips].sort())
  assert.deepEqual([redone.can_undo, redone.can_redo], [true, false])
  const noRedo = await api.redoTranscriptEdit(project.id).catch((e) => e)
  assert.ok(noRedo instanceof sdk.ConflictError, String(noRedo))
  return { project: project.id, undone: undone.clips, clips: edited.clips, waits }
}

const scenarios = {
  pagesCreatesOnceAndHonoursIfMatch,
  pluginResourcesAndTrackWrites,
  cancelsJobsAndEditsTranscripts,
  undoesAndRedoesTextEdits,
  rateLimited,
  unreachable,
  badInput
}
console.log(JSON.stringify(await scenarios[scenario]()))
