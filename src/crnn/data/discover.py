"""Which image files a command's arguments name: files, folders (recursively) and glob patterns."""

from __future__ import annotations

import glob
from pathlib import Path

from crnn.data.images import is_image_path
from crnn.errors import CrnnError


def expand_inputs(items: list[str]) -> list[str]:
    """Files, folders (their images, recursively, sorted) and glob patterns -> image paths."""
    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(str(f) for f in sorted(p.rglob("*")) if f.is_file() and is_image_path(f))
        elif p.exists():
            out.append(item)
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise CrnnError(f"{item}: no such file, folder or matching glob")
            out.extend(matches)
    if not out:
        raise CrnnError(f"no images found in {', '.join(items)}")
    return out
