// Compiles under every module resolution the app may use (see the
// tsconfig.*.json beside it), with strict and exactOptionalPropertyTypes:
// the shapes a Next.js app writes, env values that may be undefined included.
import {
  MessagesClient,
  RateLimitedError,
  ValidationError,
  type CheckResult,
  type ClientOptions,
  type Draft,
  type Result,
  type SendOptions,
  type TokenProvider,
} from "@huntaze/messages-client";

declare const env: Record<string, string | undefined>;

const token: TokenProvider = async ({ signal }) => {
  signal.throwIfAborted();
  return "jwt";
};
const options: ClientOptions = { baseUrl: env["MESSAGES_API_URL"], token, timeoutMs: undefined, maxRetryAfterMs: 5_000 };
export const client = new MessagesClient(options);

export async function sendOne(creatorId: string | undefined, text: string, key?: string): Promise<Result | string> {
  const d: Draft = { recipientId: "fan-1", content: text, priority: "high", metadata: { campaign: "welcome" } };
  if (creatorId !== undefined) d.creatorId = creatorId;
  const o: SendOptions = { idempotencyKey: key, signal: AbortSignal.timeout(8_000) };
  try {
    return await client.send(d, o);
  } catch (e) {
    if (e instanceof ValidationError) return e.fields.map((f) => `${f.field}: ${f.reason}`).join("; ");
    if (e instanceof RateLimitedError) return `retry in ${e.retryAfterSeconds ?? "?"} s (gave up: ${e.gaveUp})`;
    throw e;
  }
}

export const started: Promise<CheckResult> = client.check();
