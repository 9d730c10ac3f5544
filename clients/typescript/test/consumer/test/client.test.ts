// Tests of the packed @huntaze/messages-client, compiled by tsc and run as
// plain JavaScript (no type stripping), against the real API
// (test/cmd/apiserver) and, for faults the API cannot be asked for, a
// recording proxy in front of it.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import {
  MessagesClient,
  MessagesClientError,
  ValidationError,
  PayloadTooLargeError,
  UnauthenticatedError,
  ForbiddenError,
  IdempotencyConflictError,
  RateLimitedError,
  UnavailableError,
  SendingDisabledError,
  NetworkError,
  TimeoutError,
  AbortedError,
  TokenError,
  backoffDelayMs,
  parseRetryAfter,
  type Draft,
  type RetryInfo,
} from "@huntaze/messages-client";
import { startAPI, startProxy, relay, json, closedPort, recordingLogger, type API } from "./support.js";

let api: API;
let strict: API; // 3 requests per caller per 4 s
let off: API; // not configured: sending disabled
before(async () => {
  [api, strict, off] = await Promise.all([startAPI(), startAPI("-caller-requests", "3", "-caller-window", "4s"), startAPI("-unconfigured")]);
});
after(() => {
  api?.stop();
  strict?.stop();
  off?.stop();
});

const draft: Draft = { creatorId: "creator-a", recipientId: "fan-1", content: "hello from the Next.js app" };
const text = (s: string): Draft => ({ ...draft, content: `${s} ${crypto.randomUUID()}` });
const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => assert.fail("expected a rejection"), (e: unknown) => e);

/** Messages held by the intake queue (visible + in flight + delayed). */
async function intakeDepth(): Promise<number> {
  const st = await new MessagesClient({ baseUrl: api.url, token: api.tokens.ops }).status();
  const q = (st.queues ?? []).find((q) => q.name.includes("rate-limiter") && !q.name.includes("dlq"));
  assert.ok(q, JSON.stringify(st.queues));
  return q.visible + q.inFlight + q.delayed;
}

describe("sends against the real API", () => {
  test("send queues one message and answers its id", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user });
    const r = await c.send(text("one"));
    assert.equal(r.status, "queued");
    assert.match(r.messageId, /^[0-9a-f-]{36}$/);
  });

  test("sendBatch queues up to 10 in order and refuses 11 before any request", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user });
    const rs = await c.sendBatch([1, 2, 3].map((i) => text(`batch ${i}`)));
    assert.deepEqual(rs.map((r) => r.status), ["queued", "queued", "queued"]);
    await assert.rejects(c.sendBatch(Array<Draft>(11).fill(draft)), RangeError);
  });

  test("every send carries an Idempotency-Key; a repeated key gets the same id and queues nothing more", async () => {
    const p = await startProxy(api.url, async (_n, _req, forward, res) => relay(await forward(), res));
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user });
      await c.send(text("generated key"));
      assert.match(String(p.seen[0]?.headers["idempotency-key"]), /^[0-9a-f-]{36}$/);
      const key = crypto.randomUUID();
      const d = text("once");
      const before = await intakeDepth();
      const first = await c.send(d, { idempotencyKey: key });
      const again = await c.send(d, { idempotencyKey: key });
      assert.equal(again.messageId, first.messageId);
      assert.equal(p.upstream[2]?.headers["idempotent-replayed"], "true");
      assert.equal((await intakeDepth()) - before, 1);
    } finally {
      await p.close();
    }
  });

  test("every attempt of a call carries one X-Correlation-Id: the one given, else one per call; one the API would replace is refused before any request", async () => {
    const p = await startProxy(api.url, async (n, _req, forward, res) => {
      if (n === 2) return json(res, 503, { error: "injected" }); // the unnamed send's first attempt
      relay(await forward(), res);
    });
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, baseDelayMs: 20 });
      await c.send(text("named"), { correlationId: "checkout-7.a_b" });
      assert.equal(p.seen[0]?.headers["x-correlation-id"], "checkout-7.a_b");
      assert.equal(p.upstream[0]?.headers["x-correlation-id"], "checkout-7.a_b", "the API keeps it");
      await c.send(text("unnamed"));
      const made = String(p.seen[1]?.headers["x-correlation-id"]);
      assert.match(made, /^[0-9a-f-]{36}$/);
      assert.equal(p.seen[2]?.headers["x-correlation-id"], made, "the retry carries the same");
      const seen = p.seen.length;
      await assert.rejects(c.send(text("bad id"), { correlationId: "a/../b" }), RangeError);
      assert.equal(p.seen.length, seen, "nothing sent");
      const err = await failure(c.send({ ...draft, recipientId: ".." }, { correlationId: "named-error" }));
      assert.ok(err instanceof ValidationError, String(err));
      assert.equal(err.correlationId, "named-error");
    } finally {
      await p.close();
    }
  });

  test("the same key with another body is an IdempotencyConflictError (422), not retried", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user });
    const key = crypto.randomUUID();
    await c.send(text("first body"), { idempotencyKey: key });
    const err = await failure(c.send(text("another body"), { idempotencyKey: key }));
    assert.ok(err instanceof IdempotencyConflictError, String(err));
    assert.equal(err.status, 422);
    assert.equal(err.attempts, 1);
    assert.equal(err.idempotencyKey, key);
  });
});

