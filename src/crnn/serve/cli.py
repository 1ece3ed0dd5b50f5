"""``crnn serve``: argument parsing and start-up; the service itself is :mod:`crnn.serve.app`."""

from __future__ import annotations

import argparse
import sys

from crnn.backends import load_backend
from crnn.errors import CrnnError


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from crnn.serve.app import ServeSettings, create_app
    except ImportError as e:
        raise CrnnError(f"crnn serve needs FastAPI and uvicorn ({e}): "
                        "pip install fastapi uvicorn python-multipart") from None
    rec = load_backend(args.model, args.backend, args.device, args.threads)
    settings = ServeSettings(max_request_bytes=int(args.max_request_mb * 1024 * 1024), max_images=args.max_images,
                             max_pixels=args.max_pixels, max_side=args.max_side, max_batch_images=args.max_batch,
                             max_wait_ms=args.max_wait_ms, beam=args.beam, lexicon=args.lexicon,
                             body_timeout_s=args.body_timeout)
    app = create_app(rec, settings)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {args.host}: reachable from other machines; there is no authentication",
              file=sys.stderr)
    print(f"serving {args.model} ({getattr(rec, 'backend', 'torch')} backend) on http://{args.host}:{args.port}/ "
          f"(API docs: /docs)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=not args.no_access_log)
    return 0


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {v}")
    return v


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``crnn serve`` to the ``crnn`` command's subparsers."""
    p = subparsers.add_parser("serve", help="serve a model over HTTP (JSON API, micro-batching, a test page)")
    p.add_argument("model", help="checkpoint file, builtin:NAME, exported .onnx or .torchscript.pt")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=("auto", "torch", "onnx", "torchscript"), default="auto",
                   help="auto: onnx for .onnx, torchscript for .torchscript.pt, torch otherwise")
    p.add_argument("--device", default="cpu", help="torch backend: cpu, cuda, auto")
    p.add_argument("--threads", type=_positive,
                   help="intra-op threads of the model (default: the runtime's choice)")
    p.add_argument("--beam", type=int, default=0, help="CTC prefix beam search width (0 = greedy)")
    p.add_argument("--lexicon", help="word list: decode to the best-scoring word in it")
    p.add_argument("--max-batch", type=_positive, default=32, help="most images in one model call")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long to wait for more requests to fill a batch")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="S",
                   help="answer 408 to a client whose request body stalls this long")
    p.add_argument("--max-request-mb", type=float, default=10.0, help="largest request body (413 beyond)")
    p.add_argument("--max-images", type=_positive, default=64, help="most images in one request (413 beyond)")
    p.add_argument("--max-pixels", type=_positive, default=16_000_000, help="most pixels in one image (413 beyond)")
    p.add_argument("--max-side", type=_positive, default=16_384, help="largest width or height (413 beyond)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--no-access-log", action="store_true", help="do not log each request")
    p.set_defaults(func=cmd_serve)
    return p
