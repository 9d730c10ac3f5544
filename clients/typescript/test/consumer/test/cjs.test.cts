// The CommonJS build, loaded with require() (an older Next.js config, a
// script, jest): same classes, same behaviour.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { MessagesClient, SendingDisabledError, ValidationError } from "@huntaze/messages-client";

test("require() loads dist/cjs and the client works from it", async () => {
  assert.match(require.resolve("@huntaze/messages-client"), /dist[\\/]cjs[\\/]index\.js$/);
  const server = createServer((req, res) => {
    const status = req.headers["idempotency-key"] ? 202 : 400;
    res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(status === 202 ? { messageId: "00000000-0000-4000-8000-000000000000", status: "queued" } : { error: "no key" }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const { port } = server.address() as { port: number };
    const c = new MessagesClient({ baseUrl: `http://127.0.0.1:${port}`, token: "t" });
    assert.equal((await c.send({ recipientId: "fan-1", content: "hi" })).status, "queued");
    assert.ok(ValidationError.prototype instanceof Error);
    await assert.rejects(new MessagesClient({}).send({ recipientId: "fan-1", content: "hi" }), SendingDisabledError);
  } finally {
    server.close();
  }
});
