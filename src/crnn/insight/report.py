"""``crnn eval --report DIR``: one static HTML page about a model on a dataset.

``DIR/index.html`` shows the metrics, the dataset check, accuracy by label length, a
confidence histogram (correct vs wrong), per-character error rates, a character
confusion table (every error is aligned with Levenshtein edit operations and each
substitution, deletion and insertion is counted per character pair), and a gallery of
the worst errors: the image as the model saw it, the predicted characters placed
where the model emitted them, truth and prediction with their differences marked,
and for the first few a full explanation figure (see :mod:`crnn.insight.visualize`); then the audit:
the samples whose labels are most likely wrong (:mod:`crnn.insight.audit`), each with its image, its
label against the model's reading and the margin by which the model prefers its reading.

The page has no scripts and no external assets: the images are PNG files in
``DIR/images``; every piece of text is HTML-escaped.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from crnn.errors import CrnnError
from crnn.metrics import DEL, INS, SUB, confusions

IMAGE_HEIGHT_PX = 48  # gallery images are shown at this height (CSS below)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def visible(ch: str) -> str:
    """A character as a table shows it: space as ``␣``, nothing (deleted / inserted) as ``∅``."""
    if ch == "":
        return "\u2205"
    if ch == " ":
        return "\u2423"
    if ch.isspace() or not ch.isprintable():
        return f"U+{ord(ch):04X}"
    return ch


def _marked(a: str, b: str, side: str) -> str:
    """``a`` (truth, side 'src') or ``b`` (prediction, side 'dest') with its differing characters wrapped."""
    parts = []
    for op in Levenshtein.opcodes(a, b):
        text = a[op.src_start:op.src_end] if side == "src" else b[op.dest_start:op.dest_end]
        if not text:
            continue
        cls = {"equal": "", "replace": "sub", "delete": "del", "insert": "ins"}[op.tag]
        parts.append(f'<span class="{cls}">{esc(text)}</span>' if cls else esc(text))
    return "".join(parts) or '<span class="none">(empty)</span>'


def _pct(x: float) -> str:
    return f"{x:.2%}" if x == x else "n/a"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table; cells are already-escaped HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def _bar(frac: float) -> str:
    w = 0 if frac != frac else max(0.0, min(frac, 1.0)) * 100
    return f'<span class="bar"><span style="width:{w:.1f}%"></span></span>'


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(array).save(path, format="PNG")


def _image_cell(array: np.ndarray | None, img_dir: Path, fname: str, alt: str) -> str:
    """A gallery cell: the image saved as ``images/fname`` in a strip, or a note when it could not be read."""
    if array is None:
        return '<span class="none">image unavailable</span>'
    _save_png(array, img_dir / fname)
    return f'<div class="strip"><img src="images/{fname}" alt="{esc(alt)}"></div>'


def _confidence_png(correct: list[float], wrong: list[float], path: Path) -> bool:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(6.5, 2.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    bins = np.linspace(0, 1, 21)
    ax.hist([correct, wrong], bins=bins.tolist(), label=[f"correct ({len(correct)})", f"wrong ({len(wrong)})"],
            color=["#2ca02c", "#d62728"], stacked=False)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("confidence", fontsize=8)
    ax.set_ylabel("images", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.2, top=0.95)
    fig.savefig(path, format="png")
    return True


CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 70em;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: middle; }
th { background: #f4f4f4; }
td.num, th.num { text-align: right; }
.mono, .ch { font-family: ui-monospace, Menlo, Consolas, monospace; }
.ch { font-size: 1.15em; }
.bar { display: inline-block; width: 8em; height: 0.8em; background: #eee; vertical-align: middle; }
.bar span { display: block; height: 100%; background: #4c9a2a; }
.sub { background: #ffd59a; } .del { background: #ffb3b3; text-decoration: line-through; }
.ins { background: #b3d9ff; } .none { color: #999; font-style: italic; }
.strip { position: relative; display: inline-block; line-height: 0; }
.strip img { height: 48px; width: auto; image-rendering: pixelated; border: 1px solid #ccc; }
.marks { position: relative; height: 1.4em; margin-top: 2px; line-height: 1.4em; }
.marks span { position: absolute; transform: translateX(-50%); font-family: ui-monospace, Menlo, monospace;
              font-size: 0.85em; padding: 0 0.15em; border-radius: 3px; background: #e8f0fe; }
.note { color: #666; font-size: 0.85em; }
figure { margin: 0.5em 0; }
"""


