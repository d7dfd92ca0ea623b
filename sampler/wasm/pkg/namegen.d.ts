// Types of namegen.js, the package's main module ("namegen-wasm").

/**
 * Settings of one generation, as `namegen sample` takes them. Numbers may come as text (a
 * form field's value); temperature and top-p reach the sampler as the nearest f32.
 */
export interface Settings {
  /** Names to make: 1 to `maxNames` (1,000) for `Namegen`, 1 to `MAX_COUNT` for the worker. Default 10. */
  count?: number | string;
  /** 0 is greedy, 1 the model's own distribution. Default 1. */
  temperature?: number | string;
  /** Only the k most likely symbols; 0 for all. Default 0. */
  topK?: number | string;
  /** Only the most likely symbols whose probabilities add up to p; 1 for all. Default 1. */
  topP?: number | string;
  /** 0 to 2^64 - 1; a string or a bigint beyond 2^53. Default 0. */
  seed?: number | string | bigint;
  /**
   * The index of the first name (0 to 2^64 - 1, given as the seed is): names `first..first +
   * count` of the seed are those `namegen sample` makes at those places. Default 0.
   */
  first?: number | string | bigint;
  /** Every name starts with it. Default "". */
  prefix?: string;
  /** The shortest name, in characters. Default 1. */
  minLen?: number | string;
  /** The longest name, in characters; a longer one is cut (`cut: true`). Default 32. */
  maxLen?: number | string;
}

/** One generated name. */
export interface GeneratedName {
  /** The name. */
  name: string;
  /** Its natural-log likelihood under the model, end symbol included (as `namegen sample` reports it). */
  logLikelihood: number;
  /** Whether it was cut at `maxLen` rather than ended by the model. */
  cut: boolean;
}

/** A name's score. */
export interface NameScore {
  /** The natural-log likelihood of the name, end symbol included. */
  logLikelihood: number;
  /** The symbols scored: its characters and the end. */
  symbols: number;
}

/** A refusal from the module (bad model file, bad settings), with a message for the user. */
export class NamegenError extends Error {
  constructor(message: string);
  name: "NamegenError";
}

/** The module, instantiated on the calling thread. Its calls are synchronous. */
export class Namegen {
  private constructor();

  /** Instantiates the module from its bytes. */
  static instantiate(wasmBytes: ArrayBuffer | ArrayBufferView): Promise<Namegen>;

  /**
   * Instantiates the module at `url`, by default the package's own build for this engine
   * (`moduleFile()`, beside namegen.js): fetched in a page or a worker, read from disk for a
   * `file:` URL (Node).
   */
  static load(url?: string | URL): Promise<Namegen>;

  /** The largest model file it takes, in bytes (262,144). */
  readonly modelCapacity: number;
  /** The longest prefix or name to score, in UTF-8 bytes (1,024). */
  readonly inputCapacity: number;
  /** The most names one `generate` call makes (1,000). */
  readonly maxNames: number;

  /**
   * Loads a folded `.safetensors` model; returns its one-line description. Throws
   * `NamegenError` saying what is wrong with a bad file (no model is loaded then).
   */
  loadModel(modelBytes: Uint8Array | ArrayBuffer): string;

  /**
   * Names `first..first + count` of `seed`: the host's `namegen sample` names at those places,
   * bit for bit. Throws `NamegenError` for bad settings, for names past index 2^64 - 1, or when
   * no model is loaded.
   */
  generate(settings?: Settings): GeneratedName[];

  /** The log-likelihood of `name`; throws `NamegenError` for a character the model does not know. */
  score(name: string): NameScore;
}

/**
 * The package's module file for this engine: `"namegen-simd.wasm"` (SIMD128 kernels, the same
 * names faster) where WebAssembly SIMD runs, `"namegen.wasm"` elsewhere.
 */
export function moduleFile(): "namegen.wasm" | "namegen-simd.wasm";

/** A seed as the module takes it: the u64's bits as an i64. Throws `NamegenError` outside 0..2^64. */
export function parseSeed(seed: number | string | bigint): bigint;

/** A name's index as the module takes it: the u64's bits as an i64. Throws `NamegenError` outside 0..2^64. */
export function parseIndex(index: number | string | bigint): bigint;
