"""``crnn label``: argument parsing and start-up; the work is :mod:`crnn.label.session` and :mod:`crnn.label.app`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crnn.errors import CrnnError


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``crnn label`` to the ``crnn`` command's subparsers."""
    p = subparsers.add_parser(
        "label", help="label a folder of crops in a local web page, the model's reading pre-filled",
        description="Serve a page on this machine that shows each image of DIR with the model's reading "
                    "(least confident first): type to correct, Enter to accept, Esc to skip, Ctrl+Z to undo. "
                    "Writes label-named copies (or a labels.tsv) into OUT; the originals are never changed. "
                    "A restart with the same OUT resumes. --review AUDIT.json corrects the suspects of crnn audit.")
    p.add_argument("dir", nargs="?", metavar="DIR", help="folder of images to label (not needed with --review)")
    p.add_argument("--out", help="where the labels go (default: DIR-labelled; with --review: the audited folder)")
    p.add_argument("--model", default="builtin:en", help="model that pre-fills the readings (default builtin:en)")
    p.add_argument("--format", choices=("copies", "tsv"), default="copies",
                   help="copies: OUT/HELLO.png, OUT/HELLO_2.png (+ label-pattern.txt); tsv: OUT/images/ + labels.tsv")
    p.add_argument("--charset", help="the only characters a label may hold (others are refused on the page)")
    p.add_argument("--review", metavar="AUDIT.json", help="correct the suspects of `crnn audit --json` instead")
    p.add_argument("--review-top", type=int, default=0, help="with --review: only the N most suspect (0 = all)")
    p.add_argument("--retrain-every", type=int, default=0, metavar="N",
                   help="fine-tune in the background after every N new labels (0 = only from the page's button)")
    p.add_argument("--retrain-budget", default="2m", help="training time of one fine-tune (90s, 2m)")
    p.add_argument("--retrain-min", type=int, default=10, help="labels needed before a fine-tune starts")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for fine-tunes")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_label)
    return p


def build_session(args):
    """The :class:`~crnn.label.session.LabelSession` the options describe (also used by tests)."""
    from crnn.config import parse_duration
    from crnn.inference.load import load_recognizer
    from crnn.label.session import LabelSession, SessionSettings, review_items
    from crnn.label.store import LabelStore

    for flag in ("retrain_every", "review_top"):
        if getattr(args, flag) < 0:
            raise CrnnError(f"--{flag.replace('_', '-')} must be 0 or more, got {getattr(args, flag)}")
    if args.retrain_min < 1:
        raise CrnnError(f"--retrain-min must be at least 1, got {args.retrain_min}")
    budget = parse_duration(args.retrain_budget)
    review = None
    if args.review:
        from crnn.insight.audit import load_audit

        audit = load_audit(args.review)
        data = Path(audit["data"])
        out = Path(args.out) if args.out else (data.parent if data.is_file() else data)
        store = LabelStore.reopen(out)
        review = review_items(store, audit, args.review_top or None)
    else:
        if not args.dir:
            raise CrnnError("give the folder of images to label (crnn label DIR), or --review AUDIT.json")
        out = Path(args.out) if args.out else Path(str(Path(args.dir)).rstrip("/") + "-labelled")
        store = LabelStore(args.dir, out, args.format)
    settings = SessionSettings(allowed=args.charset, retrain_every=args.retrain_every, retrain_budget_s=budget,
                               retrain_min=args.retrain_min, retrain_set=list(args.set))
    rec = load_recognizer(args.model, "torch", args.device)
    print(f"reading the images with {args.model} ...", file=sys.stderr, flush=True)
    return LabelSession(store, rec, settings, review=review, model_name=args.model)


def cmd_label(args) -> int:
    try:
        import uvicorn

        from crnn.label.app import LOCAL_HOSTS, create_app
    except ImportError as e:
        raise CrnnError(f"crnn label needs FastAPI and uvicorn ({e}): pip install fastapi uvicorn") from None
    session = build_session(args)
    local = args.host in LOCAL_HOSTS
    if not local:
        print(f"note: listening on {args.host}: reachable from other machines; there is no authentication",
              file=sys.stderr)
    st = session.state()
    print(f"{st['labelled']} of {st['total']} {'reviewed' if st['mode'] == 'review' else 'labelled'}; writing into "
          f"{session.store.out}; open http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    app = create_app(session, None if local else ["*"])
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    data, pattern = session.store.data_location()
    print(f"labels: {data}" + (f" (read with --label-pattern '{pattern}')" if pattern else ""), file=sys.stderr)
    return 0


__all__ = ["register", "cmd_label", "build_session"]
