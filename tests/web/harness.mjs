// What the Chromium drivers (browser.mjs, package-page.mjs) share: a static file server on
// localhost and Debian's headless Chromium, driven by playwright-core (no browser download).

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".safetensors": "application/octet-stream",
};

/**
 * Serves the files under `root` on 127.0.0.1 (a free port); `/` is `index.html`. Resolves to
 * `{ url, close }`.
 */
export async function serve(root) {
  const server = createServer(async (request, response) => {
    const path = new URL(request.url, "http://localhost").pathname;
    const file = normalize(join(root, path === "/" ? "index.html" : path));
    if (!file.startsWith(normalize(root))) {
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
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/** Debian's headless Chromium (or the one at `executablePath`). */
export function launch(executablePath = "/usr/bin/chromium") {
  return chromium.launch({
    executablePath,
    headless: true,
    // Chromium refuses to sandbox as root, which test machines often are.
    args: ["--no-sandbox"],
  });
}

/**
 * Records what the page does that a test must see: uncaught errors, console errors and every
 * request (to show it never leaves localhost), into `result`.
 */
export function watch(page, result) {
  result.pageErrors = [];
  result.consoleErrors = [];
  result.requests = [];
  page.on("pageerror", (error) => result.pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") {
      result.consoleErrors.push(message.text());
    }
  });
  page.on("request", (request) => result.requests.push(request.url()));
}
