// The Next.js route handler of docs/api.md, run: compiled from the very
// blocks of the doc (out-next/, by make test-ts), called with a NextRequest
// as Next.js calls it. Its tokens are minted by the doc's tokenFor (jose,
// ES256) and verified by the real API against a JWKS, as the HTTP API's JWT
// authorizer does in AWS; its answers are the doc's error mapping.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { createServer, type Server } from "node:http";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { exportJWK, exportPKCS8, generateKeyPair } from "jose";
import { startAPI, startProxy, relay, json, type API } from "./support.js";

const require = createRequire(import.meta.url);
const outNext = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../out-next");
// next has no "exports" map: from an ES module its types are at next/server.js.
const { NextRequest } = require("next/server") as typeof import("next/server.js");

interface User {
  id: string;
  creatorIds: string[];
}
interface Route {
  POST(req: InstanceType<typeof NextRequest>): Promise<Response>;
}

const issuer = "https://auth.huntaze.test/";
let jwks: Server;
let api: API;
let privateKeyPem: string;
let signedIn: User | null = null;

before(async () => {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  privateKeyPem = await exportPKCS8(privateKey);
  const jwk = { ...(await exportJWK(publicKey)), kid: "messages", alg: "ES256", use: "sig" };
  jwks = createServer((_req, res) => void res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
  const { port } = jwks.address() as { port: number };
  api = await startAPI("-jwks-url", `http://127.0.0.1:${port}/jwks.json`, "-issuer", issuer);
});
after(() => {
  api?.stop();
  jwks?.close();
});

/** Loads the route afresh with this environment (lib/messages reads it at load, as in the app). */
function route(env: Record<string, string | undefined>): Route {
  for (const k of Object.keys(require.cache)) if (k.startsWith(outNext + path.sep)) delete require.cache[k];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  // lib/session.ts only declares currentUser (the app's auth provides it): the test is that auth.
  const session = require(path.join(outNext, "lib/session.js")) as { currentUser: () => Promise<User | null> };
  session.currentUser = async () => signedIn;
  return require(path.join(outNext, "app/api/messages/send/route.js")) as Route;
}

const configured = () => ({
  MESSAGES_API_URL: api.url,
  MESSAGES_JWT_PRIVATE_KEY: privateKeyPem,
  MESSAGES_JWT_KID: "messages",
  MESSAGES_JWT_ISSUER: issuer,
  MESSAGES_JWT_AUDIENCE: "huntaze-api",
});

function post(body: unknown, headers: Record<string, string> = {}) {
  return new NextRequest("http://localhost/api/messages/send", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("the Next.js route handler of docs/api.md", () => {
  test("202: the doc's token (ES256, minted per user) is accepted by the API; the browser's key makes a retry safe", async () => {
    const r = route(configured());
    signedIn = { id: "user-a", creatorIds: ["creator-a"] };
    const key = crypto.randomUUID();
    const draft = { creatorId: "creator-a", recipientId: "fan-1", content: "from the route" };
    const first = await r.POST(post(draft, { "Idempotency-Key": key }));
    assert.equal(first.status, 202, await first.clone().text());
    const a = (await first.json()) as { messageId: string; status: string };
    assert.equal(a.status, "queued");
    const again = (await (await r.POST(post(draft, { "Idempotency-Key": key }))).json()) as { messageId: string };
    assert.equal(again.messageId, a.messageId);
  });

  test("400 with the API's fields, 403 for a creator not granted, 401 when nobody is signed in", async () => {
    const r = route(configured());
    signedIn = { id: "user-a", creatorIds: ["creator-a"] };
    const bad = await r.POST(post({ creatorId: "creator-a", recipientId: "fan-1", content: "" }));
    assert.equal(bad.status, 400);
    const b = (await bad.json()) as { fields: { field: string }[] };
    assert.ok(b.fields.some((f) => f.field === "content"), JSON.stringify(b));
    const foreign = await r.POST(post({ creatorId: "creator-b", recipientId: "fan-1", content: "hi" }));
    assert.equal(foreign.status, 403);
    assert.deepEqual(((await foreign.json()) as { fields: { field: string }[] }).fields.map((f) => f.field), ["creatorId"]);
    signedIn = null;
    assert.equal((await r.POST(post({ recipientId: "fan-1", content: "hi" }))).status, 401);
  });

  test("review 28: the send committed, then the gateway throttles (429): the browser's retry as the answer tells it queues nothing twice", async () => {
    // The first attempt reaches the API, which queues the message; its answer
    // is lost; every later attempt meets API Gateway's throttle (429, no
    // Retry-After). The browser sent no Idempotency-Key (the doc allows it).
    let throttle = true;
    const p = await startProxy(api.url, async (n, _req, forward, res) => {
      if (n === 1) {
        await forward();
        return void res.socket?.destroy();
      }
      if (throttle) return json(res, 429, { message: "Too Many Requests" });
      relay(await forward(), res);
    });
    try {
      const r = route({ ...configured(), MESSAGES_API_URL: p.url });
      signedIn = { id: "user-a", creatorIds: ["creator-a"] };
      const draft = { creatorId: "creator-a", recipientId: "fan-1", content: `throttled ${crypto.randomUUID()}` };
      const first = await r.POST(post(draft));
      assert.equal(first.status, 429, await first.clone().text());
      const committed = JSON.parse(p.upstream[0]!.body.toString()) as { messageId: string };
      // The browser retries as the answer says: after Retry-After, with the Idempotency-Key it was given, if any.
      throttle = false;
      const key = first.headers.get("Idempotency-Key");
      const again = await r.POST(post(draft, key ? { "Idempotency-Key": key } : {}));
      assert.equal(again.status, 202, await again.clone().text());
      const b = (await again.json()) as { messageId: string };
      assert.equal(b.messageId, committed.messageId, `queued twice: the 429 answer gave the browser no Idempotency-Key (the client's error holds ${p.seen[0]?.headers["idempotency-key"]})`);
    } finally {
      await p.close();
    }
  });

  test("503 when MESSAGES_API_URL is not set (sending disabled); 500 when the signing key is missing", async () => {
    signedIn = { id: "user-a", creatorIds: ["creator-a"] };
    const off = await route({ ...configured(), MESSAGES_API_URL: undefined }).POST(post({ recipientId: "fan-1", content: "hi" }));
    assert.equal(off.status, 503);
    assert.match(((await off.json()) as { error: string }).error, /disabled/);
    const nokey = await route({ ...configured(), MESSAGES_JWT_PRIVATE_KEY: undefined }).POST(post({ recipientId: "fan-1", content: "hi" }));
    assert.equal(nokey.status, 500);
  });
});
