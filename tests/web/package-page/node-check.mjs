// The packed package under Node, for tests/tests/wasm_browser.rs: `namegen-wasm` resolves
// through the package's exports (from node_modules beside this file) and Namegen.load() reads
// its own namegen.wasm from disk. `node node-check.mjs MODEL SETTINGS_JSON` prints the names.

import { readFileSync } from "node:fs";
import { Namegen } from "namegen-wasm";

const [modelPath, settings] = process.argv.slice(2);
const namegen = await Namegen.load();
namegen.loadModel(readFileSync(modelPath));
const names = namegen.generate(JSON.parse(settings));
process.stdout.write(
  JSON.stringify(names.map(({ name, logLikelihood, cut }) => ({ name, logLikelihood: String(logLikelihood), cut }))),
);