describe("typed errors", () => {
  test("400 is a ValidationError naming the field, not retried", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user });
    const err = await failure(c.send({ ...draft, content: "" }));
    assert.ok(err instanceof ValidationError, String(err));
    assert.ok(err instanceof MessagesClientError);
    assert.equal(err.status, 400);
    assert.equal(err.attempts, 1);
    assert.ok(err.fields.some((f) => f.field === "content"), JSON.stringify(err.fields));
  });

  test("413 is a PayloadTooLargeError (a ValidationError) naming the field", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user });
    // 50 values of 4096 four-byte characters: each within its limit, 800 KB together (SQS takes 256 KiB).
    const metadata = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, "😀".repeat(4096)]));
    const err = await failure(c.send({ ...draft, metadata }));
    assert.ok(err instanceof PayloadTooLargeError, String(err));
    assert.ok(err instanceof ValidationError);
    assert.equal(err.status, 413);
    assert.ok(err.fields.length > 0, JSON.stringify(err.body));
  });

  test("401 is an UnauthenticatedError, not retried", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: "not-a-jwt" });
    const err = await failure(c.send(draft));
    assert.ok(err instanceof UnauthenticatedError, String(err));
    assert.equal(err.attempts, 1);
  });

  test("403 when sending as a creator the token is not granted: ForbiddenError naming creatorId", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.other });
    const err = await failure(c.send(draft));
    assert.ok(err instanceof ForbiddenError, String(err));
    assert.deepEqual(err.fields.map((f) => f.field), ["creatorId"]);
  });

  test("status needs the ops scope: ForbiddenError for a user token, the report for ops", async () => {
    const err = await failure(new MessagesClient({ baseUrl: api.url, token: api.tokens.user }).status());
    assert.ok(err instanceof ForbiddenError, String(err));
    const st = await new MessagesClient({ baseUrl: api.url, token: api.tokens.ops }).status();
    assert.equal(typeof st.healthy, "boolean");
    assert.equal(st.queues?.length, 4);
  });

  test("503 from an API that is not configured is a SendingDisabledError with its reason, not retried", async () => {
    const p = await startProxy(off.url, async (_n, _req, forward, res) => relay(await forward(), res));
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: off.tokens.user });
      const err = await failure(c.send(draft));
      assert.ok(err instanceof SendingDisabledError, String(err));
      assert.equal(err.status, 503);
      assert.match(err.reason, /INTAKE_QUEUE_URL|queue/i);
      assert.equal(p.seen.length, 1);
    } finally {
      await p.close();
    }
  });

  test("a client without configuration rejects every call with SendingDisabledError and sends nothing", async () => {
    const c = new MessagesClient({ baseUrl: undefined, token: api.tokens.user });
    assert.equal(c.enabled, false);
    const err = await failure(c.send(draft));
    assert.ok(err instanceof SendingDisabledError, String(err));
    assert.equal(err.status, undefined);
    assert.equal(err.attempts, 0);
    assert.equal(new MessagesClient({ baseUrl: "http://api.example.com", token: "t" }).enabled, false, "a token never travels over plain http to a remote host");
  });
});

