// Drives the page in Debian's headless Chromium for tests/tests/wasm_browser.rs:
// `node browser.mjs CONFIG.json` serves CONFIG.root on localhost, then generates with the
// shipped model, picks CONFIG.pick from disk and generates again, picks the corrupted
// CONFIG.corrupt and reads the error, generates once more, and scores CONFIG.score. Prints one JSON object with
// what the page showed; screenshots go to CONFIG.screenshots.

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { basename, extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".safetensors": "application/octet-stream",
};

const server = createServer(async (request, response) => {
  const path = new URL(request.url, "http://localhost").pathname;
  const file = normalize(join(config.root, path === "/" ? "index.html" : path));
  if (!file.startsWith(normalize(config.root))) {
    response.writeHead(403).end();
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    response.end(body);
  } catch {
    response.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: config.chromium ?? "/usr/bin/chromium",
  headless: true,
  // Chromium refuses to sandbox as root, which test machines often are.
  args: ["--no-sandbox"],
});
const result = { url, pageErrors: [], consoleErrors: [], requests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  page.on("pageerror", (error) => result.pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") {
      result.consoleErrors.push(message.text());
    }
  });
  // Everything the page fetches, to show it never leaves localhost.
  page.on("request", (request) => result.requests.push(request.url()));
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
} finally {
  await browser.close();
  server.close();
}
process.stdout.write(JSON.stringify(result));
