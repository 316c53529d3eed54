// @maxbooster/sdk: a typed client of the Max Booster Studio public API (/api/v1).
export { MaxBooster, paginate } from './client.js'
export type {
  Asset, AssetPage, Bounce, BounceOptions, BouncePage, ClientOptions, Deleted, Page, Project,
  ProjectFilters, ProjectPage, RequestOptions, Track, TrackPage, Transcript, TranscriptPage,
  TranscriptionJob, UsageReport
} from './client.js'
export {
  ApiError, BadRequestError, ConflictError, ForbiddenError, NotFoundError,
  PreconditionFailedError, RateLimitedError, ServerError, UnauthorizedError, UnprocessableError
} from './errors.js'
export type { Problem } from './errors.js'
export { backoffMs, parseRetryAfter, RETRY_STATUSES } from './retries.js'
export type { RetryOptions } from './retries.js'
export type { components, operations, paths } from './schema.js'