describe("safe retries", () => {
  test("the answer lost after the API committed: retried with the same key, the message is queued once", async () => {
    // The first request reaches the API, which queues the message; the proxy then drops the connection.
    const p = await startProxy(api.url, async (n, _req, forward, res) => {
      const u = await forward();
      if (n === 1) return void res.socket?.destroy();
      relay(u, res);
    });
    try {
      const retries: RetryInfo[] = [];
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, baseDelayMs: 50, onRetry: (i) => void retries.push(i) });
      const before = await intakeDepth();
      const r = await c.send(text("commit then drop"));
      const committed = JSON.parse(p.upstream[0]!.body.toString()) as { messageId: string };
      assert.equal(r.messageId, committed.messageId, "the retry got the stored answer");
      assert.equal(p.seen[0]?.headers["idempotency-key"], p.seen[1]?.headers["idempotency-key"]);
      assert.equal(retries.length, 1);
      assert.equal(retries[0]?.status, undefined, "no answer");
      assert.equal((await intakeDepth()) - before, 1, "queued once");
    } finally {
      await p.close();
    }
  });

  test("a 502 after the API committed: retried with the same key, same id", async () => {
    const p = await startProxy(api.url, async (n, _req, forward, res) => {
      const u = await forward();
      if (n === 1) return json(res, 502, { message: "Internal Server Error" });
      relay(u, res);
    });
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, baseDelayMs: 50 });
      const r = await c.send(text("commit then 502"));
      assert.equal(r.messageId, (JSON.parse(p.upstream[0]!.body.toString()) as { messageId: string }).messageId);
      assert.equal(p.upstream[1]?.headers["idempotent-replayed"], "true");
    } finally {
      await p.close();
    }
  });

  test("503 without Retry-After: exponential backoff with jitter, the same key, then queued", async () => {
    const p = await startProxy(api.url, async (n, _req, forward, res) => {
      if (n <= 2) return json(res, 503, { error: "injected" });
      relay(await forward(), res);
    });
    try {
      const retries: RetryInfo[] = [];
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, baseDelayMs: 100, maxDelayMs: 1000, onRetry: (i) => void retries.push(i) });
      const r = await c.send(text("through two 503"));
      assert.equal(r.status, "queued");
      assert.equal(p.seen.length, 3);
      assert.equal(new Set(p.seen.map((s) => s.headers["idempotency-key"])).size, 1);
      // equal jitter: attempt n waits within [d/2, d], d = 100 ms * 2^(n-1)
      assert.ok(retries[0]!.delayMs >= 50 && retries[0]!.delayMs <= 100, String(retries[0]?.delayMs));
      assert.ok(retries[1]!.delayMs >= 100 && retries[1]!.delayMs <= 200, String(retries[1]?.delayMs));
    } finally {
      await p.close();
    }
  });

  test("5xx on every attempt: UnavailableError after maxAttempts, gaveUp false", async () => {
    const p = await startProxy(api.url, (_n, _req, _f, res) => json(res, 503, { error: "injected" }));
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, baseDelayMs: 20, maxAttempts: 3 });
      const err = await failure(c.send(draft));
      assert.ok(err instanceof UnavailableError, String(err));
      assert.equal(err.attempts, 3);
      assert.equal(err.gaveUp, false);
      assert.equal(p.seen.length, 3);
    } finally {
      await p.close();
    }
  });

  test("no server: NetworkError (never a raw TypeError) after every attempt, with the key to retry", async () => {
    const c = new MessagesClient({ baseUrl: await closedPort(), token: api.tokens.user, baseDelayMs: 20 });
    const err = await failure(c.send(draft));
    assert.ok(err instanceof NetworkError, String(err));
    assert.ok(!(err instanceof TypeError));
    assert.equal(err.attempts, 3);
    assert.match(String(err.idempotencyKey), /^[0-9a-f-]{36}$/);
    assert.ok(err.cause instanceof Error);
  });

  test("Retry-After: 3600 is not waited for: RateLimitedError at once with the server's 3600 and gaveUp", async () => {
    const p = await startProxy(api.url, (_n, _req, _f, res) => json(res, 429, { error: "slow down" }, { "Retry-After": "3600" }));
    try {
      const retries: RetryInfo[] = [];
      // A deadline of 2 h: only the cap can stop the client from waiting.
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, maxRetryAfterMs: 30_000, timeoutMs: 7_200_000, onRetry: (i) => void retries.push(i) });
      const err = await failure(c.send(draft));
      assert.ok(err instanceof RateLimitedError, String(err));
      assert.equal(err.retryAfterSeconds, 3600);
      assert.equal(err.gaveUp, true);
      assert.equal(err.attempts, 1);
      assert.equal(retries.length, 0, "no wait");
      assert.match(err.message, /wait 3600 s, more than maxRetryAfterMs/);
    } finally {
      await p.close();
    }
  });

  test("the real API's 429: Retry-After within the cap is waited for, then the send goes through", async () => {
    const p = await startProxy(strict.url, async (_n, _req, forward, res) => relay(await forward(), res));
    try {
      const retries: RetryInfo[] = [];
      const c = new MessagesClient({ baseUrl: p.url, token: strict.tokens.user, maxRetryAfterMs: 10_000, timeoutMs: 30_000, onRetry: (i) => void retries.push(i) });
      // Send until the caller quota (3 per 4 s) answers 429 once; that send must still go through.
      for (let i = 0; i < 20 && retries.length === 0; i++) {
        const r = await c.send(text(`rate ${i}`));
        assert.equal(r.status, "queued");
      }
      assert.equal(retries.length, 1, "one 429 met");
      const info = retries[0]!;
      const told = p.upstream.find((u) => u.status === 429)?.headers["retry-after"];
      assert.equal(info.status, 429);
      assert.equal(info.retryAfterSeconds, Number(told), "the server's value");
      assert.ok(info.delayMs >= Number(told) * 1000, `waited ${info.delayMs} ms for Retry-After ${told}`);
    } finally {
      await p.close();
    }
  });

  test("the real API's 429 over the cap: RateLimitedError with the server's Retry-After, gaveUp, no wait", async () => {
    const p = await startProxy(strict.url, async (_n, _req, forward, res) => relay(await forward(), res));
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: strict.tokens.user, maxRetryAfterMs: 500 });
      let err: unknown;
      for (let i = 0; i < 20 && err === undefined; i++) err = await c.send(text(`cap ${i}`)).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof RateLimitedError, String(err));
      const told = p.upstream.at(-1)?.headers["retry-after"];
      assert.equal(err.retryAfterSeconds, Number(told));
      assert.ok(err.retryAfterSeconds! >= 1);
      assert.equal(err.gaveUp, true);
      assert.equal(err.attempts, 1);
    } finally {
      await p.close();
    }
  });
});

