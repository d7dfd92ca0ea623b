// The page: loads the module and the shipped model, reads the controls, shows the names with
// their scores. Every failure ends up as text in #error, never only on the console.

import { Namegen, NamegenError, moduleFile } from "./namegen.js";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("model-status"),
  file: $("model-file"),
  shipped: $("shipped"),
  error: $("error"),
  controls: $("controls"),
  generate: $("generate"),
  names: $("names"),
  scoreForm: $("score-form"),
  scoreInput: $("score-input"),
  score: $("score"),
  scoreOutput: $("score-output"),
};

/** The module, once instantiated. */
let namegen = null;
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

/** Loads `bytes` as the model, named `label` in the status line. */
function useModel(bytes, label) {
  const description = namegen.loadModel(bytes);
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
    useModel(await fetchBytes("model.safetensors"), "shipped model");
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
    useModel(bytes, file.name);
  } catch (error) {
    showError(`Could not load ${file.name}: ${describe(error)}`);
    restore();
  } finally {
    // Picking the same file again must fire `change` again.
    ui.file.value = "";
  }
}

/** After a refused file, the model in use before it is loaded again (it was overwritten). */
function restore() {
  if (current === null) {
    ui.status.textContent = "No model loaded.";
    setReady(false);
    return;
  }
  try {
    namegen.loadModel(current.bytes);
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

function render(names) {
  const items = names.map(({ name, logLikelihood, cut }) => {
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
  });
  ui.names.replaceChildren(...items);
  // Counts renders, so a test can tell a new list from an equal old one.
  ui.names.dataset.generation = String(Number(ui.names.dataset.generation || 0) + 1);
}

function generate(event) {
  event.preventDefault();
  clearError();
  try {
    render(namegen.generate(settings()));
  } catch (error) {
    showError(describe(error));
  }
}

function score(event) {
  event.preventDefault();
  clearError();
  try {
    const { logLikelihood, symbols } = namegen.score(ui.scoreInput.value);
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
  try {
    namegen = await Namegen.instantiate(await fetchBytes(moduleFile()));
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
