"""The ``crnn`` command: argument parsing only; the work is done by the library.

Errors in the user's input (a :class:`~crnn.errors.CrnnError`) print one line and
exit with status 2 (:data:`EXIT_ERROR`); an interrupted training run exits with 130
(:data:`EXIT_INTERRUPTED`) after saving; a run that ended on CTC's blank plateau exits
with 3 (:data:`EXIT_LEARNED_NOTHING`), its files written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from crnn import __version__
from crnn.decoding.cli_options import add_decode_options, describe_decoding, lm_scorer
from crnn.errors import CrnnError
from crnn.export.cli import register as register_export
from crnn.inference.load import BACKENDS
from crnn.insight.cli import register as register_visualize
from crnn.insight.cli import register_audit
from crnn.label.cli import register as register_label
from crnn.serve.cli import register as register_serve

EXIT_OK = 0
EXIT_ERROR = 2
"""Bad input or a refused file: one line on stderr naming the file or key."""
EXIT_LEARNED_NOTHING = 3
"""Training ran and wrote every file but never left CTC's blank plateau; scripts can tell it from success."""
EXIT_INTERRUPTED = 130
"""Ctrl-C or SIGTERM (training saved ``last.pt`` first), as a shell reports a SIGINT."""
AGENT_ENV = "CRNN_TORCHRUN_AGENT"
"""Set by ``crnn train --nproc N`` for its workers: they hand their error line to it instead of printing it."""


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label-pattern", metavar="REGEX",
                   help="regex with one group that extracts the label from a file stem, e.g. '(.+)_\\d+'")


_TRAIN_FLAGS = {"epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr",
                "device": "train.device", "seed": "train.seed", "workers": "data.workers",
                "label_pattern": "data.label_pattern", "arch": "model.arch", "time_budget": "train.time_budget",
                "amp": "train.amp", "tensorboard": "train.tensorboard"}
"""``crnn train``'s own flags and the config key each one sets (as ``--set`` would)."""


def _flag_settings(args) -> dict[str, object]:
    return {key: getattr(args, flag) for flag, key in _TRAIN_FLAGS.items() if getattr(args, flag) not in (None, False)}


def cmd_prepare(args) -> int:
    from crnn.data.images import Preprocess
    from crnn.data.prepare import prepare

    chosen = {k: v for k, v in (("height", args.height), ("channels", args.channels)) if v is not None}
    pre = Preprocess(**{"height": 48, "channels": 1, **chosen})
    report = prepare(args.data, args.out, pre, charset=args.charset, label_pattern=args.label_pattern,
                     force=args.force, chosen=chosen)
    print(report.format())
    print(f"wrote {report.kept} samples to {args.out} (report: {Path(args.out) / 'report.json'})")
    return 0


