// Drives a page of its own that imports the packed package (package-page/), in Debian's
// headless Chromium, for tests/tests/wasm_browser.rs: `node package-page.mjs CONFIG.json`.
// CONFIG.root holds the page, model.safetensors and the unpacked package in
// node_modules/namegen-wasm; the page's import map is made here from the package's exports.
// Then: CONFIG.small names on the page's thread and in the worker, CONFIG.blocks and
// CONFIG.later (names from an index past 0) names in the worker, and CONFIG.long names in the worker while #ping is clicked every CONFIG.clickMs,
// cancelled once CONFIG.clicks clicks were handled and a block came back; then CONFIG.small in
// the same worker again. Prints one JSON object with what came back.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch, serve, watch } from "./harness.mjs";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
// A hang guard, not a measure: a worker that never answers must fail the test, not stall CI.
setTimeout(() => {
  console.error("package-page.mjs: no answer from the page in 5 minutes");
  process.exit(1);
}, 300_000).unref();

// A bare specifier per export the page uses, resolved as a bundler or Node would: the
// package's `exports`, "default" condition.
const packageDir = "node_modules/namegen-wasm";
const { exports } = JSON.parse(readFileSync(join(config.root, packageDir, "package.json"), "utf8"));
const imports = {};
for (const [subpath, specifier] of [[".", "namegen-wasm"], ["./worker", "namegen-wasm/worker"]]) {
  imports[specifier] = `/${packageDir}/${exports[subpath].default.replace(/^\.\//, "")}`;
}
const page = readFileSync(join(config.root, "index.html"), "utf8").replace(
  "<!-- importmap -->",
  `<script type="importmap">${JSON.stringify({ imports })}</script>`,
);
writeFileSync(join(config.root, "index.html"), page);

const server = await serve(config.root);
const browser = await launch(config.chromium);
const result = { url: server.url, imports };
try {
  const tab = await browser.newPage();
  watch(tab, result);
  tab.setDefaultTimeout(60_000);
  await tab.goto(server.url);
  await tab.waitForFunction(() => window.packageReady === true);

  result.mainThread = await tab.evaluate((s) => window.packageTest.mainThread(s), config.small);
  result.worker = await tab.evaluate((s) => window.packageTest.inWorker(s), config.small);
  result.blocks = await tab.evaluate((s) => window.packageTest.inWorker(s), config.blocks);
  result.later = await tab.evaluate((s) => window.packageTest.inWorker(s), config.later);

  await tab.evaluate((s) => window.packageTest.startLong(s), config.long);
  result.clicksSent = 0;
  for (;;) {
    const state = await tab.evaluate(() => window.packageTest.longState());
    if (state.settled || (state.clicks >= config.clicks && state.done > 0)) {
      break;
    }
    await tab.click("#ping");
    result.clicksSent += 1;
    await new Promise((resolve) => setTimeout(resolve, config.clickMs));
  }
  result.long = await tab.evaluate(() => window.packageTest.cancelLong());
  result.afterCancel = await tab.evaluate((s) => window.packageTest.inWorker(s), config.small);
} finally {
  await browser.close();
  server.close();
}
process.stdout.write(JSON.stringify(result));
