// What the tests share: the real API (test/cmd/apiserver: the production
// API wiring over fauxqs and dynalite on 127.0.0.1), and a recording proxy in
// front of it for the faults the API cannot be asked for (an answer lost
// after the API committed, a 5xx that then clears, a hang).
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface API {
  url: string;
  tokens: { user: string; userRotated: string; other: string; ops: string };
  stop(): void;
}

/** REPO_ROOT is set by `make test-ts`; the apiserver binary is built there first. */
export async function startAPI(...args: string[]): Promise<API> {
  const bin = process.env["APISERVER_BIN"];
  if (!bin) throw new Error("APISERVER_BIN is not set: run these tests with `make test-ts`");
  const proc: ChildProcess = spawn(bin, args, { stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("apiserver did not start within 120 s")), 120_000);
    createInterface({ input: proc.stdout! }).once("line", (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    proc.once("exit", (code) => reject(new Error(`apiserver exited with ${code}`)));
  });
  const info = JSON.parse(line) as Omit<API, "stop">;
  return { ...info, stop: () => proc.stdin?.end() };
}

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** What the proxy does with one request: forward it, then answer as the real API did or otherwise. */
export type Behaviour = (
  n: number,
  req: Seen,
  forward: () => Promise<Upstream>,
  res: ServerResponse,
) => Promise<void> | void;

export interface Upstream {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface Proxy {
  url: string;
  seen: Seen[];
  /** Answers the API gave through the proxy (forwarded ones only). */
  upstream: Upstream[];
  close(): Promise<void>;
}

export async function startProxy(target: string, behaviour: Behaviour): Promise<Proxy> {
  const seen: Seen[] = [];
  const upstream: Upstream[] = [];
  const sockets = new Set<Socket>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const ch of req) chunks.push(ch as Buffer);
    const s: Seen = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString() };
    seen.push(s);
    const forward = async (): Promise<Upstream> => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host" && k !== "content-length") headers[k] = v;
      const init: RequestInit = { method: s.method, headers };
      if (s.body) init.body = s.body;
      const up = await fetch(target + s.url, init);
      const h: Record<string, string> = {};
      up.headers.forEach((v, k) => {
        if (k !== "content-length" && k !== "content-encoding" && k !== "transfer-encoding" && k !== "connection") h[k] = v;
      });
      const u = { status: up.status, headers: h, body: Buffer.from(await up.arrayBuffer()) };
      upstream.push(u);
      return u;
    };
    await behaviour(seen.length, s, forward, res);
  });
  server.on("connection", (sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    upstream,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Answers as the API did. */
export function relay(u: Upstream, res: ServerResponse): void {
  res.writeHead(u.status, u.headers).end(u.body);
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(body));
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** A logger that keeps what it is told. */
export function recordingLogger() {
  const lines: { level: "info" | "warn"; message: string; details: Record<string, unknown> | undefined }[] = [];
  return {
    lines,
    info: (message: string, details?: Record<string, unknown>) => void lines.push({ level: "info", message, details }),
    warn: (message: string, details?: Record<string, unknown>) => void lines.push({ level: "warn", message, details }),
  };
}
