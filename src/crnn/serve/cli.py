"""``crnn serve``: argument parsing and start-up; the service itself is :mod:`crnn.serve.app`."""

from __future__ import annotations

import argparse
import errno
import math
import socket
import sys

from crnn.decoding.cli_options import add_decode_options
from crnn.errors import CrnnError
from crnn.inference.load import BACKENDS, load_recognizer


def cmd_serve(args) -> int:
    try:
        import uvicorn

        from crnn.serve.app import ServeSettings, create_app
    except ImportError as e:
        raise CrnnError(f"crnn serve needs FastAPI and uvicorn ({e}): "
                        "pip install fastapi uvicorn python-multipart") from None
    for flag in ("body_timeout", "request_timeout", "max_request_mb", "max_wait_ms"):
        value = getattr(args, flag)
        if not (math.isfinite(value) and value > 0 or flag == "max_wait_ms" and value == 0):
            raise CrnnError(f"--{flag.replace('_', '-')} must be a positive number of seconds/MB/ms, got {value}")
    sock = listen(args.host, args.port)  # before loading the model: a busy port is known in a second
    rec = load_recognizer(args.model, args.backend, args.device, args.threads)
    settings = ServeSettings(max_request_bytes=int(args.max_request_mb * 1024 * 1024), max_images=args.max_images,
                             max_pixels=args.max_pixels, max_side=args.max_side, max_batch_images=args.max_batch,
                             max_wait_ms=args.max_wait_ms, beam=args.beam, lexicon=args.lexicon,
                             lm=args.lm, lm_weight=args.lm_weight, lm_bonus=args.lm_bonus,
                             body_timeout_s=args.body_timeout, request_timeout_s=args.request_timeout,
                             max_connections=args.max_connections)
    app = create_app(rec, settings)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {args.host}: reachable from other machines; there is no authentication",
              file=sys.stderr)
    # uvicorn counts the connection that asks, so N open ones already refuse the Nth request: + 1 holds N.
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=not args.no_access_log,
                                           limit_concurrency=settings.max_connections + 1))
    print(f"serving {args.model} ({getattr(rec, 'backend', 'torch')} backend) on http://{args.host}:{args.port}/ "
          f"(API docs: /docs)", file=sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C / SIGINT: uvicorn has shut down cleanly and re-raises it
        return 0
    finally:
        sock.close()
    if not server.started:
        raise CrnnError(f"{args.host}:{args.port}: the server did not start (see the lines above)")
    return 0


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or a one-line error: a busy port must fail before "serving on" is printed.

    uvicorn would otherwise print its own start-up lines, log the bind error and exit with status 3.
    """
    if not 0 <= port <= 65535:
        raise CrnnError(f"--port must be in [0, 65535], got {port}")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise CrnnError(f"{host}: not an address this machine can listen on ({e.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does; a live listener still blocks it
    try:
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        hint = "; another server is listening there, choose another --port" if e.errno == errno.EADDRINUSE else ""
        raise CrnnError(f"{host}:{port}: cannot listen ({e.strerror or e}){hint}") from None
    sock.set_inheritable(True)
    return sock


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
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: onnx for .onnx, torchscript for .torchscript.pt, torch otherwise")
    p.add_argument("--device", default="cpu", help="torch backend: cpu, cuda, auto")
    p.add_argument("--threads", type=_positive,
                   help="intra-op threads of the model (default: the runtime's choice)")
    add_decode_options(p)
    p.add_argument("--max-batch", type=_positive, default=32, help="most images in one model call")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long to wait for more requests to fill a batch")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="S",
                   help="answer 408 to a client whose request body stalls this long")
    p.add_argument("--request-timeout", type=float, default=60.0, metavar="S",
                   help="answer 408 to a client whose request body is not complete S seconds after it began")
    p.add_argument("--max-connections", type=_positive, default=64, metavar="N",
                   help="open connections (and requests in flight) before new requests get 503")
    p.add_argument("--max-request-mb", type=float, default=10.0, help="largest request body (413 beyond)")
    p.add_argument("--max-images", type=_positive, default=64, help="most images in one request (413 beyond)")
    p.add_argument("--max-pixels", type=_positive, default=16_000_000, help="most pixels in one image (413 beyond)")
    p.add_argument("--max-side", type=_positive, default=16_384, help="largest width or height (413 beyond)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--no-access-log", action="store_true", help="do not log each request")
    p.set_defaults(func=cmd_serve)
    return p
