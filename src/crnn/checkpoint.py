"""Checkpoint files: one self-contained file per model, written atomically, loaded safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, saved
with ``torch.save`` and read back with ``torch.load(weights_only=True)``: opening a
model file never runs code from it (a pickle with a ``__reduce__`` payload is
refused). It carries everything eval, predict, export and serve need:

- ``format`` / ``version``: what this file is, so other files get a clear error;
- ``config``: the full training :class:`~crnn.config.Config` as a dict;
- ``charset`` and ``preprocess``: how text and images map to the model;
- ``model``: the weights (the EMA weights when EMA is on);
- ``train_state`` (``last.pt`` only): optimizer, schedule position, RNG states.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from crnn.errors import CrnnError, ModelFileError
from crnn.fileio import atomic_write

FORMAT = "crnn-ocr-checkpoint"
VERSION = 1


class CheckpointWriteError(CrnnError, OSError):
    """A checkpoint could not be written (full disk, no permission); the previous file is untouched.

    An :class:`OSError` for callers that handle those, and a one-line :class:`CrnnError` for the CLI.
    """


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` via a temporary file, fsync and rename.

    A crash, a kill or a full disk at any moment leaves either the old file or
    the new one under ``path``, never a torn one. A failure to write raises
    :class:`CheckpointWriteError`.
    """
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **payload}
    try:
        return atomic_write(path, lambda f: torch.save(payload, f))
    except OSError as e:
        if isinstance(e, CrnnError):
            raise
        err = CheckpointWriteError(f"{path}: could not write the checkpoint ({e.strerror or e}); "
                                   f"{'the previous file is kept' if path.exists() else 'nothing was saved'}")
        err.errno = e.errno
        raise err from e


def _is_torchscript(path: Path) -> bool:
    """A zip archive with a ``code/`` folder: what ``torch.jit.save`` writes."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n or n.startswith("code/") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _is_onnx(path: Path) -> bool:
    """An ONNX protobuf: named ``.onnx``, or opening with field 1 (ir_version) then a producer name."""
    if path.suffix.lower() == ".onnx":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return len(head) > 4 and head[0] == 0x08 and head[2] == 0x12 and head[3] < 64


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint; every failure is a one-line :class:`ModelFileError`."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: model file not found")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder; give a model file such as {path / 'best.pt'}")
    if _is_torchscript(path):  # torch.load would hand it to torch.jit.load, which runs its TorchScript code
        raise ModelFileError(f"{path}: is a TorchScript program, not a checkpoint (exported models are run with "
                             "`crnn predict --backend` / `crnn serve`, not loaded as checkpoints)")
    if _is_onnx(path):
        raise ModelFileError(f"{path}: is an exported ONNX model, not a checkpoint (`crnn predict`, `eval` and "
                             "`serve` run it; this command needs the PyTorch checkpoint it was exported from)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "Unsupported operand" in text:  # bytes that are no pickle at all (a .npy, random data): not code
            detail = next(ln.strip() for ln in text.splitlines() if "Unsupported operand" in ln)
            raise ModelFileError(f"{path}: not a readable model file (truncated or from another program: "
                                 f"{detail.removeprefix('WeightsUnpickler error: ')[:160]})") from None
        if "weights_only" in text.lower() or "Unsupported" in text:
            detail = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln), "unsafe content")
            raise ModelFileError(f"{path}: refused: the file would import or run code, which a model file never "
                                 f"needs ({detail.split(' was not')[0][:160]})") from None
        msg = text.splitlines()[0] if text else "unsafe content"
        raise ModelFileError(f"{path}: not a model file of this toolkit ({msg[:160]})") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        first = first.split(". ")[0]  # torch's zip reader appends advice meant for its own developers
        raise ModelFileError(f"{path}: not a readable model file (truncated or from another program: "
                             f"{first[:160]})") from None
    except Exception as e:  # anything else torch.load may raise on garbage input
        raise ModelFileError(f"{path}: not a readable model file ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a checkpoint of this toolkit (no '{FORMAT}' marker; "
                             "a bare state_dict or another program's file?)")
    version = ckpt.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{path}: checkpoint format version {version!r} is not a number; the file is damaged")
    if version > VERSION:
        raise ModelFileError(f"{path}: checkpoint format version {version} is newer than this toolkit "
                             f"understands ({VERSION}); upgrade crnn-ocr")
    for key, kind in (("config", dict), ("charset", str), ("preprocess", dict), ("model", dict)):
        if key not in ckpt:
            raise ModelFileError(f"{path}: checkpoint is missing '{key}'")
        if not isinstance(ckpt[key], kind):
            raise ModelFileError(f"{path}: checkpoint '{key}' is a {type(ckpt[key]).__name__}, not a {kind.__name__}")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt["model"].items()):
        raise ModelFileError(f"{path}: checkpoint 'model' is not a state dict (names -> tensors)")
    n_out = ckpt["model"].get("fc.weight")
    if n_out is None or n_out.shape[0] != len(ckpt["charset"]) + 1:
        raise ModelFileError(f"{path}: charset has {len(ckpt['charset'])} characters but the output layer has "
                             f"{None if n_out is None else n_out.shape[0]} classes (expected charset + blank)")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], name: str = "model"):
    """Rebuild the model a checkpoint describes and load its weights.

    Returns ``(model, charset, preprocess, config)``; the model is in eval mode on the CPU.
    """
    from crnn.charset import Charset
    from crnn.config import Config
    from crnn.data.images import Preprocess
    from crnn.errors import ConfigError
    from crnn.models.crnn import build_model

    try:
        cfg = Config.from_dict(ckpt["config"])
    except ConfigError as e:
        raise ModelFileError(f"{name}: checkpoint config is not understood ({e})") from None
    try:
        charset = Charset(ckpt["charset"])
        pre = Preprocess.from_dict(ckpt["preprocess"])
    except (CrnnError, TypeError, ValueError) as e:
        raise ModelFileError(f"{name}: checkpoint charset or preprocessing is not understood ({e})") from None
    weights = ckpt["model"]
    try:
        # Shapes first, on the meta device (no memory): a file whose config claims a huge model
        # must not make us allocate it before its weights are found not to fit.
        with torch.device("meta"):
            probe = build_model(cfg.model, charset.num_classes, pre.channels, pre.height)
        want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in weights.items()}
        if want != got:
            diff = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got[k]]
            k = diff[0]
            raise ValueError(f"{k}: file has {got.get(k, 'nothing')}, the model needs {want.get(k, 'nothing')}")
        model = build_model(cfg.model, charset.num_classes, pre.channels, pre.height)
        model.load_state_dict(weights)
    except (RuntimeError, ValueError, TypeError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ModelFileError(f"{name}: weights do not fit the model the checkpoint describes ({first[:200]})") from None
    return model.eval(), charset, pre, cfg
