// The name generator module's JS side, the main module of the npm package (package.json): the
// same file runs in a page, in the package's worker (worker-thread.js) and under Node (the tests
// import it), so all of them go through exactly this code to reach the WASM exports.
//
// The module has no imports and no allocator: bytes go in and out through fixed buffers whose
// addresses its exports return (see sampler/wasm/src/lib.rs for the protocol).

/** A refusal from the module (bad model file, bad settings), with a message for the user. */
export class NamegenError extends Error {
  constructor(message) {
    super(message);
    this.name = "NamegenError";
  }
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });
const U64_LIMIT = 1n << 64n;

export class Namegen {
  /** Instantiates the module from its bytes (an ArrayBuffer or typed array). */
  static async instantiate(wasmBytes) {
    const { instance } = await WebAssembly.instantiate(wasmBytes, {});
    return new Namegen(instance.exports);
  }

  /**
   * Instantiates the module at `url`, by default the package's own build for this engine
   * (`moduleFile()`) beside this file: fetched in a page or a worker, read from disk for a
   * `file:` URL (Node's `fetch` does not read files).
   */
  static async load(url = new URL(`./${moduleFile()}`, import.meta.url)) {
    if (String(url).startsWith("file:")) {
      const { readFile } = await import("node:fs/promises");
      return Namegen.instantiate(await readFile(new URL(url)));
    }
    const response = await fetch(url);
    if (!response.ok) {
      throw new Error(`${url}: HTTP ${response.status}`);
    }
    return Namegen.instantiate(await response.arrayBuffer());
  }

  constructor(exports) {
    this.wasm = exports;
    this.modelCapacity = exports.model_capacity() >>> 0;
    this.inputCapacity = exports.input_capacity() >>> 0;
    this.maxNames = exports.max_names() >>> 0;
  }

  /** The module's memory as bytes; taken anew each time since growing memory detaches it. */
  bytes(pointer, length) {
    return new Uint8Array(this.wasm.memory.buffer, pointer >>> 0, length);
  }

  /** Text written by the last call, or a NamegenError for a negative status. */
  result(status) {
    const length = Math.abs(status);
    const text = fromUtf8.decode(this.bytes(this.wasm.text_buffer(), length));
    if (status < 0) {
      throw new NamegenError(text);
    }
    return text;
  }

  /** Writes `text` to the input buffer; returns its length in bytes. */
  input(text, what) {
    const encoded = utf8.encode(text);
    if (encoded.length > this.inputCapacity) {
      throw new NamegenError(`the ${what} is longer than ${this.inputCapacity} bytes`);
    }
    this.bytes(this.wasm.input_buffer(), encoded.length).set(encoded);
    return encoded.length;
  }

  /**
   * Loads a folded `.safetensors` model (bytes); returns its one-line description.
   * Throws NamegenError saying what is wrong with a bad file.
   */
  loadModel(modelBytes) {
    const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
    if (bytes.length > this.modelCapacity) {
      // Refused before copying: the buffer (and the model loaded in it) stays as it was.
      throw new NamegenError(
        `the file is ${bytes.length} bytes; this page takes models up to ${this.modelCapacity} bytes`,
      );
    }
    this.bytes(this.wasm.model_buffer(), bytes.length).set(bytes);
    return this.result(this.wasm.load_model(bytes.length));
  }

  /**
   * Generates names `first..first + count` of the seed: those of `namegen sample` at the same
   * places, bit for bit, so that a long list can be made in calls of up to maxNames. Settings
   * as `namegen sample` takes them: count, temperature, topK, topP, seed (a decimal string, a
   * number or a BigInt, 0 <= seed < 2^64), prefix, minLen, maxLen; and first (the index of the
   * first name, as the seed is given, default 0). Temperature and top-p reach the sampler as
   * f32: the nearest f32 to the JS number. Returns [{ name, logLikelihood, cut }].
   */
  generate({
    count = 10,
    temperature = 1,
    topK = 0,
    topP = 1,
    seed = 0,
    first = 0,
    prefix = "",
    minLen = 1,
    maxLen = 32,
  } = {}) {
    const whole = (value, what) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
        throw new NamegenError(`${what} must be a whole number from 0`);
      }
      return n;
    };
    const real = (value, what) => {
      const n = Number(value);
      if (typeof value === "string" && value.trim() === "") {
        throw new NamegenError(`${what} is empty`);
      }
      if (!Number.isFinite(n)) {
        throw new NamegenError(`${what} must be a number`);
      }
      return n;
    };
    const n = whole(count, "the count");
    if (n < 1 || n > this.maxNames) {
      throw new NamegenError(`the count must be from 1 to ${this.maxNames}`);
    }
    const prefixLength = this.input(String(prefix), "prefix");
    const status = this.wasm.generate(
      n,
      real(temperature, "the temperature"),
      whole(topK, "top-k"),
      real(topP, "top-p"),
      parseSeed(seed),
      parseIndex(first),
      prefixLength,
      whole(minLen, "the minimum length"),
      whole(maxLen, "the maximum length"),
    );
    const lines = this.result(status).split("\n");
    const scores = new Float64Array(this.wasm.memory.buffer, this.wasm.scores_buffer() >>> 0, n);
    const cut = this.bytes(this.wasm.cut_buffer(), n);
    return Array.from({ length: n }, (_, i) => ({
      name: lines[i],
      logLikelihood: scores[i],
      cut: cut[i] === 1,
    }));
  }

  /** The log-likelihood of `name` and the symbols scored (its characters and the end). */
  score(name) {
    const length = this.input(String(name), "name");
    this.result(this.wasm.score_name(length));
    const scores = new Float64Array(this.wasm.memory.buffer, this.wasm.scores_buffer() >>> 0, 2);
    return { logLikelihood: scores[0], symbols: scores[1] };
  }
}

/**
 * The smallest module with a SIMD128 instruction (a function returning `v128.const 0`): it
 * validates exactly where the engine runs WebAssembly SIMD.
 */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array(16).fill(0), 0x0b, // v128.const 0
]);

/**
 * The module file for this engine: `namegen-simd.wasm` (the build with SIMD128 kernels, the
 * same names faster) where WebAssembly SIMD runs, `namegen.wasm` elsewhere.
 */
export function moduleFile() {
  return WebAssembly.validate(SIMD_PROBE) ? "namegen-simd.wasm" : "namegen.wasm";
}

/** A seed as the u64 the sampler takes (passed to WASM as an i64 BigInt: same bits). */
export function parseSeed(seed) {
  return parseU64(seed, "the seed");
}

/** A name's index as the u64 the sampler takes (passed to WASM as an i64 BigInt: same bits). */
export function parseIndex(index) {
  return parseU64(index, "the first name's index");
}

/** `value` (a decimal string, a number or a BigInt) as a u64 passed to WASM as an i64 BigInt. */
function parseU64(value, what) {
  const refusal = () => new NamegenError(`${what} must be a whole number from 0 to 18446744073709551615`);
  let whole;
  if (typeof value === "bigint") {
    whole = value;
  } else {
    const text = String(value).trim();
    if (!/^[0-9]+$/.test(text)) {
      throw refusal();
    }
    whole = BigInt(text);
  }
  if (whole < 0n || whole >= U64_LIMIT) {
    throw refusal();
  }
  return BigInt.asIntN(64, whole);
}
