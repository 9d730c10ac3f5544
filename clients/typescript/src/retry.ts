// Pure retry arithmetic, kept apart so it is tested without a server.

/**
 * Backoff before attempt+1 when the server gave no Retry-After: exponential
 * from baseMs, capped at maxMs, with "equal jitter" (half fixed, half random)
 * so concurrent callers spread out but never retry at once. random is in [0, 1).
 */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + (ceiling / 2) * random;
}

/**
 * Retry-After as whole seconds (RFC 9110: delay-seconds or an HTTP date),
 * or undefined when absent or unreadable. A date in the past is 0.
 */
export function parseRetryAfter(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const v = header.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}