def write_report(out_dir: str | os.PathLike, recognizer, metrics, predictions, data_report, data_location,
                 worst: int = 50, explain: int = 3, confusion_rows: int = 60, audit: int = 30,
                 label_pattern: str | None = None) -> Path:
    """Write ``out_dir/index.html`` (and its PNG files) and return the page's path.

    ``metrics`` (:class:`~crnn.metrics.TextMetrics`), ``predictions`` and ``data_report``
    are what :meth:`~crnn.Recognizer.evaluate` returned for ``data_location``.
    ``worst``: errors in the gallery; ``explain``: how many of them also get a full
    explanation figure; ``confusion_rows``: rows of the confusion table; ``audit``: suspects in the audit
    gallery (0: no audit section; it reads the data once more), ``label_pattern`` as for evaluation.
    """
    out = Path(out_dir)
    img_dir = out / "images"
    try:
        img_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CrnnError(f"{out}: cannot create the report folder ({e.strerror or e})") from None
    for old in img_dir.glob("*.png"):  # images of an earlier report in the same folder
        old.unlink()

    preds = {p.name: p for p in predictions}
    wrong_names = {e.name for e in metrics.errors}
    truths = [e.truth for e in metrics.errors] + [p.text for p in predictions if p.name not in wrong_names]
    parts: list[str] = []
    add = parts.append

    title = f"{Path(str(recognizer.name)).name} on {data_location}"
    add(f"<h1>{esc(title)}</h1>")
    add(f'<p class="note">Model <span class="mono">{esc(recognizer.name)}</span>, data '
        f'<span class="mono">{esc(data_location)}</span>. Greedy or beam decoding as chosen on the command line; '
        "images are shown exactly as the model saw them (resized to its input height).</p>")

    # ---- metrics
    n = metrics.n
    rows = [("samples", f"{n:,}"), ("skipped (unreadable or unusable)", f"{len(data_report.skipped):,}"),
            ("word accuracy", f"{_pct(metrics.accuracy)} ({metrics.correct:,} of {n:,})"),
            ("word accuracy ignoring case", _pct(metrics.accuracy_nocase)),
            ("character error rate (CER)", f"{metrics.cer:.4f} ({metrics.char_errors:,} edits / "
                                           f"{metrics.chars:,} characters)"),
            ("normalised edit distance", f"{metrics.ned:.4f}"),
            ("model charset", f"{len(recognizer.charset)} characters")]
    add("<h2>Metrics</h2>")
    add(_table(["measure", "value"], [(esc(k), esc(v)) for k, v in rows]))

    # ---- dataset check
    add("<h2>Dataset check</h2>")
    add(f"<p>{esc(data_report.location)}: {data_report.kept:,} usable samples of {data_report.total:,}, "
        f"{len(data_report.skipped):,} skipped.</p>")
    reasons = data_report.reasons().most_common()
    if reasons:
        add(_table(["skip reason", "count"], [(esc(r), f"{c:,}") for r, c in reasons]))
        add(_table(["file", "reason"], [(f'<span class="mono">{esc(nm)}</span>', esc(r))
                                        for nm, r in data_report.skipped[:20]]))
    if data_report.unknown_chars:
        add("<p>Labels contain characters this model cannot output (each such label counts as an error): "
            + ", ".join(f'<span class="ch">{esc(visible(c))}</span> &times;{k}'
                        for c, k in data_report.unknown_chars.most_common()) + "</p>")

    # ---- by length
    add("<h2>Accuracy by label length</h2>")
    add(_table(["length", "samples", "word accuracy", ""],
               [(str(k), f"{v[0]:,}", _pct(v[1] / v[0]), _bar(v[1] / v[0]))
                for k, v in sorted(metrics.by_length.items()) if v[0]]))

    # ---- confidence
    correct_conf = [p.confidence for p in predictions if p.name not in wrong_names]
    wrong_conf = [p.confidence for p in predictions if p.name in wrong_names]
    if predictions and _confidence_png(correct_conf, wrong_conf, img_dir / "confidence.png"):
        add("<h2>Confidence</h2>")
        add('<figure><img src="images/confidence.png" alt="histogram of confidence for correct and wrong '
            'predictions"><figcaption class="note">A well-calibrated model puts its errors at low confidence; '
            "wrong readings at high confidence are the dangerous ones.</figcaption></figure>")

    # ---- per character and confusions
    edits = confusions((e.truth, e.pred) for e in metrics.errors)
    occurrences: Counter[str] = Counter()
    for t in truths:
        occurrences.update(t)
    missed: Counter[str] = Counter()
    for (kind, t, _p), c in edits.items():
        if kind != INS:
            missed[t] += c
    add("<h2>Errors by character</h2>")
    if missed:
        add('<p class="note">How often each character of the ground truth was substituted or dropped.</p>')
        ranked = sorted(missed, key=lambda ch: (-missed[ch] / max(occurrences[ch], 1), -missed[ch], ch))
        add(_table(["character", "in labels", "missed", "rate", ""],
                   [(f'<span class="ch">{esc(visible(ch))}</span>', f"{occurrences[ch]:,}", f"{missed[ch]:,}",
                     _pct(missed[ch] / max(occurrences[ch], 1)), _bar(missed[ch] / max(occurrences[ch], 1)))
                    for ch in ranked[:confusion_rows]]))
    else:
        add("<p>No character of the ground truth was missed.</p>")

    add("<h2>Character confusions</h2>")
    if edits:
        by_kind: Counter[str] = Counter()
        for (kind, _t, _p), c in edits.items():
            by_kind[kind] += c
        add(f"<p>{by_kind[SUB]:,} substitutions, {by_kind[DEL]:,} deletions (a character of the truth missing), "
            f"{by_kind[INS]:,} insertions (an extra character), from aligning each wrong reading with its truth "
            f"(Levenshtein edit operations). {esc(visible(''))} = nothing.</p>")
        add(_table(["truth", "read as", "kind", "count"],
                   [(f'<span class="ch">{esc(visible(t))}</span>', f'<span class="ch">{esc(visible(p))}</span>',
                     esc(kind), f"{c:,}") for (kind, t, p), c in edits.most_common(confusion_rows)]))
        if len(edits) > confusion_rows:
            add(f'<p class="note">{len(edits) - confusion_rows} rarer pairs not shown.</p>')
    else:
        add("<p>No errors.</p>")

    # ---- gallery
    add("<h2>Worst errors</h2>")
    errors = metrics.worst(worst)
    if not errors:
        add("<p>Every sample was read correctly.</p>")
    else:
        add(f'<p class="note">The {len(errors)} errors with the largest edit distance, most confident first. '
            "Letters under each image are the prediction, placed at the image columns that emitted them. "
            '<span class="sub">substituted</span> <span class="del">missing</span> <span class="ins">extra</span>'
            "</p>")
        images = _gallery_images(recognizer, data_location, [err.name for err in errors])
        rows_html = []
        for i, err in enumerate(errors):
            arr = images.get(err.name)
            cell = _image_cell(arr, img_dir, f"error_{i:03d}.png", err.truth)
            if arr is not None:
                cell += _marks(recognizer, arr.shape[1], arr.shape[0], err.pred, preds.get(err.name))
                if i < explain:
                    fig = _explanation_file(recognizer, arr, err.name, img_dir / f"explain_{i:03d}.png")
                    if fig:
                        cell += f' <a href="images/{fig}">what the model sees</a>'
            conf = "n/a" if err.confidence != err.confidence else f"{err.confidence:.3f}"
            rows_html.append((cell, f'<span class="ch">{_marked(err.truth, err.pred, "src")}</span>',
                              f'<span class="ch">{_marked(err.truth, err.pred, "dest")}</span>', conf,
                              str(err.distance), f'<span class="mono note">{esc(err.name)}</span>'))
        add(_table(["image as the model saw it", "truth", "prediction", "confidence", "edits", "file"], rows_html,
                   "gallery"))

    if audit > 0:
        add(_audit_section(recognizer, data_location, label_pattern, audit, img_dir))

    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _audit_section(recognizer, data_location, label_pattern: str | None, top: int, img_dir: Path) -> str:
    """The "Audit" section: the ``top`` samples whose labels the model disputes most, as a gallery."""
    from crnn.insight.audit import audit

    head = "<h2>Audit: labels most likely wrong</h2>"
    try:
        result = audit(recognizer, data_location, label_pattern)
    except CrnnError as e:  # the data cannot be read again (moved, or not a path): the rest of the page stands
        return f'{head}\n<p class="none">audit unavailable: {esc(e)}</p>'
    suspects = [s for s in result.top(top) if s.disagrees or s.reason]
    parts = [head,
             f'<p class="note">{result.disagreements:,} of {len(result.suspects):,} samples are read differently '
             "from their label. Ranked by how strongly the model prefers its own reading: margin = "
             "NLL(label) &minus; NLL(reading), the CTC negative log-likelihoods in nats (a confident "
             "misreading of a right label scores low, a confident reading of a wrong one high). Correct them "
             "with <span class=\"mono\">crnn audit MODEL DATA --json &gt; audit.json; crnn label --review "
             "audit.json</span>.</p>"]
    if not suspects:
        parts.append("<p>The model reads every label as given.</p>")
        return "\n".join(parts)
    images = _gallery_images(recognizer, data_location, [s.name for s in suspects])
    rows = []
    for i, s in enumerate(suspects):
        cell = _image_cell(images.get(s.name), img_dir, f"audit_{i:03d}.png", s.label)
        margin = esc(s.reason) if s.reason else f"{s.margin:.2f}"
        rows.append((str(i + 1), cell, f'<span class="ch">{_marked(s.label, s.reading, "src")}</span>',
                     f'<span class="ch">{_marked(s.label, s.reading, "dest")}</span>', margin,
                     f"{s.confidence:.3f}", f'<span class="mono note">{esc(s.name)}</span>'))
    parts.append(_table(["rank", "image as the model saw it", "label", "model reads", "margin (nats)",
                         "confidence", "file"], rows, "gallery audit"))
    return "\n".join(parts)


