"""``crnn export``: argument parsing only; the work is in :mod:`crnn.export.onnx` / :mod:`crnn.export.torchscript`."""

from __future__ import annotations

import argparse


def cmd_export(args) -> int:
    if args.format == "onnx":
        from crnn.export.onnx import export_onnx

        result = export_onnx(args.model, args.out, opset=args.opset, verify=not args.no_verify)
    else:
        from crnn.export.torchscript import export_torchscript

        result = export_torchscript(args.model, args.out, verify=not args.no_verify)
    check = ("not checked" if result.max_abs_diff is None
             else f"checked against PyTorch: max log-prob difference {result.max_abs_diff:.2g}")
    print(f"wrote {result.path} ({result.format}, {result.size_bytes / 1e6:.2f} MB; {check})")
    if result.format == "onnx":
        print(f"use it with: crnn predict {result.path} IMAGES --backend onnx")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``crnn export`` to the ``crnn`` command's subparsers."""
    p = subparsers.add_parser("export", help="export a model to ONNX or TorchScript (self-contained file)")
    p.add_argument("model", help="checkpoint file or builtin:NAME")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--out", help="output file (default: MODEL with .onnx or .torchscript.pt)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or newer)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the check that the exported model reproduces the PyTorch outputs")
    p.set_defaults(func=cmd_export)
    return p
