"""The network: :class:`~crnn.models.crnn.CRNN`, its presets and its geometry.

``import crnn.models`` is cheap: :mod:`~crnn.models.geometry` and :mod:`~crnn.models.presets` are
torch-free (the exported-model runtimes and the config use them), and the PyTorch model loads on first use.
"""

from __future__ import annotations

__all__ = ["CRNN", "CTCOutput", "Block", "PRESETS", "RNN_DEFAULTS", "build_model", "count_parameters", "ctc_loss"]


def __getattr__(name: str):
    if name in ("PRESETS", "RNN_DEFAULTS"):
        from crnn.models import presets

        return getattr(presets, name)
    if name == "Block":
        from crnn.models.geometry import Block

        return Block
    if name in ("CRNN", "CTCOutput", "build_model", "count_parameters", "ctc_loss"):
        from crnn.models import crnn

        return getattr(crnn, name)
    raise AttributeError(f"module 'crnn.models' has no attribute {name!r}")
