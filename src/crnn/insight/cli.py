"""``crnn visualize`` and ``crnn audit``: argument parsing only; the work is :mod:`crnn.insight.visualize`
and :mod:`crnn.insight.audit`.

Wired into the main parser with ``register(sub)`` and ``register_audit(sub)``. Importing this module is cheap
(no torch, no matplotlib), so the ``crnn`` command still starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crnn.errors import CrnnError, DataError


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``visualize`` subcommand to ``subparsers`` (from ``parser.add_subparsers()``)."""
    p = subparsers.add_parser(
        "visualize", help="draw what the model sees: input, feature maps, CTC alignment, saliency",
        description="Write one PNG per image: the input as the model saw it, the decoded characters at the "
                    "image columns that produced them, the per-time-step CTC alignment, a saliency map and "
                    "the most active CNN feature maps of the chosen stages.")
    p.add_argument("model", help="checkpoint file or builtin:NAME")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files (created)")
    p.add_argument("--layers", metavar="LIST",
                   help="conv stages to show, comma-separated: numbers 1..N or stageN, 'last', 'all' or 'none' "
                        "(default: a middle stage and the last)")
    p.add_argument("--channels", type=int, default=4, metavar="K", help="most active channels shown per stage")
    p.add_argument("--saliency", choices=("sequence", "chars"), default="sequence",
                   help="sequence: gradient of log P(text | image); chars: each character's own gradient, "
                        "normalised (shows where each one is read)")
    p.add_argument("--smooth", type=int, default=8, metavar="N",
                   help="average the saliency over N noisy copies (SmoothGrad; 0 = plain gradient)")
    p.add_argument("--json", action="store_true", help="also write NAME.json with the text and the alignment")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_visualize)
    return p


def _out_names(paths: list[str]) -> list[str]:
    """A distinct file stem per input (``a.png`` and ``x/a.png`` become ``a`` and ``a-2``)."""
    used: dict[str, int] = {}
    out = []
    for p in paths:
        stem = Path(p).stem or "image"
        n = used.get(stem, 0) + 1
        used[stem] = n
        out.append(stem if n == 1 else f"{stem}-{n}")
    return out


def cmd_visualize(args) -> int:
    from crnn.data.discover import expand_inputs

    if args.channels < 0:
        raise CrnnError(f"--channels must be 0 or more, not {args.channels}")
    if args.smooth < 0:
        raise CrnnError(f"--smooth must be 0 or more, not {args.smooth}")
    paths = expand_inputs(args.images)
    from crnn import Recognizer
    from crnn.insight.visualize import explain, render_explanation, resolve_layers

    rec = Recognizer.load(args.model, device=args.device, runtime="torch")  # explanations need PyTorch
    resolve_layers(rec.model, args.layers)  # a bad --layers fails before any work
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CrnnError(f"{out_dir}: cannot create the output folder ({e.strerror or e})") from None
    failed = 0
    for path, stem in zip(paths, _out_names(paths)):
        try:
            expl = explain(rec, path, layers=args.layers, channels=args.channels, saliency=args.saliency,
                           smooth=args.smooth, name=path)
        except DataError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
            continue
        png = render_explanation(expl, out_dir / f"{stem}.png")
        if args.json:
            (out_dir / f"{stem}.json").write_text(json.dumps(expl.to_dict(), indent=1, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
        print(f"{path}: {expl.text!r} ({expl.confidence:.2f}) -> {png}")
    if failed:
        print(f"{failed} of {len(paths)} images could not be read", file=sys.stderr)
        return 1
    return 0


def register_audit(subparsers) -> argparse.ArgumentParser:
    """Add the ``audit`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "audit", help="rank samples whose labels are most likely wrong (the model strongly reads something else)",
        description="Score each sample's label and the model's own (greedy) reading with the CTC likelihood, "
                    "and list the samples where the model prefers its reading most strongly: margin = "
                    "NLL(label) - NLL(reading), in nats. With the run's training-loss history (sample_losses.tsv "
                    "beside a run's best.pt / last.pt, or --history) the samples it covers are ranked by their "
                    "mean per-character training loss instead: a wrong label the model has memorised keeps a "
                    "high mean loss. Correct them with: crnn label --review AUDIT.json")
    p.add_argument("model", help="checkpoint file, builtin:NAME, or an exported .onnx / .torchscript.pt file")
    p.add_argument("data", help="labelled data: folder, labels file or LMDB")
    p.add_argument("--top", type=int, default=50, help="how many suspects to list (0 = every sample)")
    p.add_argument("--json", action="store_true", help="print JSON (save it for crnn label --review)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--label-pattern", metavar="REGEX",
                   help="regex with one group that extracts the label from a file stem, e.g. '(.+)_\\d+'")
    p.add_argument("--history", metavar="FILE",
                   help="a run's sample_losses.tsv to rank by the training-loss history (default: the one beside "
                        "MODEL when it is a run's best.pt or last.pt; 'none': rank by the margin only)")
    p.set_defaults(func=cmd_audit)
    return p


def cmd_audit(args) -> int:
    from crnn.data.sample_losses import history_beside
    from crnn.data.sources import display
    from crnn.inference.load import load_recognizer
    from crnn.insight.audit import audit

    if args.top < 0:
        raise CrnnError(f"--top must be 0 or more, got {args.top}")
    if args.batch_size < 1:
        raise CrnnError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.history is None:
        history = history_beside(args.model)
    else:
        history = None if args.history.lower() == "none" else args.history
    rec = load_recognizer(args.model, "auto", args.device)
    result = audit(rec, args.data, args.label_pattern, args.batch_size, history)
    if history is not None and result.history is None:
        print(f"{history}: names none of the audited samples with their label; ranking by the margin only",
              file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(args.top), indent=1, ensure_ascii=False))
        return 0
    if result.report.skipped:
        print(result.report.format(max_lines=10), file=sys.stderr)
    with_history = result.history is not None
    how = (f"score = mean per-character training loss ({result.history_covered} samples in {result.history}; "
           "'now': not trained on, its loss now), nats" if with_history
           else "margin = NLL(label) - NLL(reading), nats")
    print(f"{result.data}: {len(result.suspects)} samples, the model reads {result.disagreements} differently "
          f"from their label; most suspect first ({how})")
    score_head = f"{'score':>6} {'by':<5}  " if with_history else ""
    print(f"{'rank':>4}  {score_head}{'margin':>8}  {'label':<16} {'reading':<16} {'conf':>5}  file")
    for i, s in enumerate(result.top(args.top), 1):
        margin = "   cannot" if s.reason else f"{s.margin:8.2f}"
        score = ((f"{'-':>6}" if s.reason else f"{s.score:6.3f}") + f" {s.scored_by:<5}  ") if with_history else ""
        print(f"{i:4d}  {score}{margin:>8}  {display(s.label):<16} {display(s.reading):<16} {s.confidence:5.2f}  "
              f"{display(s.name)}" + (f"  ({s.reason})" if s.reason else ""))
    return 0


__all__ = ["register", "register_audit", "cmd_visualize", "cmd_audit"]
