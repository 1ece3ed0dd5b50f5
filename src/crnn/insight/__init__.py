"""See what the model sees: explanation figures, evaluation reports, label audits.

Importing this package is cheap; matplotlib and torch load when a function is used.

- :func:`explain` / :func:`render_explanation` / :func:`explanation_png` (:mod:`.visualize`):
  input as the model saw it, CNN feature maps, CTC alignment, saliency;
- :func:`write_report` (:mod:`.report`): the static HTML page of ``crnn eval --report``;
"""

from __future__ import annotations

_EXPORTS = {
    "Explanation": "visualize", "explain": "visualize", "render_explanation": "visualize",
    "explanation_png": "visualize", "figure_png": "visualize",
    "write_report": "report",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"crnn.insight.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'crnn.insight' has no attribute {name!r}")
