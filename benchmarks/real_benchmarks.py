"""Real public test sets: our models beside Tesseract 5 and PP-OCRv4's recognizer, in one run.

Reads every set under ``../shared/data`` in place (``img/``, ``labels.tsv``, optional
``labels_casesensitive.tsv``, see that folder's README); nothing is copied, and these sets are
never used to train, tune or pick anything. When the folder is absent the script says so and exits 0.

Scores, per set and system:

- **standard** (CRNN paper, deep-text-recognition-benchmark): lower-case label and prediction, drop
  every character outside ``[0-9a-z]``, exact match, on ``labels.tsv``;
- **exact**: case-sensitive exact match on ``labels_casesensitive.tsv`` where the set has one, else on
  ``labels.tsv`` (whose case is as printed), with runs of whitespace normalised to one space;
- **CER**: character edit distance over label length, case-sensitive, on the same labels as *exact*;
- for text lines (``uw3_lines``) CER and exact line match are the headline figures.

Peers, each on one thread and timed on the same images in the same run:

- Tesseract 5 (Debian ``tesseract-ocr``, ``tesseract-ocr-eng``), ``--psm 7`` (one text line), one
  process over a list of images (start-up excluded);
- PP-OCRv4's recognizer from ``rapidocr-onnxruntime`` (the ONNX models ship in its wheel), only the
  recognizer (no detector or angle classifier), fed RGB arrays loaded with Pillow (given a path it
  misreads palette PNGs).

    python benchmarks/real_benchmarks.py                       # every set, builtin:en and builtin:en-mobile, peers
    python benchmarks/real_benchmarks.py --models runs/x/best.pt --sets iiit5k_test uw3_lines --no-peers
    python benchmarks/real_benchmarks.py --limit 200 --json out.json
    python benchmarks/real_benchmarks.py --lm en                # also each model with the English character LM
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from rapidfuzz.distance import Levenshtein

sys.path.insert(0, str(Path(__file__).parent))
from peers import Sample, System, available_peers  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LINE_SETS = {"uw3_lines"}
NOT_ALNUM = re.compile(r"[^0-9a-z]")


# ------------------------------------------------------------------------------------------------ scoring


def standard(text: str) -> str:
    """The scene-text protocol's normal form: lower case, only ``[0-9a-z]``."""
    return NOT_ALNUM.sub("", text.lower())


def exact_form(text: str) -> str:
    """Case-sensitive form: runs of whitespace become one space, ends stripped."""
    return " ".join(text.split())


def score(samples: list[Sample], preds: list[str]) -> dict:
    """Standard accuracy, case-sensitive exact match and CER of ``preds`` against ``samples``."""
    assert len(samples) == len(preds)
    n = len(samples)
    std = sum(standard(s.label) == standard(p) for s, p in zip(samples, preds))
    exact = sum(exact_form(s.label_cs) == exact_form(p) for s, p in zip(samples, preds))
    edits = sum(Levenshtein.distance(exact_form(s.label_cs), exact_form(p)) for s, p in zip(samples, preds))
    chars = sum(len(exact_form(s.label_cs)) for s in samples)
    return {"n": n, "standard": std / n if n else 0.0, "exact": exact / n if n else 0.0,
            "cer": edits / max(chars, 1)}


