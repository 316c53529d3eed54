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

const scenarios = { pagesCreatesOnceAndHonoursIfMatch, rateLimited, unreachable, badInput }
console.log(JSON.stringify(await scenarios[scenario]()))
