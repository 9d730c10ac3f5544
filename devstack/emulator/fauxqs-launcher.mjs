// Starts fauxqs (SQS + S3 emulator) on 127.0.0.1 with a kernel-chosen port.
// The fauxqs CLI binds 0.0.0.0 and ignores FAUXQS_LOGGER, so tests start it
// through this launcher instead. It prints one JSON line {"url": ...} once it
// listens and exits when its stdin closes (the Go test process died or is done).
import { buildApp } from "fauxqs";

const app = buildApp({ logger: false, host: "127.0.0.1", defaultRegion: "us-east-1" });
const url = await app.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(JSON.stringify({ url }) + "\n");

const stop = async () => {
  try { await app.close(); } finally { process.exit(0); }
};
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
