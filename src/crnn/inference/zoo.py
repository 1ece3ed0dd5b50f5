"""Models shipped inside the package, addressed as ``builtin:NAME`` wherever a model path is taken."""

from __future__ import annotations

import os
from pathlib import Path

from crnn.errors import ModelFileError

ASSETS = Path(__file__).parent.parent / "assets"
PREFIX = "builtin:"


def builtin_models() -> list[str]:
    return sorted(p.stem for p in ASSETS.glob("*.pt")) if ASSETS.is_dir() else []


def resolve_model_path(model: str | os.PathLike) -> Path:
    """``builtin:en`` -> the packaged file; any other value is taken as a path."""
    text = str(model)
    if text.startswith(PREFIX):
        name = text[len(PREFIX):]
        path = ASSETS / f"{name}.pt"
        if not path.is_file():
            have = ", ".join(builtin_models()) or "none in this installation"
            raise ModelFileError(f"{text}: no such built-in model (available: {have})")
        return path
    return Path(text)
