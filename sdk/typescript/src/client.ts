// The client: fetch-based, retries honouring Retry-After, idempotency keys on writes,
// typed errors and cursor pagination over the v1 routes.
import { errorOf } from './errors.js'
import { backoffMs, RETRY_STATUSES, type RetryOptions } from './retries.js'
import type { components, operations } from './schema.js'

type Schemas = components['schemas']
export type Project = Schemas['Project']
export type ProjectPage = Schemas['ProjectPage']
export type Track = Schemas['Track']
export type TrackPage = Schemas['TrackPage']
export type Asset = Schemas['Asset']
export type AssetPage = Schemas['AssetPage']
export type Bounce = Schemas['Bounce']
export type BouncePage = Schemas['BouncePage']
export type BounceOptions = Schemas['BounceOptions']
export type Deleted = Schemas['Deleted']
export type UsageReport = Schemas['UsageReport']
export type Transcript = Schemas['Transcript']
export type TranscriptPage = Schemas['TranscriptPage']
export type TranscriptionJob = Schemas['TranscriptionJob']
export type TranscriptionJobPage = Schemas['TranscriptionJobPage']
/** A text edit: `delete` word indices (from 0) or play them in a new `order`. */
export type TranscriptEdit = Partial<Schemas['TranscriptEdit']>
export type EditedTranscript = Schemas['EditedTranscript']
export type TranscriptEditStep = Schemas['TranscriptEditStep']
export type NewTrack = Schemas['NewTrack']
export type TrackChange = Schemas['TrackChange']
export type Release = Schemas['Release']
export type ReleasePage = Schemas['ReleasePage']
export type ReleaseDeliveryPage = Schemas['ReleaseDeliveryPage']
export type RoyaltyStatementPage = Schemas['RoyaltyStatementPage']
export type Beat = Schemas['Beat']
export type BeatPage = Schemas['BeatPage']
export type OrderPage = Schemas['OrderPage']
export type LicencePage = Schemas['LicencePage']
type Query<Op extends keyof operations> = NonNullable<operations[Op]['parameters']['query']>
export type ProjectFilters = Omit<Query<'v1_list_projects'>, 'cursor'>

/** One page of a list: its items and the cursor of the next (null: the last). */
export interface Page<T> { data: T[], next_cursor?: string | null }

export interface ClientOptions {
  baseUrl: string
  apiKey: string
  retries?: RetryOptions
  /** Per-attempt timeout in ms (default 30000). */
  timeoutMs?: number
  /** Another fetch (tests, proxies); default the global one. */
  fetch?: typeof fetch
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | null | undefined>
  body?: unknown
  idempotencyKey?: string
  ifMatch?: string
}

/** Every item of every page, fetched page by page as it is consumed. */
export async function * paginate<T> (
  fetchPage: (cursor: string | undefined) => Promise<Page<T>>): AsyncGenerator<T> {
  let cursor: string | undefined
  do {
    const page = await fetchPage(cursor)
    yield * page.data
    cursor = page.next_cursor ?? undefined
  } while (cursor !== undefined)
}

const segment = (id: string): string => encodeURIComponent(id)

/** A client of the public API `/api/v1` acting with one API key. */
export class MaxBooster {
  private readonly baseUrl: string
  private readonly apiKey: string
  private readonly retries: RetryOptions
  private readonly timeoutMs: number
  private readonly fetch: typeof fetch