describe("review 28: attacks on the promises", () => {
  test("a key HTTP trims to nothing (' ') still makes the retry safe: refused before any request, or queued once", async () => {
    // The API commits the first attempt, then the proxy drops the connection.
    const p = await startProxy(api.url, async (n, _req, forward, res) => {
      const u = await forward();
      if (n === 1) return void res.socket?.destroy();
      relay(u, res);
    });
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, baseDelayMs: 50 });
      const before = await intakeDepth();
      const outcome = await c.send(text("blank key"), { idempotencyKey: " " }).then((r) => r, (e: unknown) => e);
      if (outcome instanceof RangeError) {
        assert.equal(p.seen.length, 0, "refused before any request");
        return;
      }
      assert.ok(!(outcome instanceof Error), String(outcome));
      assert.equal(p.seen[0]?.headers["idempotency-key"], p.seen[1]?.headers["idempotency-key"]);
      assert.equal((await intakeDepth()) - before, 1, `queued once (the API saw Idempotency-Key ${JSON.stringify(p.seen[0]?.headers["idempotency-key"])})`);
    } finally {
      await p.close();
    }
  });

  test("a token with a line break inside never appears in the error or in check()'s log", async () => {
    // e.g. a JWT pasted into the environment wrapped over two lines.
    const [head, tail] = [api.tokens.user.slice(0, 40), api.tokens.user.slice(40)];
    const wrapped = `${head}\n${tail}`;
    const err = await failure(new MessagesClient({ baseUrl: api.url, token: wrapped, baseDelayMs: 20 }).send(draft));
    assert.ok(err instanceof MessagesClientError, String(err));
    assert.ok(!err.message.includes(head) && !err.message.includes(tail), `the error holds the token: ${err.message}`);
    const log = recordingLogger();
    await new MessagesClient({ baseUrl: api.url, token: async () => wrapped, logger: log }).check();
    const logged = JSON.stringify(log.lines);
    assert.ok(!logged.includes(head) && !logged.includes(tail), `check() logged the token: ${logged}`);
  });

  test("check() never logs a credential held in the base URL it refuses", async () => {
    const log = recordingLogger();
    for (const baseUrl of ["https://svc:s3cret-pw@api.example.com", "https://api.example.com/?api_key=s3cret-key"]) {
      const r = await new MessagesClient({ baseUrl, token: api.tokens.user, logger: log }).check();
      assert.equal(r.configured, false, baseUrl);
    }
    const logged = JSON.stringify(log.lines);
    assert.ok(!logged.includes("s3cret"), `check() logged a credential: ${logged}`);
  });

  test("a long deadline (timeoutMs 30 days, i.e. no deadline to speak of) still sends", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user, timeoutMs: 30 * 24 * 3600 * 1000 });
    const r = await c.send(text("long deadline")).then((r) => r, (e: unknown) => e);
    assert.ok(!(r instanceof Error), `a 30-day deadline passed at once: ${String(r)}`);
  });

  test("an Idempotency-Key HTTP cannot carry ('ключ') is refused before any request, not a NetworkError that says the send may be queued", async () => {
    const p = await startProxy(api.url, async (_n, _req, forward, res) => relay(await forward(), res));
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, baseDelayMs: 20 });
      const err = await failure(c.send(text("cyrillic key"), { idempotencyKey: "ключ" }));
      assert.equal(p.seen.length, 0);
      assert.ok(!(err instanceof NetworkError), `told "no answer from the API" (retry with the same key) for a request never sent: ${String(err)}`);
    } finally {
      await p.close();
    }
  });

  test("a throwing onRetry or logger: send still rejects with a MessagesClientError, check() still never throws", async () => {
    const p = await startProxy(api.url, (_n, _req, _f, res) => json(res, 503, { error: "injected" }));
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, baseDelayMs: 20, onRetry: () => { throw new TypeError("metrics sink broke"); } });
      const err = await failure(c.send(draft));
      assert.ok(err instanceof MessagesClientError, `a raw ${String(err)} escaped`);
      const broken = { info: () => { throw new Error("log sink broke"); }, warn: () => { throw new Error("log sink broke"); } };
      const r = await new MessagesClient({ baseUrl: "", logger: broken }).check().then((r) => r, (e: unknown) => e);
      assert.ok(!(r instanceof Error), `check() threw: ${String(r)}`);
    } finally {
      await p.close();
    }
  });
});

