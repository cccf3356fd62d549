// The s2s page: send the model's input (a question and dialogue for AutoMaster models, else a
// text) to POST /summarize, show the summary (each word shaded by how much it was copied, for the
// pointer-generator) and the attention heatmap.
"use strict";

const $ = (id) => document.getElementById(id);
const OPTIONS = ["search", "beam_size", "max_length", "min_length", "no_repeat_ngram_size", "alpha", "beta"];
// viridis at 0, 0.25, 0.5, 0.75, 1 (as in s2s/plotting.py)
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const AUTOMASTER = ["question", "dialogue"];
let joiner = ""; // between summary words: " " for whitespace-tokenized models
let examples = [];
let fields = AUTOMASTER; // the input fields the model takes (GET /health: input): these, or ["text"]

function viridis(value) {
  const position = Math.min(Math.max(value, 0), 1) * (VIRIDIS.length - 1);
  const low = Math.min(Math.floor(position), VIRIDIS.length - 2);
  const frac = position - low;
  const rgb = VIRIDIS[low].map((c, i) => Math.round(c * (1 - frac) + VIRIDIS[low + 1][i] * frac));
  return `rgb(${rgb.join(",")})`;
}

async function getJSON(url, init) {
  const response = await fetch(url, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

async function init() {
  try {
    const health = await getJSON("/health");
    const m = health.model;
    const parts = m.encoder ? `${m.encoder} encoder, ${m.attention} attention, ${m.decoder} decoder` : `${m.type}`;
    $("model").textContent = `Model: ${parts}${m.copies && !m.decoder ? " with copying" : ""}` +
      `${m.coverage ? " with coverage" : ""}; vocabularies ${health.vocab.source} / ${health.vocab.target}` +
      ` words; ${health.tokenizer} tokenizer; on ${health.device}.`;
    joiner = health.tokenizer === "whitespace" ? " " : "";
    fields = health.input.includes("question") ? AUTOMASTER : ["text"];
    for (const name of OPTIONS) $(`opt-${name}`).value = health.options[name];
  } catch (err) {
    $("model").textContent = `The server does not answer: ${err.message}`;
  }
  $("automaster-input").hidden = fields !== AUTOMASTER;
  $("text-input").hidden = fields === AUTOMASTER;
  const offered = await getJSON("/examples").catch(() => ({ examples: [], total: 0 }));
  examples = offered.examples;
  const select = $("example");
  if (examples.length) {
    select.replaceChildren(new Option("(pick one to fill the form)", ""));
    examples.forEach((e, i) => select.add(new Option(`${e.id}: ${(e.question || e.text || "").slice(0, 40)}`, i)));
    select.disabled = false;
  }
  if (offered.total > examples.length) $("example-count").textContent = `(${examples.length} of ${offered.total})`;
}

// An example's values for the form's fields (a text example fills the dialogue, and the reverse).
function exampleValues(example) {
  if (fields === AUTOMASTER) return { question: example.question ?? "", dialogue: example.dialogue ?? example.text ?? "" };
  return { text: example.text ?? [example.question, example.dialogue].filter(Boolean).join(" ") };
}

function pickExample() {
  const example = examples[$("example").value];
  if (!example) return;
  for (const [name, value] of Object.entries(exampleValues(example))) $(name).value = value;
}

function isEmpty() {
  return fields.every((name) => !$(name).value.trim());
}

function emptyMessage() {
  const what = fields === AUTOMASTER ? "Type the car owner's question or the dialogue" : "Paste a text to summarize";
  return `${what} first${examples.length ? ", or pick a dev example" : ""}.`;
}

function requestBody() {
  const body = Object.fromEntries(fields.map((name) => [name, $(name).value]));
  for (const name of OPTIONS) {
    const input = $(`opt-${name}`);
    if (input.value === "") continue;
    body[name] = input.type === "number" ? Number(input.value) : input.value;
  }
  return body;
}

async function submit(event) {
  event.preventDefault();
  if (isEmpty()) {
    setStatus(emptyMessage(), true);
    $(fields[0]).focus();
    return;
  }
  const button = $("submit");
  button.disabled = true;
  setStatus("Summarizing…");
  try {
    const result = await getJSON("/summarize", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(requestBody()),
    });
    render(result);
    setStatus("");
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    button.disabled = false;
  }
}

function render(result) {
  renderSummary(result.tokens, result.p_gen);
  const example = examples[$("example").value];
  const sameInput = example && Object.entries(exampleValues(example)).every(([name, value]) => $(name).value === value);
  $("reference").hidden = !(sameInput && example.reference);
  if (sameInput) $("reference").textContent = `Reference: ${example.reference}`;
  $("timing").textContent = `${result.tokens.length} words in ${(result.seconds * 1000).toFixed(0)} ms` +
    (result.batch_size > 1 ? ` (batched with ${result.batch_size - 1} other request${result.batch_size > 2 ? "s" : ""})` : "");
  renderHeatmap(result.attention, result.tokens, result.source_tokens, result.p_gen);
  $("result").hidden = false;
}

function renderSummary(tokens, pGen) {
  const summary = $("summary");
  summary.replaceChildren();
  $("copy-legend").hidden = !pGen;
  tokens.forEach((token, i) => {
    if (i && joiner) summary.append(joiner);
    const span = document.createElement("span");
    span.className = "tok";
    span.textContent = token;
    if (pGen) {
      const copied = 1 - pGen[i];
      span.style.backgroundColor = `rgba(var(--copy), ${copied.toFixed(3)})`;
      span.title = `copied ${(copied * 100).toFixed(0)}%`;
    }
    summary.append(span);
  });
  if (!tokens.length) summary.textContent = "(empty summary)";
}

function headerCell(text, scope, className) {
  const th = document.createElement("th");
  th.scope = scope;
  const label = document.createElement("span"); // column labels are set vertically by the CSS
  label.textContent = text;
  th.append(label);
  if (className) th.className = className;
  return th;
}

function renderHeatmap(attention, tokens, sourceTokens, pGen) {
  const table = $("heatmap");
  table.replaceChildren();
  if (!attention) return;
  const caption = table.createCaption();
  caption.className = "muted";
  caption.textContent = `Attention of ${tokens.length} output words over ${sourceTokens.length} source words`;
  const head = table.createTHead().insertRow();
  head.append(headerCell("", "col", "corner"));
  sourceTokens.forEach((word) => head.append(headerCell(word, "col")));
  if (pGen) head.append(headerCell("copy", "col", "copy-col"));
  const body = table.createTBody();
  attention.forEach((weights, i) => {
    const row = body.insertRow();
    row.append(headerCell(tokens[i], "row"));
    weights.forEach((weight, j) => {
      const cell = row.insertCell();
      cell.style.backgroundColor = viridis(weight);
      cell.title = `${tokens[i]} ← ${sourceTokens[j]}: ${weight.toFixed(3)}`;
    });
    if (pGen) {
      const cell = row.insertCell();
      cell.className = "copy-col";
      cell.style.backgroundColor = viridis(1 - pGen[i]);
      cell.title = `${tokens[i]}: copied ${(1 - pGen[i]).toFixed(3)}`;
    }
  });
}

$("form").addEventListener("submit", submit);
$("example").addEventListener("change", pickExample);
init();