  constructor (options: ClientOptions) {
    if (!/^mbk_(live|test)_/.test(options.apiKey)) {
      throw new TypeError('apiKey must be an API key (mbk_live_... or mbk_test_...): make one on the account page')
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.apiKey = options.apiKey
    this.retries = options.retries ?? {}
    this.timeoutMs = options.timeoutMs ?? 30000
    this.fetch = options.fetch ?? globalThis.fetch
  }

  /** One call: retried on 429, 502, 503, 504 and network errors; a POST always carries an
   * `Idempotency-Key` (yours or a fresh one), the same on every retry. */
  async request<T> (method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + path)
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value))
    }
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.apiKey}`, Accept: 'application/json'
    }
    if (options.body !== undefined) headers['Content-Type'] = 'application/json'
    if (method === 'POST') headers['Idempotency-Key'] = options.idempotencyKey ?? crypto.randomUUID()
    if (options.ifMatch !== undefined) headers['If-Match'] = options.ifMatch
    const body = options.body === undefined ? undefined : JSON.stringify(options.body)
    const attempts = Math.max(1, this.retries.attempts ?? 4)
    for (let attempt = 1; ; attempt++) {
      let answer: Response
      try {
        answer = await this.fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) })
      } catch (error) {
        if (attempt >= attempts) throw error
        await this.pause({ attempt, waitMs: backoffMs(attempt, null, this.retries), error })
        continue
      }
      if (answer.ok) return await answer.json() as T
      if (RETRY_STATUSES.has(answer.status) && attempt < attempts) {
        await answer.body?.cancel()
        const waitMs = backoffMs(attempt, answer.headers.get('Retry-After'), this.retries)
        await this.pause({ attempt, waitMs, status: answer.status })
        continue
      }
      throw await errorOf(answer)
    }
  }

  private async pause (info: { attempt: number, waitMs: number, status?: number, error?: unknown }): Promise<void> {
    this.retries.onRetry?.(info)
    await new Promise((resolve) => setTimeout(resolve, info.waitMs))
  }

  listProjects (filters: ProjectFilters & { cursor?: string } = {}): Promise<ProjectPage> {
    return this.request('GET', '/api/v1/projects', { query: filters })
  }

  /** Every project, oldest first, `pageSize` per request. */
  iterProjects (filters: Omit<ProjectFilters, 'limit'> = {}, pageSize = 50): AsyncGenerator<Project> {
    return paginate((cursor) => this.listProjects({ ...filters, limit: pageSize, cursor }))
  }

  getProject (id: string, fields?: string[]): Promise<Project> {
    return this.request('GET', `/api/v1/projects/${segment(id)}`, { query: { fields: fields?.join(',') } })
  }

  createProject (name: string, options: { idempotencyKey?: string } = {}): Promise<Project> {
    return this.request('POST', '/api/v1/projects', { body: { name }, ...options })
  }

  /** Rename; with `ifMatch` (an ETag) a project changed since answers 412. */
  renameProject (id: string, name: string, options: { ifMatch?: string } = {}): Promise<Project> {
    return this.request('PATCH', `/api/v1/projects/${segment(id)}`, { body: { name }, ...options })
  }

  deleteProject (id: string, options: { ifMatch?: string } = {}): Promise<Deleted> {
    return this.request('DELETE', `/api/v1/projects/${segment(id)}`, options)
  }

  listTracks (projectId: string, query: Query<'v1_list_tracks'> = {}): Promise<TrackPage> {
    return this.request('GET', `/api/v1/projects/${segment(projectId)}/tracks`, { query })
  }

  listAssets (projectId: string, query: Query<'v1_list_assets'> = {}): Promise<AssetPage> {
    return this.request('GET', `/api/v1/projects/${segment(projectId)}/assets`, { query })
  }

  listBounces (projectId: string, query: Query<'v1_list_bounces'> = {}): Promise<BouncePage> {
    return this.request('GET', `/api/v1/projects/${segment(projectId)}/bounces`, { query })
  }

  addTrack (projectId: string, track: NewTrack, idempotencyKey?: string): Promise<Track> {
    return this.request('POST', `/api/v1/projects/${segment(projectId)}/tracks`, { body: track, idempotencyKey })
  }

  changeTrack (projectId: string, trackId: string, change: TrackChange, options: { ifMatch?: string } = {}): Promise<Track> {
    return this.request('PATCH', `/api/v1/projects/${segment(projectId)}/tracks/${segment(trackId)}`, { body: change, ...options })
  }

  listReleases (query: Query<'v1_distribution_list_releases'> = {}): Promise<ReleasePage> {
    return this.request('GET', '/api/v1/releases', { query })
  }

  getRelease (releaseId: string): Promise<Release> {
    return this.request('GET', `/api/v1/releases/${segment(releaseId)}`)
  }

  listReleaseDeliveries (releaseId: string, query: Query<'v1_distribution_list_deliveries'> = {}): Promise<ReleaseDeliveryPage> {
    return this.request('GET', `/api/v1/releases/${segment(releaseId)}/deliveries`, { query })
  }

  listRoyaltyStatements (query: Query<'v1_distribution_list_statements'> = {}): Promise<RoyaltyStatementPage> {
    return this.request('GET', '/api/v1/royalty-statements', { query })
  }

  listBeats (query: Query<'v1_marketplace_list_beats'> = {}): Promise<BeatPage> {
    return this.request('GET', '/api/v1/beats', { query })
  }

  getBeat (beatId: string): Promise<Beat> {
    return this.request('GET', `/api/v1/beats/${segment(beatId)}`)
  }

  listOrders (query: Query<'v1_marketplace_list_orders'> = {}): Promise<OrderPage> {
    return this.request('GET', '/api/v1/orders', { query })
  }

  listLicences (query: Query<'v1_marketplace_list_licences'> = {}): Promise<LicencePage> {
    return this.request('GET', '/api/v1/licences', { query })
  }

  createBounce (projectId: string, options: BounceOptions, idempotencyKey?: string): Promise<Bounce> {
    return this.request('POST', `/api/v1/projects/${segment(projectId)}/bounces`, { body: options, idempotencyKey })
  }

  getBounce (projectId: string, bounceId: string): Promise<Bounce> {
    return this.request('GET', `/api/v1/projects/${segment(projectId)}/bounces/${segment(bounceId)}`)
  }

  listTranscripts (projectId: string, query: Query<'v1_list_transcripts'> = {}): Promise<TranscriptPage> {
    return this.request('GET', `/api/v1/projects/${segment(projectId)}/transcripts`, { query })
  }

  /** A clip's transcript: every word with `start_s`, `end_s` (from the clip's start). */
  getTranscript (projectId: string, clipId: string): Promise<Transcript> {
    return this.request('GET', `/api/v1/projects/${segment(projectId)}/transcripts/${segment(clipId)}`)
  }

  /** Queue a clip's transcription; follow it with `getTranscriptionJob` until `done`. */
  createTranscriptionJob (projectId: string, clipId: string, language?: string): Promise<TranscriptionJob> {
    return this.request('POST', `/api/v1/projects/${segment(projectId)}/transcription-jobs`,
      { body: { clip_id: clipId, language } })
  }

  getTranscriptionJob (projectId: string, jobId: string): Promise<TranscriptionJob> {
    return this.request('GET', `/api/v1/projects/${segment(projectId)}/transcription-jobs/${segment(jobId)}`)
  }

  /** The project's transcription jobs, oldest first (filter `status`). */
  listTranscriptionJobs (projectId: string, query: Query<'v1_list_transcription_jobs'> = {}): Promise<TranscriptionJobPage> {
    return this.request('GET', `/api/v1/projects/${segment(projectId)}/transcription-jobs`, { query })
  }

  /** Cancel a queued or running job (editor); a finished one comes back unchanged. */
  cancelTranscriptionJob (projectId: string, jobId: string, idempotencyKey?: string): Promise<TranscriptionJob> {
    return this.request('POST',
      `/api/v1/projects/${segment(projectId)}/transcription-jobs/${segment(jobId)}/cancel`, { idempotencyKey })
  }

  /**
   * Edit a clip's audio through its words (editor): `{ delete: [1] }` or `{ order: [2, 0, 1] }`,
   * indices as the transcript's `words` lists them; `ripple: false` leaves gaps. Answers the
   * clips that now play the words. Retried safely under `idempotencyKey` (a fresh one if left out).
   */
  editTranscript (projectId: string, clipId: string, edit: TranscriptEdit, idempotencyKey?: string): Promise<EditedTranscript> {
    return this.request('POST', `/api/v1/projects/${segment(projectId)}/transcripts/${segment(clipId)}/edit`,
      { body: edit, idempotencyKey })
  }

  /**
   * Undo the project's last text edit, whichever clip it edited (editor); a `ConflictError`
   * when none is left. Answers every clip of the project now and whether another undo or redo
   * can follow. Retried safely under `idempotencyKey` (a fresh one if left out): a repeated
   * undo would take back one more edit.
   */
  undoTranscriptEdit (projectId: string, idempotencyKey?: string): Promise<TranscriptEditStep> {
    return this.request('POST', `/api/v1/projects/${segment(projectId)}/transcript-edits/undo`,
      { idempotencyKey })
  }

  /** Redo the project's last undone text edit (editor); a `ConflictError` when none is left. */
  redoTranscriptEdit (projectId: string, idempotencyKey?: string): Promise<TranscriptEditStep> {
    return this.request('POST', `/api/v1/projects/${segment(projectId)}/transcript-edits/redo`,
      { idempotencyKey })
  }

  usage (days = 30, account?: string): Promise<UsageReport> {
    return this.request('GET', '/api/v1/usage', { query: { days, account } })
  }
}

