"""The labelling page: plain HTML, CSS and JS in one string, no external assets.

Keyboard only: the text box holds the model's reading; type to correct it, Enter
accepts, Esc skips, Ctrl+Z undoes the last label or skip (the image comes back with
what was typed), ArrowUp (review mode) puts back the label the image had. Flags
appear while typing: an empty label, characters the model has never seen (Enter
twice keeps them), characters outside ``--charset``, a label that cannot be a file name.

Element ids used by the browser test: ``image``, ``label``, ``prefill``, ``given``,
``flag``, ``error``, ``progress``, ``rate``, ``right``, ``model``, ``retrain``,
``retrain-status``; ``document.body.dataset`` holds ``state`` (``loading``, ``ready``,
``busy``, ``done``, ``error``), ``version`` (the server's, after each answer) and
``item`` (the current image's path).
"""

PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crnn-ocr: label images</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 64rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  .bar { color: #555; font-size: .9rem; display: flex; gap: 1.5rem; flex-wrap: wrap; }
  #stage { margin: 1.2rem 0; padding: 1rem; background: #fafafa; border: 1px solid #ddd; border-radius: 8px;
           text-align: center; min-height: 10rem; }
  #image { height: 8rem; max-width: 100%; object-fit: contain; image-rendering: pixelated; border: 1px solid #ccc;
           background: #fff; }
  #label { font: 2rem monospace; width: 100%; box-sizing: border-box; padding: .3rem .5rem; margin-top: 1rem; }
  #prefill, #given { color: #555; margin-top: .3rem; }
  #flag { color: #a60; font-weight: 600; min-height: 1.4rem; margin-top: .3rem; }
  #error { color: #b00; font-weight: 600; min-height: 1.4rem; }
  .keys { color: #666; font-size: .85rem; }
  kbd { border: 1px solid #bbb; border-radius: 3px; padding: 0 .3rem; background: #f4f4f4; font-size: .8rem; }
  #retrain-status { color: #555; font-size: .9rem; }
  [hidden] { display: none !important; }
</style>
</head>
<body data-state="loading" data-version="-1">
<h1>Label images</h1>
<div class="bar"><span id="progress">loading&hellip;</span><span id="rate"></span><span id="right"></span></div>
<div class="bar"><span id="model"></span></div>
<div id="stage">
  <img id="image" alt="the image to label">
  <input id="label" autocomplete="off" spellcheck="false" aria-label="label">
  <div id="prefill"></div>
  <div id="given" hidden></div>
  <div id="flag"></div>
</div>
<div id="error" role="alert"></div>
<p class="keys"><kbd>Enter</kbd> accept &nbsp; <kbd>Esc</kbd> skip &nbsp; <kbd>Ctrl</kbd>+<kbd>Z</kbd> undo
  <span id="review-keys" hidden>&nbsp; <kbd>&uarr;</kbd> the label it had</span></p>
<p><button id="retrain" type="button">Fine-tune on the labels so far</button> <span id="retrain-status"></span></p>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let st = null, shownId = null, shownModel = null, shownText = null, confirmed = null;

function setState(s) { document.body.dataset.state = s; }
function fmt(n) { return n.toLocaleString("en-US"); }

async function api(path, body) {
  setState("busy");
  let resp;
  try {
    resp = body === undefined ? await fetch(path)
      : await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                            body: JSON.stringify(body) });
  } catch (e) { $("error").textContent = "request failed: " + e; setState("error"); return null; }
  let data = null;
  try { data = await resp.json(); } catch (e) { /* no body */ }
  if (!resp.ok) {
    $("error").textContent = (data && data.detail) || ("HTTP " + resp.status);
    $("error").dataset.code = (data && data.code) || "";
    if (data && data.code === "unknown_chars") confirmed = $("label").value;
    setState(st && st.current ? "ready" : "done");
    return null;
  }
  $("error").textContent = ""; $("error").dataset.code = "";
  render(data);
  if (data.message) $("retrain-status").textContent = data.message;
  return data;
}

