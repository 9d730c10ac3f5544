// Starts dynalite (DynamoDB emulator) in memory on 127.0.0.1 with a
// kernel-chosen port; tables become ACTIVE at once. Prints one JSON line
// {"url": ...} once it listens and exits when its stdin closes.
const dynalite = require("dynalite");

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}` }) + "\n");
});

const stop = () => server.close(() => process.exit(0));
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
