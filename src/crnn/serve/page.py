"""The page served at ``/``: plain HTML, CSS and JS in one string, no external assets.

Choose, drop or paste (Ctrl+V) an image of a text line: the page posts it to
``/v1/recognize`` and shows the text and its confidence, then asks
``/v1/explain`` for the alignment figure. A base64 string or ``data:`` URL
pasted into the text box is sent as JSON instead.

Element ids used by the browser test: ``file``, ``b64``, ``send-b64``, ``preview``,
``text``, ``confidence``, ``timing``, ``explain``, ``explain-note``, ``error``;
``document.body.dataset.state`` is ``idle``, ``busy``, ``done`` or ``error``.
"""

PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crnn-ocr: read a text line</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  #model { color: #666; font-size: .9rem; margin-bottom: 1rem; }
  #drop { border: 2px dashed #999; border-radius: 8px; padding: 1.2rem; text-align: center; background: #fafafa; }
  #drop.over { background: #eef5ff; border-color: #36c; }
  textarea { width: 100%; height: 3.2rem; font: 12px monospace; margin-top: .6rem; }
  #preview { max-width: 100%; max-height: 8rem; margin-top: 1rem; border: 1px solid #ddd; image-rendering: pixelated; }
  #result { margin-top: 1rem; }
  #text { font: 1.8rem monospace; background: #f3f3f3; padding: .2rem .6rem; border-radius: 4px;
          white-space: pre; min-height: 2.2rem; display: inline-block; }
  #confidence { margin-left: 1rem; font-weight: 600; }
  #timing, #explain-note { color: #666; font-size: .85rem; }
  #error { color: #b00; font-weight: 600; }
  #explain { max-width: 100%; margin-top: 1rem; border: 1px solid #ddd; }
  [hidden] { display: none !important; }
</style>
</head>
<body data-state="idle">
<h1>Read a text line</h1>
<div id="model">loading model information&hellip;</div>
<div id="drop">
  <p>Drop an image here, paste one (Ctrl+V), or choose a file:</p>
  <input type="file" id="file" accept="image/*">
  <textarea id="b64" placeholder="&hellip;or paste a base64 image or data: URL here"></textarea>
  <button id="send-b64" type="button">Read base64</button>
</div>
<img id="preview" alt="the image sent" hidden>
<div id="result" hidden>
  <span id="text"></span><span id="confidence"></span>
  <div id="timing"></div>
</div>
<div id="error" role="alert"></div>
<img id="explain" alt="alignment of the text with the image" hidden>
<div id="explain-note"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let previewUrl = null, explainUrl = null;

function setState(state) { document.body.dataset.state = state; }
function showError(msg) { $("error").textContent = msg; setState("error"); }

fetch("/health").then((r) => r.json()).then((h) => {
  $("model").textContent = "model " + h.model + " (" + h.backend + " backend, " + h.charset.length +
    " characters, input height " + h.preprocess.height + ")";
}).catch(() => { $("model").textContent = "model information unavailable"; });

async function errorText(resp) {
  try { const j = await resp.json(); return resp.status + ": " + (j.detail || JSON.stringify(j)); }
  catch (e) { return "HTTP " + resp.status; }
}

async function recognize(body, headers, blob) {
  setState("busy");
  $("error").textContent = "";
  $("explain-note").textContent = "";
  $("result").hidden = true;
  $("explain").hidden = true;
  if (blob) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    $("preview").src = previewUrl;
    $("preview").hidden = false;
  }
  let resp;
  try {
    resp = await fetch("/v1/recognize", { method: "POST", body: body, headers: headers || {} });
  } catch (e) { showError("request failed: " + e); return; }
  if (!resp.ok) { showError(await errorText(resp)); return; }
  const data = await resp.json();
  const r = data.results[0];
  $("text").textContent = r.text;
  $("confidence").textContent = "confidence " + (100 * r.confidence).toFixed(1) + "%";
  const t = data.timing_ms;
  $("timing").textContent = "total " + t.total.toFixed(1) + " ms (read " + t.read.toFixed(1) + ", queue " +
    t.queue.toFixed(1) + ", model " + t.model.toFixed(1) + " ms; batch of " + data.batch.images +
    (data.batch.images === 1 ? " image)" : " images)");
  $("result").hidden = false;
  setState("done");
  explain(body, headers);
}

async function explain(body, headers) {
  let resp;
  try {
    resp = await fetch("/v1/explain", { method: "POST", body: body, headers: headers || {} });
  } catch (e) { $("explain-note").textContent = "alignment figure: request failed"; return; }
  if (resp.status === 501) { $("explain-note").textContent = "alignment figure: not available on this server"; return; }
  if (!resp.ok) { $("explain-note").textContent = "alignment figure: " + (await errorText(resp)); return; }
  if (explainUrl) URL.revokeObjectURL(explainUrl);
  explainUrl = URL.createObjectURL(await resp.blob());
  $("explain").src = explainUrl;
  $("explain").hidden = false;
}

function sendFile(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name || "pasted.png");
  recognize(form, null, file);
}

$("file").addEventListener("change", (e) => sendFile(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) sendFile(e.dataTransfer.files[0]);
});
document.addEventListener("paste", (e) => {
  for (const item of (e.clipboardData || {}).items || []) {
    if (item.kind === "file" && item.type.startsWith("image/")) {
      e.preventDefault(); sendFile(item.getAsFile()); return;
    }
  }
});
$("send-b64").addEventListener("click", () => {
  const text = $("b64").value.trim();
  if (!text) { showError("paste a base64 image first"); return; }
  let blob = null;
  try {
    const b64 = text.startsWith("data:") ? text.slice(text.indexOf(",") + 1) : text;
    const bin = atob(b64.replace(/\\s+/g, ""));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    blob = new Blob([bytes]);
  } catch (e) { /* the server names the problem */ }
  recognize(JSON.stringify({ images: [text] }), { "Content-Type": "application/json" }, blob);
});
</script>
</body>
</html>
"""
