// The package's worker API, on the page's side: NamegenWorker runs the module in a module
// worker (worker-thread.js) so that a long generation never blocks the page, streams the names
// in blocks, and stops when its AbortSignal fires. The message protocol is private to this file
// and worker-thread.js.

import { NamegenError } from "./namegen.js";

/** The most names one generate call makes: 100 blocks, a few MB of names in the page. */
export const MAX_COUNT = 100_000;

/**
 * The module in a module worker of its own, so the page's thread stays free while it
 * generates. Requests run one at a time, in the order they were made.
 */
export class NamegenWorker {
  /** Starts the worker; resolves once its module is instantiated. */
  static async create() {
    const worker = new Worker(new URL("./worker-thread.js", import.meta.url), { type: "module" });
    const namegen = new NamegenWorker(worker);
    try {
      await namegen.request({ type: "ready" });
    } catch (error) {
      worker.terminate();
      throw error;
    }
    return namegen;
  }

  constructor(worker) {
    this.worker = worker;
    /** Requests sent and not yet answered, by id: { resolve, reject, onProgress, names }. */
    this.pending = new Map();
    this.nextId = 0;
    /** Why the worker answers no more (it failed or was terminated), or null. */
    this.broken = null;
    worker.addEventListener("message", ({ data }) => this.receive(data));
    // The worker's script failed to load or threw outside a request: nothing will answer.
    worker.addEventListener("error", (event) => {
      event.preventDefault();
      this.failAll(new Error(`the generator's worker failed: ${event.message ?? "no message"}`));
    });
  }

  /** As Namegen.loadModel, in the worker; the bytes are copied, the caller keeps them. */
  loadModel(modelBytes) {
    const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
    return this.request({ type: "load", bytes });
  }

  /** As Namegen.score, in the worker. */
  score(name) {
    return this.request({ type: "score", name: String(name) });
  }

  /**
   * Makes `settings.count` names (1 to MAX_COUNT, default 10) in blocks of the module's
   * maxNames (1,000), each block the next names of the same seed: the names are exactly
   * Namegen.generate's for the same settings, and `namegen sample`'s, for any count.
   * `onProgress({ names, done, total })` gets each block as it arrives. Aborting `signal` stops
   * the worker after the block in progress; the promise then rejects with `signal.reason`, or
   * resolves if the worker had already finished.
   */
  generate(settings = {}, { onProgress, signal } = {}) {
    const total = Number(settings.count ?? 10);
    if (!Number.isInteger(total) || total < 1 || total > MAX_COUNT) {
      return Promise.reject(new NamegenError(`the count must be from 1 to ${MAX_COUNT}`));
    }
    if (signal?.aborted) {
      return Promise.reject(signal.reason);
    }
    const id = this.nextId++;
    const cancel = () => this.worker.postMessage({ type: "cancel", id });
    signal?.addEventListener("abort", cancel, { once: true });
    return this.request(
      { type: "generate", id, settings: { ...settings, count: total } },
      { onProgress, names: [], reason: () => signal.reason },
    ).finally(() => signal?.removeEventListener("abort", cancel));
  }

  /** Stops the worker at once; pending and later requests reject with an AbortError. */
  terminate() {
    this.worker.terminate();
    this.failAll(new DOMException("the generator's worker was terminated", "AbortError"));
  }

  /** Sends `message` (with a fresh id unless it has one); resolves with the worker's answer. */
  request(message, entry = {}) {
    if (this.broken !== null) {
      return Promise.reject(this.broken);
    }
    const id = message.id ?? this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { ...entry, resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  /** A message from the worker: a block of names, or the answer to a request. */
  receive({ id, block, ok, value, error }) {
    const entry = this.pending.get(id);
    if (entry === undefined) {
      return;
    }
    if (block !== undefined) {
      entry.names.push(...block.names);
      entry.onProgress?.(block);
      return;
    }
    this.pending.delete(id);
    if (ok) {
      entry.resolve(entry.names ?? value);
    } else if (error.name === "AbortError") {
      entry.reject(entry.reason());
    } else if (error.name === "NamegenError") {
      entry.reject(new NamegenError(error.message));
    } else {
      entry.reject(Object.assign(new Error(error.message), { name: error.name }));
    }
  }

  /** Rejects every pending request, and every later one, with `error`. */
  failAll(error) {
    this.broken = error;
    for (const entry of this.pending.values()) {
      entry.reject(error);
    }
    this.pending.clear();
  }
}
