// Runs the WASM module under Node through the package's own wrapper (sampler/wasm/pkg/namegen.js)
// for tests/tests/wasm_node.rs: `node node-run.mjs MODULE.wasm JOBS.json` prints one JSON result
// per job, in order. A job is { model: PATH, generate: SETTINGS } or { model: PATH, score: NAME };
// a result is { ok: true, description, names | score } or { ok: false, error: MESSAGE }.
// Floats are printed with String(), which round-trips, so the Rust side can compare bits.

import { readFileSync } from "node:fs";
import { Namegen, NamegenError } from "../../sampler/wasm/pkg/namegen.js";

const [wasmPath, jobsPath] = process.argv.slice(2);
const namegen = await Namegen.instantiate(readFileSync(wasmPath));
const jobs = JSON.parse(readFileSync(jobsPath, "utf8"));

const results = jobs.map((job) => {
  try {
    const description = namegen.loadModel(readFileSync(job.model));
    if (job.score !== undefined) {
      const { logLikelihood, symbols } = namegen.score(job.score);
      return { ok: true, description, score: { logLikelihood: String(logLikelihood), symbols } };
    }
    const names = namegen.generate(job.generate).map(({ name, logLikelihood, cut }) => ({
      name,
      logLikelihood: String(logLikelihood),
      cut,
    }));
    return { ok: true, description, names };
  } catch (error) {
    // Only the module's own refusals count as answers; anything else is a bug to surface.
    if (!(error instanceof NamegenError)) {
      throw error;
    }
    return { ok: false, error: error.message };
  }
});
process.stdout.write(JSON.stringify(results));
