// Times the WASM module under Node through the package's wrapper (pkg/namegen.js), for the
// wasm-speed command (tests/src/bin/wasm-speed.rs): `node node-speed.mjs MODULE.wasm
// MODEL.safetensors` loads both, then answers each line "COUNT SEED" on stdin with one line of
// JSON, { symbols, seconds }: the symbols drawn (characters and ends) by one generate call of
// COUNT names at default settings, and the seconds that call took.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Namegen } from "../../sampler/wasm/pkg/namegen.js";

const [wasmPath, modelPath] = process.argv.slice(2);
const namegen = await Namegen.instantiate(readFileSync(wasmPath));
namegen.loadModel(readFileSync(modelPath));

for await (const line of createInterface({ input: process.stdin })) {
  const [count, seed] = line.trim().split(/\s+/);
  const start = process.hrtime.bigint();
  const names = namegen.generate({ count: Number(count), seed });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const symbols = names.reduce((sum, { name, cut }) => sum + [...name].length + (cut ? 0 : 1), 0);
  process.stdout.write(`${JSON.stringify({ symbols, seconds })}\n`);
}