def read_labels(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if "\t" in line:
            rel, label = line.split("\t", 1)
            out[rel] = label
    return out


def load_set(folder: Path, limit: int | None = None) -> list[Sample]:
    """A set's samples in ``labels.tsv`` order, with the case-sensitive labels where the set has them."""
    labels = read_labels(folder / "labels.tsv")
    cs_file = folder / "labels_casesensitive.tsv"
    cs = read_labels(cs_file) if cs_file.exists() else {}
    samples = [Sample(folder / rel, lab, cs.get(rel, lab)) for rel, lab in labels.items()]
    return samples[:limit] if limit else samples


# ------------------------------------------------------------------------------------------------ systems

def ours(model: str, backend: str, tmp: Path, lm: str | None = None) -> System:
    """Our model through ``Recognizer.predict`` (torch) or its ONNX export (ONNX Runtime), one thread; with
    ``lm``, decoded by the beam fused with that character language model (``crnn predict --lm``, its default
    weight and bonus; the model is built before the timing starts)."""
    loaded = []
    scorer = []

    def run(samples: list[Sample]) -> tuple[list[str], float]:
        if not loaded:
            import torch

            from crnn import Recognizer
            from peers import onnx_twin

            torch.set_num_threads(1)
            rec = Recognizer.load(model, runtime="torch")
            if backend == "onnx":
                folder = tmp / str(len(list(tmp.iterdir())))
                folder.mkdir()
                rec = onnx_twin(rec, folder)
            loaded.append(rec)
            if lm is not None:
                from crnn.decoding.charlm import LMScorer, load_lm

                scorer.append(LMScorer(load_lm(lm), rec.charset))
        rec = loaded[0]
        fused = scorer[0] if scorer else None
        paths = [s.path for s in samples]
        rec.predict(paths[:16], batch_size=32, lm=fused)  # warm-up
        t0 = time.perf_counter()
        preds = rec.predict(paths, batch_size=32, lm=fused)
        return [p.text for p in preds], len(paths) / (time.perf_counter() - t0)

    return run


# ------------------------------------------------------------------------------------------------ report


def table(results: dict[str, dict[str, dict]], sets: list[str]) -> str:
    """Markdown: one row per system, one column per set (standard %, or CER for line sets)."""
    head = "| system | " + " | ".join(
        f"{s} (n={next(iter(results.values()))[s]['n']})" + (" CER / line match" if s in LINE_SETS else "")
        for s in sets) + " | images/s (1 thread) |"
    rows = [head, "|" + "---|" * (len(sets) + 2)]
    for name, per_set in results.items():
        cells = []
        for s in sets:
            r = per_set[s]
            cells.append(f"{100 * r['cer']:.2f} % / {100 * r['exact']:.1f} %" if s in LINE_SETS
                         else f"{100 * r['standard']:.1f} %")
        speed = sum(r["n"] for r in per_set.values()) / sum(r["n"] / r["images_per_s"] for r in per_set.values())
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {speed:,.0f} |")
    return "\n".join(rows)


def detail(results: dict[str, dict[str, dict]], sets: list[str]) -> str:
    rows = ["| system | set | standard | exact (case-sensitive) | CER | images/s |", "|---|---|---|---|---|---|"]
    for name, per_set in results.items():
        for s in sets:
            r = per_set[s]
            rows.append(f"| {name} | {s} | {100 * r['standard']:.1f} % | {100 * r['exact']:.1f} % | "
                        f"{100 * r['cer']:.2f} % | {r['images_per_s']:,.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the sets (default ../shared/data)")
    ap.add_argument("--sets", nargs="+", help="set folder names (default: every folder with a labels.tsv)")
    ap.add_argument("--models", nargs="+", default=["builtin:en", "builtin:en-mobile"])
    ap.add_argument("--backend", choices=("torch", "onnx"), default="onnx",
                    help="how our models run (onnx: exported, ONNX Runtime, the fast path; same text)")
    ap.add_argument("--lm", metavar="en|FILE",
                    help="also score each model decoded with this character language model (crnn predict --lm)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--limit", type=int, help="first N images of each set (a quick look, not a result)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args(argv)

    if not args.data.is_dir():
        print(f"skipped: {args.data} is absent (the real test sets are not on this machine)")
        return 0
    sets = args.sets or sorted(p.name for p in args.data.iterdir() if (p / "labels.tsv").is_file())
    missing = [s for s in sets if not (args.data / s / "labels.tsv").is_file()]
    if missing:
        print(f"error: no labels.tsv in {', '.join(str(args.data / s) for s in missing)}", file=sys.stderr)
        return 2
    if not sets:
        print(f"skipped: no set with a labels.tsv under {args.data}")
        return 0
    data = {s: load_set(args.data / s, args.limit) for s in sets}

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = tempfile.TemporaryDirectory()
    systems: dict[str, System] = {f"{m} ({args.backend})": ours(m, args.backend, Path(tmp.name))
                                  for m in args.models}
    if args.lm:
        for m in args.models:
            systems[f"{m} ({args.backend}, --lm {args.lm})"] = ours(m, args.backend, Path(tmp.name), args.lm)
    if not args.no_peers:
        for name, peer in available_peers().items():
            if isinstance(peer, str):
                print(f"peer skipped: {name}: {peer}")
            else:
                systems[name] = peer

    results: dict[str, dict[str, dict]] = {}
    for name, system in systems.items():
        results[name] = {}
        for s in sets:
            t0 = time.perf_counter()
            preds, ips = system(data[s])
            results[name][s] = {**score(data[s], preds), "images_per_s": ips}
            r = results[name][s]
            print(f"{name:40s} {s:14s} standard {100 * r['standard']:5.1f} %  exact {100 * r['exact']:5.1f} %  "
                  f"CER {100 * r['cer']:6.2f} %  {ips:7.0f} images/s  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    print()
    print(table(results, sets))
    print()
    print(detail(results, sets))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
