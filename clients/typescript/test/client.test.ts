// Tests of MessagesClient against the real API (test/cmd/apiserver: the
// production API wiring over fauxqs and dynalite on 127.0.0.1). Where a
// fault is needed that the API cannot be asked for (a 503 that then
// clears), a tiny proxy in front of the real API injects it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { createServer, type Server } from "node:http";
import { fileURLToPath } from "node:url";
import path from "node:path";
import {
  MessagesClient,
  ValidationError,
  ForbiddenError,
  RateLimitedError,
} from "../src/client.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

interface Server_ {
  url: string;
  tokens: { user: string; other: string; ops: string };
  proc: ChildProcess;
}

async function startAPI(...args: string[]): Promise<Server_> {
  const proc = spawn("go", ["run", "./test/cmd/apiserver", ...args], { cwd: repoRoot, stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("apiserver did not start within 240 s")), 240_000);
    createInterface({ input: proc.stdout! }).once("line", (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    proc.once("exit", (code) => reject(new Error(`apiserver exited with ${code}`)));
  });
  return { ...JSON.parse(line), proc };
}

function stop(s: Server_ | undefined) {
  s?.proc.stdin?.end();
}

let api: Server_;
let strict: Server_; // 3 requests per caller per minute
before(async () => {
  [api, strict] = await Promise.all([startAPI(), startAPI("-caller-requests", "3", "-caller-window", "60s")]);
});
after(() => {
  stop(api);
  stop(strict);
});

const draft = { creatorId: "creator-a", recipientId: "fan-1", content: "hello from the Next.js app" };
const noSleep = async () => {};

test("send queues one message and answers its id", async () => {
  const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user });
  const r = await c.send(draft);
  assert.equal(r.status, "queued");
  assert.match(r.messageId, /^[0-9a-f-]{36}$/);
});

test("sendBatch queues up to 10 in order and refuses 11 before any request", async () => {
  const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user });
  const rs = await c.sendBatch([1, 2, 3].map((i) => ({ ...draft, content: `batch ${i}` })));
  assert.deepEqual(rs.map((r) => r.status), ["queued", "queued", "queued"]);
  await assert.rejects(c.sendBatch(Array(11).fill(draft)), RangeError);
});

test("400 is a ValidationError naming the field", async () => {
  const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user });
  const err = await c.send({ ...draft, content: "" }).then(() => null, (e) => e);
  assert.ok(err instanceof ValidationError, String(err));
  assert.equal(err.status, 400);
  assert.ok(err.fields.some((f: { field: string }) => f.field === "content"), JSON.stringify(err.fields));
});

test("403 when sending as a creator the token is not granted", async () => {
  const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.other });
  const err = await c.send(draft).then(() => null, (e) => e);
  assert.ok(err instanceof ForbiddenError, String(err));
  assert.deepEqual(err.fields.map((f: { field: string }) => f.field), ["creatorId"]);
});

test("429 is retried after Retry-After, then a RateLimitedError with the wait", async () => {
  const waits: number[] = [];
  const c = new MessagesClient({ baseUrl: strict.url, token: strict.tokens.user, sleep: async (ms) => void waits.push(ms) });
  for (let i = 0; i < 3; i++) await c.send({ ...draft, content: `rate ${i}` });
  const err = await c.send({ ...draft, content: "one too many" }).then(() => null, (e) => e);
  assert.ok(err instanceof RateLimitedError, String(err));
  assert.equal(waits.length, 2, "3 attempts: 2 waits");
  assert.ok(waits.every((w) => w >= 1000), `waits honour Retry-After (s): ${waits}`);
  assert.ok(err.retryAfterSeconds >= 1);
});

test("503 is retried with backoff and the same Idempotency-Key; the message is queued once", async () => {
  // A proxy answers the first request 503 (no Retry-After), then forwards.
  let calls = 0;
  const keys: string[] = [];
  const proxy: Server = createServer(async (req, res) => {
    calls++;
    keys.push(String(req.headers["idempotency-key"]));
    const chunks: Buffer[] = [];
    for await (const ch of req) chunks.push(ch as Buffer);
    if (calls === 1) {
      res.writeHead(503, { "Content-Type": "application/json" }).end(JSON.stringify({ error: "injected" }));
      return;
    }
    const up = await fetch(api.url + req.url, { method: req.method, headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) });
    const headers: Record<string, string> = {};
    up.headers.forEach((v, k) => (headers[k] = v));
    delete headers["content-length"];
    delete headers["content-encoding"];
    res.writeHead(up.status, headers).end(Buffer.from(await up.arrayBuffer()));
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const { port } = proxy.address() as { port: number };
  const waits: number[] = [];
  try {
    const c = new MessagesClient({ baseUrl: `http://127.0.0.1:${port}`, token: api.tokens.user, backoffMs: 200, sleep: async (ms) => void waits.push(ms) });
    const r = await c.send({ ...draft, content: "through a 503" });
    assert.equal(r.status, "queued");
    assert.equal(calls, 2);
    assert.deepEqual(waits, [200]);
    assert.equal(keys[0], keys[1], "the retry carries the same Idempotency-Key");
  } finally {
    proxy.close();
  }
});

test("an idempotent retry gets the same answer and queues nothing more", async () => {
  const c = new MessagesClient({ baseUrl: api.url, token: api.tokens.user, sleep: noSleep });
  const key = crypto.randomUUID();
  const first = await c.send({ ...draft, content: "once" }, { idempotencyKey: key });
  const again = await c.send({ ...draft, content: "once" }, { idempotencyKey: key });
  assert.equal(again.messageId, first.messageId);
  const ops = new MessagesClient({ baseUrl: api.url, token: api.tokens.ops });
  const st = await ops.status();
  assert.equal(typeof st.healthy, "boolean");
  assert.ok(st.queues && st.queues.length === 4);
});
