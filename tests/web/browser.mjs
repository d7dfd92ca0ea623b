// Drives the page in Debian's headless Chromium for tests/tests/wasm_browser.rs:
// `node browser.mjs CONFIG.json` serves CONFIG.root on localhost, then generates with the
// shipped model, picks CONFIG.pick from disk and generates again, picks the corrupted
// CONFIG.corrupt and reads the error, generates once more, scores CONFIG.score, and starts
// CONFIG.longCount names and cancels them. Prints one JSON object with what the page showed;
// screenshots go to CONFIG.screenshots.

import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { launch, serve, watch } from "./harness.mjs";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const server = await serve(config.root);
const url = server.url;
const browser = await launch(config.chromium);
const result = { url };
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  watch(page, result);
  page.setDefaultTimeout(30_000);

  await page.goto(url);
  await page.waitForSelector('#model-status[data-ready="true"]');
  result.shippedStatus = await page.textContent("#model-status");

  const fill = async (settings) => {
    for (const [id, value] of Object.entries(settings)) {
      await page.fill(`#${id}`, String(value));
    }
  };
  const generate = async () => {
    const before = await page.getAttribute("#names", "data-generation");
    await page.click("#generate");
    await page.waitForFunction(
      (previous) => document.getElementById("names").dataset.generation !== previous,
      before,
    );
    return page.$$eval("#names li", (items) =>
      items.map((item) => ({
        name: item.dataset.name,
        logLikelihood: item.dataset.logLikelihood,
        cut: item.dataset.cut === "true",
        shown: item.textContent,
      })),
    );
  };
  const errorText = async () =>
    (await page.isVisible("#error")) ? page.textContent("#error") : null;

  await fill(config.settings);
  result.shipped = await generate();
  result.errorAfterShipped = await errorText();

  await page.setInputFiles("#model-file", config.pick);
  const picked = basename(config.pick);
  await page.waitForFunction(
    (name) => document.getElementById("model-status").textContent.startsWith(name),
    picked,
  );
  result.pickedStatus = await page.textContent("#model-status");
  result.picked = await generate();
  await page.screenshot({ path: join(config.screenshots, "page-names.png"), fullPage: true });

  await page.setInputFiles("#model-file", config.corrupt);
  await page.waitForSelector("#error:not([hidden])");
  result.corruptError = await page.textContent("#error");
  result.corruptStatus = await page.textContent("#model-status");
  await page.screenshot({ path: join(config.screenshots, "page-error.png"), fullPage: true });

  result.afterCorrupt = await generate();

  await page.fill("#score-input", config.score);
  await page.click("#score");
  await page.waitForFunction(() => document.getElementById("score-output").textContent !== "");
  result.score = await page.textContent("#score-output");

  // A long generation, cancelled once the first block is listed.
  await page.fill("#count", String(config.longCount));
  await page.click("#generate");
  await page.waitForSelector("#cancel:not([hidden])");
  await page.waitForFunction(() => document.getElementById("progress-text").textContent.includes(" of "));
  await page.click("#cancel");
  await page.waitForFunction(() =>
    document.getElementById("progress-text").textContent.startsWith("Cancelled"),
  );
  await page.screenshot({ path: join(config.screenshots, "page-cancelled.png") });
  result.cancelText = await page.textContent("#progress-text");
  result.cancelHidden = await page.isHidden("#cancel");
  result.cancelled = await page.$$eval("#names li", (items) =>
    items.map((item) => ({
      name: item.dataset.name,
      logLikelihood: item.dataset.logLikelihood,
      cut: item.dataset.cut === "true",
    })),
  );
} finally {
  await browser.close();
  server.close();
}
process.stdout.write(JSON.stringify(result));