def cmd_train(args) -> int:
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _torchrun(args)
    from crnn.config import build_config
    from crnn.training.loop import train

    cfg, explicit = build_config(args.config, args.set, _flag_settings(args))
    result = train(cfg, args.train, args.out, val_path=args.val, resume=args.resume, init=args.init,
                   progress=not args.no_progress, explicit=explicit, force=args.force)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return EXIT_INTERRUPTED if result.interrupted else EXIT_OK
    if result.interrupted:
        print(f"interrupted: saved {result.last_path}; continue with: crnn train --train {' '.join(args.train)} "
              f"--out {args.out} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(result.summary)
    print(f"model: {result.best_path}")
    if result.plateau_note:
        print(f"note: {result.plateau_note}", file=sys.stderr)
    return EXIT_LEARNED_NOTHING if result.learned_nothing else EXIT_OK


def _torchrun(args) -> int:
    """``crnn train --nproc N``: this process becomes torchrun's agent and starts N copies of ``crnn train``.

    In this process rather than ``python -m torch.distributed.run`` in a child: the workers run in sessions
    of their own, so a Ctrl-C reaches only this process, and torchrun's agent here passes it once to each
    worker, which finishes its step, saves ``last.pt`` and exits (rank 0 prints how to resume). The status is
    then crnn's: 130 interrupted, 3 learned nothing, 2 an error the worker has printed in one line; in a
    child, torchrun answered a Ctrl-C with a traceback and any of these with status 1 and a failure report.
    """
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args
    from torch.distributed.run import run as torchrun

    argv = list(sys.argv[1:])
    i = argv.index("--nproc")
    del argv[i:i + 2]
    # torchrun would set it for each worker anyway, with a four-line banner saying so
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # torchrun's agent logs each worker's exit ("failed (exitcode: 2) local_rank: 1 ...", "Sending process
    # ... closing signal"); crnn says what happened itself, below. Its loggers each carry their own level.
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ[AGENT_ENV] = "1"
    try:
        torchrun(parse_args(["--standalone", f"--nproc_per_node={args.nproc}", "-m", "crnn", *argv]))
    except SignalException:
        return EXIT_INTERRUPTED
    except ChildFailedError as e:  # rank 0's status first: it is the rank that reports
        failures = [f for _, f in sorted(e.failures.items())]
        # every rank meets the same bad input: its line once, not once per rank
        for line in dict.fromkeys(f.message for f in failures if isinstance(f.message, str)
                                  and f.message.startswith("error: ")):
            print(line, file=sys.stderr)
        return next((f.exitcode for f in failures if f.exitcode > 0), EXIT_ERROR)
    return EXIT_OK


def _say_error(line: str) -> None:
    """The one-line error on stderr; a worker of ``crnn train --nproc N`` hands it to the agent instead, through
    the error file torchrun gives each worker, and the agent prints each distinct line once."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE") if os.environ.get(AGENT_ENV) else None
    if path:
        try:
            Path(path).write_text(json.dumps({"message": line, "timestamp": int(time.time())}), encoding="utf-8")
            return
        except OSError:
            pass
    print(line, file=sys.stderr)


def _check_counts(args, *flags: str) -> None:
    """``--batch-size 0`` and the like: one line naming the flag, before any model or image is read."""
    for flag in flags:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value < (0 if flag == "--worst" else 1):
            raise CrnnError(f"{flag} must be {'0 or more' if flag == '--worst' else 'at least 1'}, got {value}")


def cmd_eval(args) -> int:
    from crnn.inference.load import load_recognizer

    _check_counts(args, "--batch-size", "--worst")
    rec = load_recognizer(args.model, "auto", args.device)
    if args.report and not hasattr(rec, "model"):
        raise CrnnError(f"{args.model}: --report draws alignments with PyTorch; give the checkpoint (.pt) it was "
                        "exported from, or drop --report")
    scorer = lm_scorer(args, rec.charset)
    result = rec.evaluate(args.data, batch_size=args.batch_size, label_pattern=args.label_pattern, beam=args.beam,
                          lexicon=args.lexicon, lm=scorer)
    metrics, report, preds = result
    summary = result.summary(worst=args.worst)
    summary["decoding"] = describe_decoding(args, scorer)
    if args.report:
        from crnn.insight.report import write_report

        page = write_report(args.report, rec, metrics, preds, report, args.data, label_pattern=args.label_pattern)
        summary["report"] = str(page)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    if report.skipped:
        print(report.format(max_lines=20), file=sys.stderr)
    print(f"model            {args.model}")
    print(f"data             {args.data}  ({metrics.n} samples, {len(report.skipped)} skipped)")
    print(f"decoding         {summary['decoding']}")
    print(f"word accuracy    {metrics.accuracy:.2%}  (ignoring case: {metrics.accuracy_nocase:.2%})")
    print(f"CER              {metrics.cer:.4f}")
    print(f"norm. edit dist. {metrics.ned:.4f}")
    print("accuracy by label length:")
    for length, v in summary["accuracy_by_length"].items():
        print(f"  {length:>3} chars  {v['accuracy']:7.2%}  ({v['samples']} samples)")
    if metrics.errors:
        print(f"worst {min(args.worst, len(metrics.errors))} errors (truth -> prediction, confidence):")
        for e in metrics.worst(args.worst):
            print(f"  {e.truth!r:>20} -> {e.pred!r:<20} {e.confidence:.3f}  {e.name}")
        print("most common character errors: " + ", ".join(_char_error_text(x) for x in summary["top_char_errors"]))
    if report.unknown_chars:
        print(f"note: labels contain characters this model cannot output: {''.join(sorted(report.unknown_chars))!r}")
    if args.report:
        print(f"report: {summary['report']}")
    return 0


def _char_error_text(err: dict) -> str:
    """One counted character edit for people: ``'0' read as 'O' x17``, ``'H' dropped x3``, ``extra 'I' x2``."""
    if err["kind"] == "substitution":
        what = f"{err['truth']!r} read as {err['pred']!r}"
    elif err["kind"] == "deletion":
        what = f"{err['truth']!r} dropped"
    else:
        what = f"extra {err['pred']!r}"
    return f"{what} x{err['count']}"


def cmd_predict(args) -> int:
    from crnn.data.discover import expand_inputs
    from crnn.inference.load import load_recognizer

    _check_counts(args, "--batch-size")
    paths = expand_inputs(args.inputs)
    rec = load_recognizer(args.model, args.backend, args.device)
    preds = rec.predict(paths, batch_size=args.batch_size, beam=args.beam, lexicon=args.lexicon,
                        on_error="report", lm=lm_scorer(args, rec.charset))
    from crnn.data.sources import display, tsv_field

    failed = 0
    if args.format == "json":
        print(json.dumps([p.to_dict() for p in preds], indent=2, ensure_ascii=False))
    for p in preds:
        if p.error:
            failed += 1
            print(f"error: {display(p.error)}", file=sys.stderr)
        elif args.format == "tsv":
            print(f"{tsv_field(p.name)}\t{tsv_field(p.text)}\t{p.confidence:.4f}")
        elif args.format == "text":
            print(f"{display(p.name)}: {display(p.text)}  ({p.confidence:.2f})")
    if failed:
        print(f"{failed} of {len(preds)} images could not be read", file=sys.stderr)
        return 1
    return 0


def cmd_synth(args) -> int:
    from tqdm import tqdm

    from crnn.synth import SynthConfig, load_synth_config, synthesize

    cfg = load_synth_config(args.config) if args.config else SynthConfig()
    with tqdm(total=args.count, unit="img", disable=args.no_progress) as bar:
        def progress(n: int) -> None:
            bar.update(n - bar.n)

        try:
            out = synthesize(args.out, args.count, cfg, seed=args.seed, fmt=args.format, workers=args.workers,
                             overwrite=args.force, progress=progress)
        except ValueError as e:
            raise CrnnError(str(e)) from None
        except FileExistsError as e:
            if e.filename is not None:  # raised by the OS, not synthesize's own message
                raise
            raise CrnnError(str(e)) from None
    print(f"wrote {args.count} images to {out}")
    return 0


def cmd_demo(args) -> int:
    from crnn.demo import run_demo

    return run_demo(Path(args.dir), time_budget=args.time_budget, count=args.count, scratch=args.scratch,
                    epochs=args.epochs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crnn", description="Train and use CRNN text-line recognizers.")
    parser.add_argument("--version", action="version", version=f"crnn-ocr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="validate a dataset and write it as LMDB, with a report")
    p.add_argument("data", help="folder of LABEL.png images, a labels.tsv, or an LMDB")
    p.add_argument("out", help="LMDB folder to create")
    p.add_argument("--height", type=int,
                   help="model input height: recorded in the dataset, and train then uses it "
                        "(default 48, not recorded)")
    p.add_argument("--channels", type=int, choices=(1, 3),
                   help="1 grayscale, 3 RGB: recorded in the dataset, and train then uses it "
                        "(default 1, not recorded)")
    p.add_argument("--charset", help="allowed characters; labels with others are skipped and counted "
                   "(write --charset=-AB if it starts with '-')")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists (only once the new one is done)")
    _add_data_options(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a model")
    p.add_argument("--train", required=True, nargs="+", action="extend",
                   help="training data: folder, labels file, LMDB or synth:CONFIG.toml; several are mixed")
    p.add_argument("--val", help="validation data (default: hold out data.val_fraction of --train)")
    p.add_argument("--out", required=True, help="run folder (config, logs, last.pt, best.pt)")
    p.add_argument("--config", help="TOML or YAML config file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. model.rnn_type=GRU")
    p.add_argument("--time-budget", help="stop after this much training time: 90s, 10m, 2h")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--arch", choices=("small", "paper", "half", "mobile"), help="model preset")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--workers", type=int, help="data-loader worker processes")
    p.add_argument("--seed", type=int)
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16 on CPU, fp16/bf16 on CUDA)")
    p.add_argument("--tensorboard", action="store_true", help="also log metrics to RUN/tensorboard")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--force", action="store_true",
                   help="start a new run in an --out that holds one; its files are moved into --out/old-TIMESTAMP/")
    p.add_argument("--init", metavar="MODEL", help="start from this model's weights (fine-tuning), e.g. builtin:en")
    p.add_argument("--nproc", type=int, help="train with N processes on this machine (DDP via torchrun)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_data_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="word accuracy and CER of a model on a labelled dataset")
    p.add_argument("model", help="checkpoint file, builtin:NAME, or an exported .onnx / .torchscript.pt file")
    p.add_argument("data", help="folder, labels file or LMDB")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--worst", type=int, default=10, help="how many worst errors to list")
    p.add_argument("--report", metavar="DIR", help="also write an HTML report into DIR")
    p.add_argument("--batch-size", type=int, default=64)
    add_decode_options(p)
    p.add_argument("--device", default="cpu")
    _add_data_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="read the text of images")
    p.add_argument("model", help="checkpoint file, exported .onnx or .torchscript.pt file, or builtin:NAME")
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--format", choices=("text", "tsv", "json"), default="text")
    p.add_argument("--batch-size", type=int, default=64)
    add_decode_options(p)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: ONNX Runtime for .onnx, TorchScript for .torchscript.pt, and for a checkpoint ONNX "
                        "Runtime when installed (traced at load, same texts, 2-3x faster on the CPU), else "
                        "PyTorch; torch keeps a checkpoint on PyTorch")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_predict)

    register_export(sub)
    register_serve(sub)
    register_visualize(sub)
    register_audit(sub)
    register_label(sub)

    p = sub.add_parser("synth", help="render synthetic text-line images with ground truth")
    p.add_argument("out", help="output folder (images + labels.tsv) or LMDB folder (--format lmdb)")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="synth TOML config (see configs/synth_en.toml)")
    p.add_argument("--format", choices=("folder", "lmdb"), default="folder")
    p.add_argument("--workers", type=int, default=1, help="rendering processes (output does not depend on it)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("demo", help="generate CAPTCHA data, fine-tune builtin:en briefly, evaluate and predict")
    p.add_argument("--dir", default="demo", help="where to put the data and the run")
    p.add_argument("--epochs", type=int, default=6,
                   help="passes over the training images (default 6: about 3 minutes on 2 quiet cores; the same "
                        "result on any machine, only sooner or later)")
    p.add_argument("--time-budget", help="train for this long instead (90s, 10m): the result then depends on the "
                                         "machine's speed")
    p.add_argument("--count", type=int, default=2000, help="training images to generate")
    p.add_argument("--scratch", action="store_true", help="train from scratch instead of fine-tuning builtin:en")
    p.set_defaults(func=cmd_demo)

    return parser


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # A SIGTERM while loading data or a model ends like Ctrl-C: one line, status 130
        # (training installs its own handler, which saves last.pt first).
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return args.func(args)
    except CrnnError as e:
        _say_error(f"error: {e}")
        return EXIT_ERROR
    except OSError as e:
        # The file system refused (a file where a folder must go, no permission, disk full):
        # the user's environment, not a bug, so one line naming the path, as mkdir or cp would.
        from crnn.fileio import folder_blocked

        blocked = folder_blocked(e.filename) if isinstance(e, (FileExistsError, NotADirectoryError)) \
            and e.filename else None
        if blocked is not None:
            _say_error(f"error: {blocked}")
        else:
            where = f"{e.filename}: " if e.filename else ""
            _say_error(f"error: {where}{e.strerror or e}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> int:
    """The process entry point (the ``crnn`` script, ``python -m crnn``): :func:`main`, then deaf to signals.

    Once main() has returned, the command's work is done (or it failed and said so). A Ctrl-C or SIGTERM
    from then on has nothing left to stop; left to Python's default handler it would turn the status
    main() chose into a death by SIGINT during interpreter shutdown (-2), e.g. just after a training run
    finished. main() itself leaves the handlers alone, as a library call inside another program must.
    """
    try:
        return main()
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    raise SystemExit(run())