def _gallery_images(recognizer, data_location, names: list[str]) -> dict[str, np.ndarray]:
    """The preprocessed image of each named sample; samples that cannot be re-read are left out."""
    from crnn.data.images import preprocess_image
    from crnn.data.sources import open_source

    try:
        source = open_source(data_location)
    except CrnnError:
        return {}
    wanted = set(names)
    out: dict[str, np.ndarray] = {}
    for rec in source.records:
        if rec.name in wanted:
            try:
                out[rec.name] = preprocess_image(source.read_bytes(rec), recognizer.preprocess, rec.name)
            except CrnnError:
                pass
    return out


def _marks(recognizer, width: int, height: int, text: str, pred) -> str:
    """The predicted characters as spans placed (in % of the image width) where they were emitted."""
    frames = tuple(pred.frames) if pred is not None else ()
    if not text or len(frames) != len(text):
        return ""
    centres = recognizer.frame_centres(width)
    steps = len(centres)
    spans = []
    for ch, f in zip(text, frames):
        x = centres[min(f, steps - 1)] / max(width, 1) * 100
        spans.append(f'<span style="left:{x:.2f}%">{esc(visible(ch))}</span>')
    shown = width * IMAGE_HEIGHT_PX / max(height, 1)  # the image's width on the page
    return f'<div class="marks" style="width:{shown:.0f}px">{"".join(spans)}</div>'


def _explanation_file(recognizer, array: np.ndarray, name: str, path: Path) -> str | None:
    try:
        from crnn.insight.visualize import explain, render_explanation

        render_explanation(explain(recognizer, array, name=name), path)
    except ImportError:
        return None
    return path.name


__all__ = ["write_report", "visible"]
