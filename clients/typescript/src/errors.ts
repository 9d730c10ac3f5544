// Every failure of MessagesClient is one of these classes: callers branch on
// `instanceof` (or `name`, which survives a second copy of the package in one
// bundle), never on a raw TypeError from fetch.
import type { components } from "./openapi.js";

export type FieldError = components["schemas"]["FieldError"];
export type Result = components["schemas"]["Result"];

/** What every error of the client says about the call that failed. */
export interface CallReport {
  /** HTTP requests made for this call (0 when none was sent). */
  attempts: number;
  /** The Idempotency-Key every attempt carried (sends only): retry with it and nothing is queued twice. */
  idempotencyKey?: string | undefined;
  /** The X-Correlation-Id every attempt carried: the pipeline's logs and results name the call's messages by it. */
  correlationId?: string | undefined;
  /**
   * True when the client stopped retrying before using all its attempts: the
   * server asked to wait longer than `maxRetryAfterMs`, or the wait would
   * pass the call's deadline. `retryAfterSeconds` is then what the server asked.
   */
  gaveUp?: boolean | undefined;
  cause?: unknown;
}

/** The base class of every error the client throws. */
export class MessagesClientError extends Error {
  override name = "MessagesClientError";
  readonly attempts: number;
  readonly idempotencyKey: string | undefined;
  readonly correlationId: string | undefined;
  readonly gaveUp: boolean;
  constructor(message: string, report: CallReport) {
    super(message, report.cause === undefined ? undefined : { cause: report.cause });
    this.attempts = report.attempts;
    this.idempotencyKey = report.idempotencyKey;
    this.correlationId = report.correlationId;
    this.gaveUp = report.gaveUp ?? false;
  }
}

/** The API answered with a status other than success. */
export class ApiError extends MessagesClientError {
  override name = "ApiError";
  /** The HTTP status of the last answer. */
  readonly status: number;
  /** The fields at fault and why (from the answer's `errors`); empty when it names none. */
  readonly fields: FieldError[];
  /** The last answer's body (parsed JSON, or its text). */
  readonly body: unknown;
  /** The server's Retry-After of the last answer, in seconds, as sent (undefined when absent). */
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, message: string, fields: FieldError[], body: unknown, retryAfterSeconds: number | undefined, report: CallReport) {
    super(message, report);
    this.status = status;
    this.fields = fields;
    this.body = body;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** 400: the request is invalid; `fields` names each field and the reason. Not retried. */
export class ValidationError extends ApiError {
  override name = "ValidationError";
}

/** 413: the message (or the batch) is larger than the queue accepts. Not retried. */
export class PayloadTooLargeError extends ValidationError {
  override name = "PayloadTooLargeError";
}

/** 401: the token is missing, expired, or not one this environment trusts. Not retried. */
export class UnauthenticatedError extends ApiError {
  override name = "UnauthenticatedError";
}

/** 403: the token may not do this, e.g. send as a creator it is not granted (`fields` says which). Not retried. */
export class ForbiddenError extends ApiError {
  override name = "ForbiddenError";
}

/**
 * 422: the Idempotency-Key was used before with another body; or 409 after
 * every retry: a request with this key is still in progress.
 */
export class IdempotencyConflictError extends ApiError {
  override name = "IdempotencyConflictError";
}

/** 429 after the retries the client could make: too many requests, or too many messages waiting for a creator. */
export class RateLimitedError extends ApiError {
  override name = "RateLimitedError";
}

/**
 * 5xx after the retries the client could make. `results` lists each
 * message's outcome when the API gave them (503: a message neither queued
 * nor stored); retry with the same `idempotencyKey`: only the missing ones
 * are sent.
 */
export class UnavailableError extends ApiError {
  override name = "UnavailableError";
  get results(): Result[] {
    const b = this.body as { results?: unknown; messageId?: unknown } | undefined;
    if (b && Array.isArray(b.results)) return b.results as Result[];
    if (b && typeof b.messageId === "string") return [b as Result];
    return [];
  }
}

/**
 * Sending is disabled: the client is not configured (no base URL or token
 * provider; `status` undefined), or the API answered 503 because it is not
 * configured (seed 000 R1.2, R4.5). Not retried: it does not pass by itself.
 */
export class SendingDisabledError extends MessagesClientError {
  override name = "SendingDisabledError";
  /** 503 when the API said so; undefined when the client is not configured. */
  readonly status: 503 | undefined;
  /** Why sending is disabled. */
  readonly reason: string;
  constructor(reason: string, status: 503 | undefined, report: CallReport) {
    super(`sending is disabled: ${reason}`, report);
    this.reason = reason;
    this.status = status;
  }
}

/**
 * No answer: the connection failed, was refused or dropped, after every
 * retry. A send may have been queued: retry with the same `idempotencyKey`.
 */
export class NetworkError extends MessagesClientError {
  override name = "NetworkError";
}

/**
 * The call's deadline (`timeoutMs`) passed. A send may have been queued:
 * retry with the same `idempotencyKey`.
 */
export class TimeoutError extends MessagesClientError {
  override name = "TimeoutError";
  readonly timeoutMs: number;
  constructor(timeoutMs: number, report: CallReport) {
    super(`no answer within ${timeoutMs} ms`, report);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller's AbortSignal fired; `cause` is its reason. */
export class AbortedError extends MessagesClientError {
  override name = "AbortedError";
}

/** The token provider threw or returned no token. Not retried. */
export class TokenError extends MessagesClientError {
  override name = "TokenError";
}
