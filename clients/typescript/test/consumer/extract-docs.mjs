// Writes every ```ts block of a Markdown file whose first line is
// "// file: <path>" to <out>/<path>, so the examples in docs/api.md are the
// very files `make test-ts` type-checks. Usage: node extract-docs.mjs docs/api.md out/
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

const [doc, out] = process.argv.slice(2);
if (!doc || !out) throw new Error("usage: extract-docs.mjs <markdown> <out dir>");
const blocks = [...readFileSync(doc, "utf8").matchAll(/^```ts\n\/\/ file: (\S+)\n([\s\S]*?)^```$/gm)];
if (blocks.length === 0) throw new Error(`${doc}: no \`\`\`ts block starting with "// file: <path>"`);
for (const [, file, body] of blocks) {
  const dest = path.join(out, file);
  if (!dest.startsWith(path.resolve(out) + path.sep) && !path.resolve(dest).startsWith(path.resolve(out) + path.sep)) throw new Error(`${file}: outside ${out}`);
  mkdirSync(path.dirname(dest), { recursive: true });
  writeFileSync(dest, `// file: ${file} (from ${doc})\n${body}`);
  console.log(`${doc} -> ${dest}`);
}