describe("bounded in time", () => {
  test("a hanging API: TimeoutError at the call's deadline; the same key then gets the committed message", async () => {
    // The API commits, its answer never comes back.
    const p = await startProxy(api.url, async (_n, _req, forward) => {
      await forward();
    });
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, timeoutMs: 10_000 });
      const d = text("hang");
      const err = await failure(c.send(d, { timeoutMs: 2_000 }));
      assert.ok(err instanceof TimeoutError, String(err));
      assert.equal(err.timeoutMs, 2_000);
      assert.equal(err.attempts, 1);
      // On a slow machine the API may still be at it: the retry then meets 409 and waits.
      const again = await new MessagesClient({ baseUrl: api.url, token: api.tokens.user, timeoutMs: 30_000 }).send(d, { idempotencyKey: err.idempotencyKey });
      for (let i = 0; i < 100 && p.upstream.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      const committed = JSON.parse(p.upstream[0]!.body.toString()) as { messageId: string };
      assert.equal(again.messageId, committed.messageId);
    } finally {
      await p.close();
    }
  });

  test("a wait that would pass the deadline is not started: the last error, gaveUp", async () => {
    const p = await startProxy(api.url, (_n, _req, _f, res) => json(res, 503, { error: "injected" }, { "Retry-After": "3" }));
    try {
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, maxRetryAfterMs: 10_000, timeoutMs: 2_000 });
      const err = await failure(c.send(draft));
      assert.ok(err instanceof UnavailableError, String(err));
      assert.equal(err.gaveUp, true);
      assert.equal(err.retryAfterSeconds, 3);
      assert.equal(p.seen.length, 1);
    } finally {
      await p.close();
    }
  });

  test("AbortSignal: aborting during a wait rejects with AbortedError carrying the reason; no further request", async () => {
    const p = await startProxy(api.url, (_n, _req, _f, res) => json(res, 503, { error: "injected" }, { "Retry-After": "5" }));
    try {
      const ctl = new AbortController();
      const c = new MessagesClient({ baseUrl: p.url, token: api.tokens.user, maxRetryAfterMs: 10_000, timeoutMs: 60_000, onRetry: () => ctl.abort("user left") });
      const err = await failure(c.send(draft, { signal: ctl.signal }));
      assert.ok(err instanceof AbortedError, String(err));
      assert.equal(err.cause, "user left");
      assert.equal(p.seen.length, 1);
      const pre = await failure(c.send(draft, { signal: AbortSignal.abort() }));
      assert.ok(pre instanceof AbortedError);
      assert.equal(pre.attempts, 0);
    } finally {
      await p.close();
    }
  });
});

