// The packed package in a page of its own, for tests/tests/wasm_browser.rs (driven by
// ../package-page.mjs): `namegen-wasm` and `namegen-wasm/worker` come from the import map, so
// through the package's exports. window.packageTest holds what the driver calls.

import { Namegen } from "namegen-wasm";
import { NamegenWorker } from "namegen-wasm/worker";

const model = fetch("model.safetensors")
  .then((response) => response.arrayBuffer())
  .then((buffer) => new Uint8Array(buffer));

/** Floats as String(), which round-trips, for the Rust side to compare bits. */
const plain = ({ name, logLikelihood, cut }) => ({ name, logLikelihood: String(logLikelihood), cut });

let worker = null;
async function started() {
  if (worker === null) {
    worker = await NamegenWorker.create();
    await worker.loadModel(await model);
  }
  return worker;
}

/** The long generation: what came back, and each click on #ping while the page waited. */
const long = { running: false, names: [], clicks: [], outcome: null, controller: null };

// Input delay: from the click's creation in the browser to this handler on the page's thread.
document.getElementById("ping").addEventListener("click", (event) => {
  long.clicks.push({
    latency: performance.now() - event.timeStamp,
    running: long.running,
    done: long.names.length,
  });
});

window.packageTest = {
  /** Names from the module on the page's own thread. */
  async mainThread(settings) {
    const namegen = await Namegen.load();
    namegen.loadModel(await model);
    return namegen.generate(settings).map(plain);
  },

  /** Names from the worker, the progress reports on the way, and how long it took (ms). */
  async inWorker(settings) {
    const progress = [];
    const namegen = await started();
    const start = performance.now();
    const names = await namegen.generate(settings, {
      onProgress: ({ names: block, done, total }) => progress.push({ block: block.length, done, total }),
    });
    return { names: names.map(plain), progress, ms: performance.now() - start };
  },

  /** Starts a generation in the worker and returns at once; `long` follows it. */
  async startLong(settings) {
    const namegen = await started();
    long.controller = new AbortController();
    long.running = true;
    namegen
      .generate(settings, {
        signal: long.controller.signal,
        onProgress: ({ names }) => long.names.push(...names),
      })
      .then(
        (names) => ({ resolved: names.length }),
        (error) => ({ rejected: error.name, isDomException: error instanceof DOMException }),
      )
      .then((outcome) => {
        long.running = false;
        long.outcome = outcome;
      });
  },

  /** How far the long generation is. */
  longState() {
    return { done: long.names.length, clicks: long.clicks.length, settled: long.outcome !== null };
  },

  /** Cancels it; resolves with what came back once it settled, and how long that took (ms). */
  async cancelLong() {
    const start = performance.now();
    long.controller.abort();
    while (long.outcome === null) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const ms = performance.now() - start;
    return { outcome: long.outcome, names: long.names.map(plain), clicks: long.clicks, ms };
  },
};
window.packageReady = true;