function render(s) {
  st = s;
  const pct = s.total ? " (" + (100 * s.labelled / s.total).toFixed(1) + "%)" : "";
  $("progress").textContent = fmt(s.labelled) + " of " + fmt(s.total)
    + (s.mode === "review" ? " reviewed" : " labelled") + pct + ", " + fmt(s.remaining) + " to go"
    + (s.skipped ? ", " + fmt(s.skipped) + " skipped" : "")
    + (s.unreadable ? ", " + fmt(s.unreadable) + " unreadable" : "");
  $("rate").textContent = s.rate_per_min ? s.rate_per_min.toFixed(1) + " per minute" : "";
  const p = s.prefill;
  $("right").textContent = p.of ? "pre-filled reading right: " + p.right + " of " + p.of + " ("
    + (100 * p.right / p.of).toFixed(0) + "%)" + (p.recent_of < p.of ? ", last " + p.recent_of + ": "
    + (100 * p.recent_right / p.recent_of).toFixed(0) + "%" : "") : "";
  $("model").textContent = "model " + s.model + " \\u00b7 writing " + (s.format === "copies"
    ? "label-named copies (--label-pattern '" + s.label_pattern + "')" : "labels.tsv") + " into " + s.out;
  const r = s.retrain;
  $("retrain").disabled = r.state === "running";
  if (r.state === "running") $("retrain-status").textContent = "fine-tuning\\u2026 " + (r.elapsed_s || 0) + " s";
  else if (r.message) $("retrain-status").textContent = r.message;
  $("review-keys").hidden = s.mode !== "review";
  const c = s.current;
  document.body.dataset.version = s.version;
  if (!c) {
    document.body.dataset.item = "";
    $("stage").hidden = true; shownId = null;
    $("error").textContent = $("error").textContent || "All done: every image has a label.";
    setState("done");
    return;
  }
  $("stage").hidden = false;
  const key = c.id + "/" + (c.typed === null ? "" : c.typed);
  if (key === shownId && s.model !== shownModel && $("label").value === shownText) {
    $("label").value = shownText = c.prefill;  // a fine-tune finished: its reading, unless the user typed
  }
  shownModel = s.model;
  if (key !== shownId) {
    shownId = key; confirmed = null;
    $("image").src = "/api/image/" + c.id;
    $("label").value = shownText = c.typed !== null && c.typed !== undefined ? c.typed : c.prefill;
    $("prefill").textContent = "model reads " + JSON.stringify(c.prefill) + (c.confidence === null ? ""
      : " (confidence " + (100 * c.confidence).toFixed(1) + "%)") + (c.skipped ? " \\u00b7 skipped before" : "");
    $("given").hidden = c.given === null || c.given === undefined;
    $("given").textContent = "its label: " + JSON.stringify(c.given);
    $("label").focus();
    const n = $("label").value.length;
    $("label").setSelectionRange(n, n);
  }
  document.body.dataset.item = c.item;
  flags();
  setState("ready");
}

function flags() {
  const v = $("label").value, out = [];
  if (!st) return;
  if (!v.trim()) out.push("empty label: type the text, or Esc to skip");
  else if (v !== v.trim()) out.push("starts or ends with a space");
  const unseen = [...new Set([...v].filter((ch) => !st.model_charset.includes(ch)))].sort().join("");
  if (unseen && v.trim()) out.push("the model has never seen " + JSON.stringify(unseen));
  if (st.allowed) {
    const bad = [...new Set([...v].filter((ch) => !st.allowed.includes(ch)))].sort().join("");
    if (bad) out.push("not allowed by --charset: " + JSON.stringify(bad));
  }
  if (st.format === "copies" && (/[\\/\\\\]/.test(v) || v.startsWith("."))) out.push("cannot be a file name");
  $("flag").textContent = out.join(" \\u00b7 ");
  $("flag").dataset.unseen = unseen;
}

$("label").addEventListener("input", () => { confirmed = null; $("error").textContent = ""; flags(); });
document.addEventListener("keydown", (e) => {
  if (document.body.dataset.state === "busy") { if (e.key === "Enter") e.preventDefault(); return; }
  const c = st && st.current;
  if ((e.ctrlKey || e.metaKey) && (e.key === "z" || e.key === "Z")) {
    e.preventDefault(); api("/api/undo", {}); return;
  }
  if (!c) return;
  if (e.key === "Enter") {
    e.preventDefault();
    const v = $("label").value;
    api("/api/label", { id: c.id, label: v, confirm: confirmed === v });
  } else if (e.key === "Escape") {
    e.preventDefault(); api("/api/skip", { id: c.id });
  } else if (e.key === "ArrowUp" && st.mode === "review" && c.given !== null) {
    e.preventDefault(); $("label").value = c.given; flags();
  }
});
$("retrain").addEventListener("click", () => api("/api/retrain", {}));
setInterval(() => {  // progress of a background fine-tune, and the new pre-fill when it is done
  if (st && document.body.dataset.state !== "busy" && st.retrain.state === "running") {
    fetch("/api/state").then((r) => r.json()).then((s) => { if (document.body.dataset.state !== "busy") render(s); });
  }
}, 2000);
api("/api/state");
</script>
</body>
</html>
"""
