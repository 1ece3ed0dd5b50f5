"""See what the model sees: explanation figures, training curves, evaluation reports.

Importing this package is cheap; matplotlib and torch load when a function is used.

- :func:`explain` / :func:`render_explanation` / :func:`explanation_png` (:mod:`.visualize`):
  input as the model saw it, CNN feature maps, CTC alignment, saliency;
- :func:`plot_curves` (:mod:`.curves`): ``curves.png`` from a run's ``metrics.csv``;
- :func:`write_report` (:mod:`.report`): the static HTML page of ``crnn eval --report``;
- :class:`TensorBoardLogger` (:mod:`.tensorboard`): optional TensorBoard scalars.
"""

from __future__ import annotations

_EXPORTS = {
    "Explanation": "visualize", "explain": "visualize", "render_explanation": "visualize",
    "explanation_png": "visualize", "figure_png": "visualize", "frame_centres": "visualize",
    "plot_curves": "curves", "write_report": "report", "TensorBoardLogger": "tensorboard",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"crnn.insight.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'crnn.insight' has no attribute {name!r}")
