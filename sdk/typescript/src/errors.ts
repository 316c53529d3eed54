// Typed errors from the API's RFC 9457 problem details.
import type { components } from './schema.js'

/** A problem document as the API answers it (with the route's extensions, e.g. `etag`). */
export type Problem = components['schemas']['ProblemBody'] & Record<string, unknown>

/** An answer outside 2xx: its status and problem document. */
export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem
  readonly headers: Headers

  constructor (status: number, problem: Problem, headers: Headers) {
    super(`${status} ${problem.title}: ${problem.detail}`)
    this.name = new.target.name
    this.status = status
    this.problem = problem
    this.headers = headers
  }

  /** What was wrong and what to do, as the server put it. */
  get detail (): string { return this.problem.detail }
}

export class BadRequestError extends ApiError {}
export class UnauthorizedError extends ApiError {}
export class ForbiddenError extends ApiError {}
export class NotFoundError extends ApiError {}
export class ConflictError extends ApiError {}
/** 412: the `If-Match` ETag is stale; `problem.etag` is the current one. */
export class PreconditionFailedError extends ApiError {}
/** 422: invalid fields (`problem.fields`), or an idempotency key reused with another body. */
export class UnprocessableError extends ApiError {}
/** 429 after every retry was spent. */
export class RateLimitedError extends ApiError {}
export class ServerError extends ApiError {}

const BY_STATUS: Record<number, typeof ApiError> = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  412: PreconditionFailedError,
  422: UnprocessableError,
  429: RateLimitedError
}

/** The error class for `status` with its problem document (or a made-up one for non-JSON). */
export async function errorOf (answer: Response): Promise<ApiError> {
  const text = await answer.text()
  let problem: Problem
  try {
    problem = JSON.parse(text) as Problem
  } catch {
    problem = { type: 'about:blank', title: answer.statusText, status: answer.status, detail: text.slice(0, 500) }
  }
  const Class = BY_STATUS[answer.status] ?? (answer.status >= 500 ? ServerError : ApiError)
  return new Class(answer.status, problem, answer.headers)
}
