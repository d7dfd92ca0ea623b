// The page: loads the module and the shipped model, reads the controls, shows the names with
// their scores. The module runs in the package's worker (namegen/, as site.sh copies it), so the
// page stays responsive while it generates; names appear block by block and Cancel stops them.
// Every failure ends up as text in #error, never only on the console.

import { NamegenError } from "./namegen/namegen.js";
import { NamegenWorker } from "./namegen/worker.js";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("model-status"),
  file: $("model-file"),
  shipped: $("shipped"),
  error: $("error"),
  controls: $("controls"),
  generate: $("generate"),
  cancel: $("cancel"),
  progress: $("progress"),
  progressText: $("progress-text"),
  names: $("names"),
  scoreForm: $("score-form"),
  scoreInput: $("score-input"),
  score: $("score"),
  scoreOutput: $("score-output"),
};

/** The module in its worker, once instantiated. */
let namegen = null;
/** Stops the generation in progress, if any. */
let running = null;
/** The bytes of the model in use, loaded again after a refused file overwrote the buffer. */
let current = null;

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}

/** The message to show for anything thrown: ours as it is, the rest with its kind. */
function describe(error) {
  if (error instanceof NamegenError) {
    return error.message;
  }
  return `${error && error.name ? error.name : "Error"}: ${error && error.message ? error.message : error}`;
}

function setReady(ready) {
  ui.generate.disabled = !ready;
  ui.score.disabled = !ready;
}

/** While names are made: Cancel instead of Generate, and the model stays the one in use. */
function setBusy(busy) {
  ui.generate.disabled = busy;
  ui.cancel.hidden = !busy;
  ui.file.disabled = busy;
  ui.shipped.disabled = busy;
}

/** Loads `bytes` as the model, named `label` in the status line. */
async function useModel(bytes, label) {
  const description = await namegen.loadModel(bytes);
  current = { bytes, label, description };
  ui.status.textContent = `${label}: ${description}`;
  ui.status.dataset.ready = "true";
  setReady(true);
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function loadShipped() {
  clearError();
  try {
    await useModel(await fetchBytes("model.safetensors"), "shipped model");
  } catch (error) {
    showError(`Could not load the shipped model: ${describe(error)}`);
  }
}

async function loadPicked() {
  const file = ui.file.files[0];
  if (!file) {
    return;
  }
  clearError();
  let bytes;
  try {
    bytes = new Uint8Array(await file.arrayBuffer());
  } catch (error) {
    showError(`Could not read ${file.name}: ${describe(error)}`);
    return;
  }
  try {
    await useModel(bytes, file.name);
  } catch (error) {
    showError(`Could not load ${file.name}: ${describe(error)}`);
    await restore();
  } finally {
    // Picking the same file again must fire `change` again.
    ui.file.value = "";
  }
}

/** After a refused file, the model in use before it is loaded again (it was overwritten). */
async function restore() {
  if (current === null) {
    ui.status.textContent = "No model loaded.";
    setReady(false);
    return;
  }
  try {
    await namegen.loadModel(current.bytes);
    ui.status.textContent = `${current.label}: ${current.description} (still in use)`;
  } catch (error) {
    current = null;
    setReady(false);
    ui.status.textContent = `No model loaded: ${describe(error)}`;
  }
}

function settings() {
  const value = (id) => $(id).value;
  return {
    count: value("count"),
    temperature: value("temperature"),
    topK: value("top-k"),
    topP: value("top-p"),
    prefix: value("prefix"),
    seed: value("seed"),
    minLen: value("min-len"),
    maxLen: value("max-len"),
  };
}

/** One name as a list item. */
function nameItem({ name, logLikelihood, cut }) {
  const item = document.createElement("li");
  item.dataset.name = name;
  // The exact f64, for the tests: String() of a number round-trips.
  item.dataset.logLikelihood = String(logLikelihood);
  item.dataset.cut = String(cut);
  const text = document.createElement("span");
  text.className = "name";
  text.textContent = name;
  item.append(text);
  if (cut) {
    const mark = document.createElement("span");
    mark.className = "cut-mark";
    mark.title = "cut at the maximum length";
    mark.textContent = "\u2026";
    item.append(mark);
  }
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = logLikelihood.toFixed(2);
  item.append(score);
  return item;
}

function showProgress(done, total) {
  ui.progress.max = total;
  ui.progress.value = done;
  ui.progressText.textContent = `${done.toLocaleString("en")} of ${total.toLocaleString("en")} names`;
}

/** Generates with the settings, listing each block of names as the worker sends it. */
async function generate(event) {
  event.preventDefault();
  clearError();
  const request = settings();
  const controller = new AbortController();
  running = controller;
  setBusy(true);
  ui.names.replaceChildren();
  ui.progress.hidden = false;
  ui.progressText.textContent = "";
  try {
    await namegen.generate(request, {
      signal: controller.signal,
      onProgress: ({ names, done, total }) => {
        ui.names.append(...names.map(nameItem));
        showProgress(done, total);
      },
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") {
      ui.progressText.textContent = `Cancelled after ${ui.names.childElementCount.toLocaleString("en")} names`;
    } else {
      ui.progressText.textContent = "";
      showError(describe(error));
    }
  } finally {
    running = null;
    setBusy(false);
    ui.progress.hidden = true;
    // Counts runs, so a test can tell a new list from an equal old one.
    ui.names.dataset.generation = String(Number(ui.names.dataset.generation) + 1);
  }
}

async function score(event) {
  event.preventDefault();
  clearError();
  try {
    const { logLikelihood, symbols } = await namegen.score(ui.scoreInput.value);
    const perplexity = Math.exp(-logLikelihood / symbols);
    ui.scoreOutput.textContent =
      `log-likelihood ${logLikelihood.toFixed(2)} (per-symbol perplexity ${perplexity.toFixed(2)})`;
  } catch (error) {
    ui.scoreOutput.textContent = "";
    showError(describe(error));
  }
}

async function start() {
  // Anything unexpected still reaches the page, not only the console.
  window.addEventListener("error", (event) => showError(`Unexpected error: ${event.message}`));
  window.addEventListener("unhandledrejection", (event) =>
    showError(`Unexpected error: ${describe(event.reason)}`),
  );
  ui.controls.addEventListener("submit", generate);
  ui.scoreForm.addEventListener("submit", score);
  ui.file.addEventListener("change", loadPicked);
  ui.shipped.addEventListener("click", loadShipped);
  ui.cancel.addEventListener("click", () => running?.abort());
  try {
    namegen = await NamegenWorker.create();
  } catch (error) {
    ui.status.textContent = "The module did not load.";
    showError(
      `Could not start the generator: ${describe(error)}. Serve this folder over HTTP ` +
        "(for example python3 -m http.server); browsers do not fetch files from file:// pages.",
    );
    return;
  }
  ui.status.textContent = "Loading the shipped model\u2026";
  await loadShipped();
}

start();
