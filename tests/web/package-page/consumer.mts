// A TypeScript consumer of the packed package, for `tsc --noEmit` in tests/tests/wasm_browser.rs:
// every export in use, each result given its type, and misuses the declarations must refuse
// (each `@ts-expect-error` fails the check when its line compiles).

import {
  type GeneratedName,
  moduleFile,
  Namegen,
  NamegenError,
  type NameScore,
  parseIndex,
  parseSeed,
  type Settings,
} from "namegen-wasm";
import { MAX_COUNT, type Progress, NamegenWorker } from "namegen-wasm/worker";

export async function onThePagesThread(model: Uint8Array): Promise<GeneratedName[]> {
  const namegen: Namegen = await Namegen.load();
  const fromBytes: Namegen = await Namegen.instantiate(new ArrayBuffer(8));
  const fromUrl: Namegen = await Namegen.load(new URL("https://example.invalid/namegen.wasm"));
  const limits: number[] = [namegen.modelCapacity, namegen.inputCapacity, namegen.maxNames];
  const description: string = namegen.loadModel(model);
  const score: NameScore = namegen.score("emma");
  const seed: bigint = parseSeed("18446744073709551615");
  const first: bigint = parseIndex(1000);
  const file: "namegen.wasm" | "namegen-simd.wasm" = moduleFile();
  const settings: Settings = { count: "12", temperature: 0.8, topK: 10, topP: "0.95", seed, first, prefix: "ma" };
  // @ts-expect-error: the module is made by instantiate or load, not new
  new Namegen();
  // @ts-expect-error: a seed is a number, a string or a bigint
  namegen.generate({ seed: [1] });
  // @ts-expect-error: scores are numbers
  const wrong: string = score.logLikelihood;
  void [fromBytes, fromUrl, limits, description, wrong, file];
  return namegen.generate(settings);
}

export async function inTheWorker(model: ArrayBuffer): Promise<number> {
  const namegen: NamegenWorker = await NamegenWorker.create();
  const description: Promise<string> = namegen.loadModel(model);
  const controller = new AbortController();
  const names: GeneratedName[] = await namegen.generate(
    { count: MAX_COUNT, seed: 7n },
    {
      signal: controller.signal,
      onProgress: ({ names: block, done, total }: Progress) => {
        const first: GeneratedName | undefined = block[0];
        void [first, done / total];
      },
    },
  );
  const score: NameScore = await namegen.score("emma");
  // @ts-expect-error: the worker's answers are promises
  const now: string = namegen.loadModel(model);
  // @ts-expect-error: onProgress takes a Progress
  namegen.generate({}, { onProgress: (progress: string) => progress });
  namegen.terminate();
  void [description, now];
  return names.length + score.symbols;
}

export function refusal(error: unknown): string | null {
  return error instanceof NamegenError ? error.message : null;
}
