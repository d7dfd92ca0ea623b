// Types of worker.js, the package's worker API ("namegen-wasm/worker").

import type { GeneratedName, NameScore, Settings } from "./namegen.js";

/** The most names one `NamegenWorker.generate` call makes (100,000). */
export const MAX_COUNT: number;

/** One block of names, as the worker made it. */
export interface Progress {
  /** The names of this block, in order. */
  names: GeneratedName[];
  /** Names made so far, this block included. */
  done: number;
  /** Names asked for. */
  total: number;
}

/** How to follow and stop a generation. */
export interface GenerateOptions {
  /** Called with each block of names as it arrives, until the promise settles. */
  onProgress?: (progress: Progress) => void;
  /** Aborting it stops the worker after the block in progress; the promise then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * The module in a Web Worker of its own (a browser's module worker), so the page's thread
 * stays free while it generates. Requests run one at a time, in the order they were made.
 */
export class NamegenWorker {
  private constructor();

  /** Starts the worker; resolves once its module is instantiated. */
  static create(): Promise<NamegenWorker>;

  /** As `Namegen.loadModel`, in the worker (the bytes are copied, the caller keeps them). */
  loadModel(modelBytes: Uint8Array | ArrayBuffer): Promise<string>;

  /**
   * Makes `count` names (up to `MAX_COUNT`) in blocks of 1,000, each block the next names of
   * the same seed: exactly `Namegen.generate`'s names for the same settings, and `namegen
   * sample`'s, for any count. Resolves with every name; rejects with `NamegenError` for bad
   * settings, with `signal.reason` once an aborted generation has stopped.
   */
  generate(settings?: Settings, options?: GenerateOptions): Promise<GeneratedName[]>;

  /** As `Namegen.score`, in the worker. */
  score(name: string): Promise<NameScore>;

  /** Stops the worker at once; pending and later requests reject with an `AbortError`. */
  terminate(): void;
}
