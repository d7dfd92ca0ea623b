// The package's worker itself (started by worker.js): one instance of the module, answering
// requests one at a time and in order. A generation runs block by block and gives the event
// loop a turn between blocks, so that a cancel message gets in and stops it.

import { Namegen, parseIndex } from "./namegen.js";

// The same build of the module as on the page's thread: Namegen.load picks it for the engine.
const loaded = Namegen.load();
/** Requests run one after another: the module's exports are not re-entrant. */
let queue = Promise.resolve();
/** Ids of generations to stop; ids grow, so one at or below `lastDone` is already over. */
const cancelled = new Set();
let lastDone = -1;

self.addEventListener("message", ({ data }) => {
  if (data.type === "cancel") {
    if (data.id > lastDone) {
      cancelled.add(data.id);
    }
    return;
  }
  queue = queue.then(() => answer(data));
});

/** Runs one request and posts its answer, or the error it threw. */
async function answer(request) {
  try {
    const namegen = await loaded;
    self.postMessage({ id: request.id, ok: true, value: await run(namegen, request) });
  } catch (error) {
    self.postMessage({ id: request.id, ok: false, error: { name: error.name, message: error.message } });
  } finally {
    lastDone = request.id;
    cancelled.delete(request.id);
  }
}

function run(namegen, request) {
  switch (request.type) {
    case "ready":
      return undefined;
    case "load":
      return namegen.loadModel(request.bytes);
    case "score":
      return namegen.score(request.name);
    case "generate":
      return generate(namegen, request);
    default:
      throw new Error(`unknown request ${request.type}`);
  }
}

/**
 * Posts `settings.count` names in blocks of `maxNames`, each block the names after the last:
 * names `first + done ..` of the same seed, so that together they are the one list.
 */
async function generate(namegen, { id, settings }) {
  const total = settings.count;
  const first = BigInt.asUintN(64, parseIndex(settings.first ?? 0));
  for (let done = 0; done < total; ) {
    if (cancelled.has(id)) {
      throw new DOMException(`cancelled after ${done} names`, "AbortError");
    }
    const count = Math.min(namegen.maxNames, total - done);
    const names = namegen.generate({ ...settings, count, first: first + BigInt(done) });
    done += count;
    self.postMessage({ id, block: { names, done, total } });
    // A turn of the event loop: a cancel posted meanwhile is handled before the next block.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