describe("tokens", () => {
  test("the token provider is called before every attempt, so a rotated token is used on the retry", async () => {
    const p = await startProxy(api.url, async (n, _req, forward, res) => {
      if (n === 1) return json(res, 503, { error: "injected" });
      relay(await forward(), res);
    });
    try {
      const tokens = [api.tokens.user, api.tokens.userRotated];
      let calls = 0;
      const c = new MessagesClient({ baseUrl: p.url, token: async () => tokens[calls++ % 2]!, baseDelayMs: 20 });
      assert.equal((await c.send(text("rotating"))).status, "queued");
      assert.equal(calls, 2);
      assert.deepEqual(p.seen.map((s) => s.headers.authorization), tokens.map((t) => `Bearer ${t}`));
    } finally {
      await p.close();
    }
  });

  test("a failing token provider is a TokenError with its cause; nothing is sent", async () => {
    const c = new MessagesClient({ baseUrl: api.url, token: () => Promise.reject(new Error("session expired")) });
    const err = await failure(c.send(draft));
    assert.ok(err instanceof TokenError, String(err));
    assert.equal((err.cause as Error).message, "session expired");
    assert.equal(err.attempts, 0);
  });
});

describe("check() at app startup", () => {
  test("configured, with a user token: ok, logged as info, nothing queued", async () => {
    const log = recordingLogger();
    const before = await intakeDepth();
    const r = await new MessagesClient({ baseUrl: api.url, token: api.tokens.user, logger: log }).check();
    assert.deepEqual(r, { ok: true, configured: true, sendingEnabled: true, reachable: true, authenticated: true, reason: undefined, status: 400 });
    assert.equal(log.lines[0]?.level, "info");
    assert.equal(await intakeDepth(), before);
  });

  test("not configured: a warning, sending disabled, no request (seed 000 R1.2)", async () => {
    const log = recordingLogger();
    const r = await new MessagesClient({ baseUrl: "", token: undefined, logger: log }).check();
    assert.equal(r.ok, false);
    assert.equal(r.configured, false);
    assert.equal(r.sendingEnabled, false);
    assert.equal(r.reachable, undefined);
    assert.equal(log.lines.length, 1);
    assert.equal(log.lines[0]?.level, "warn");
    assert.match(log.lines[0]!.message, /sending disabled: no API base URL/);
  });

  test("the API is not configured: a warning, sending disabled with the API's reason (seed 000 R1.5)", async () => {
    const log = recordingLogger();
    const r = await new MessagesClient({ baseUrl: off.url, token: off.tokens.user, logger: log }).check();
    assert.equal(r.ok, false);
    assert.equal(r.configured, true);
    assert.equal(r.sendingEnabled, false);
    assert.equal(r.reachable, true);
    assert.equal(r.status, 503);
    assert.equal(log.lines[0]?.level, "warn");
  });

  test("unreachable API and refused token are warnings; the token never appears in a log", async () => {
    const log = recordingLogger();
    const down = await new MessagesClient({ baseUrl: await closedPort(), token: api.tokens.user, logger: log }).check();
    assert.equal(down.reachable, false);
    assert.equal(down.ok, false);
    assert.equal(down.sendingEnabled, true, "configured: sends will be tried");
    const refused = await new MessagesClient({ baseUrl: api.url, token: "expired-token", logger: log }).check();
    assert.equal(refused.reachable, true);
    assert.equal(refused.authenticated, false);
    assert.equal(refused.status, 401);
    assert.deepEqual(log.lines.map((l) => l.level), ["warn", "warn"]);
    const logged = JSON.stringify(log.lines);
    assert.ok(!logged.includes(api.tokens.user) && !logged.includes("expired-token"), logged);
  });
});

describe("retry arithmetic", () => {
  test("backoffDelayMs doubles from the base, capped, with equal jitter", () => {
    assert.equal(backoffDelayMs(1, 200, 2000, 0), 100);
    assert.equal(backoffDelayMs(1, 200, 2000, 0.999999) <= 200, true);
    assert.equal(backoffDelayMs(3, 200, 2000, 0), 400);
    assert.equal(backoffDelayMs(10, 200, 2000, 0), 1000);
  });

  test("parseRetryAfter reads seconds and HTTP dates", () => {
    const now = Date.parse("2026-12-01T22:00:00Z");
    assert.equal(parseRetryAfter("120", now), 120);
    assert.equal(parseRetryAfter("Tue, 01 Dec 2026 22:01:00 GMT", now), 60);
    assert.equal(parseRetryAfter("Tue, 01 Dec 2026 21:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
});
