"""See what the model sees: feature maps, CTC alignment and saliency for one text-line image.

:func:`explain` runs the model once with gradients and returns an :class:`Explanation`
(plain NumPy arrays, no plotting); :func:`render_explanation` draws it as one PNG:

1. the input exactly as the model saw it (after resizing to the model height), with a
   line at each decoded character's position;
2. the decoded characters, each placed at the centre of the receptive field of the
   time step(s) that emitted it (computed from the conv stack's pooling, so a time
   step ``t`` sits at about ``(t + 0.5) * W / T`` pixels);
3. the CTC alignment: one cell per time step, coloured by the probability of that
   step's most likely class and labelled with it (``·`` is the CTC blank);
4. a saliency map: how much each input pixel moves the log-probability of the decoded
   text (the gradient of the CTC log-likelihood of the decoded label, optionally
   averaged over noisy copies, "SmoothGrad");
5. for each chosen conv stage, the mean activation over its channels and its most
   active channels, upsampled onto the image.

Plotting uses matplotlib's object API with the Agg canvas only (never ``pyplot``), so
it is safe in servers and threads and leaves the user's interactive backend alone.
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crnn.charset import BLANK
from crnn.errors import ConfigError, CrnnError

BLANK_MARK = "·"


@dataclass
class Explanation:
    """What the model saw and did for one image; every array is NumPy.

    ``H, W`` are the model input's height and width, ``T`` the number of time steps.
    """

    name: str
    image: np.ndarray                      # uint8 (H, W) or (H, W, 3): the preprocessed image
    input: np.ndarray                      # float32 (H, W) in [-1, 1]: the model input (channel mean)
    text: str                              # greedy-decoded text
    confidence: float                      # best-path probability, as Recognizer.predict reports it
    log_probs: np.ndarray                  # float32 (T, C) per-step log-probabilities
    top_classes: np.ndarray                # int64 (T,) most likely class per step (0 = blank)
    top_probs: np.ndarray                  # float32 (T,) its probability
    frame_x: np.ndarray                    # float64 (T,) receptive-field centre of each step, input pixels
    char_positions: list[tuple[str, float, float]]  # (char, x pixel, prob) per decoded character
    saliency: np.ndarray                   # float32 (H, W) in [0, 1] (max-normalised |gradient|)
    feature_maps: dict[str, np.ndarray] = field(default_factory=dict)   # layer -> (k, H, W), raw activations
    feature_channels: dict[str, list[int]] = field(default_factory=dict)  # layer -> channel index of each map
    mean_maps: dict[str, np.ndarray] = field(default_factory=dict)      # layer -> (H, W) mean over channels
    layer_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # layer -> native (C, h, w)
    charset: str = ""                      # class i > 0 is charset[i - 1]
    saliency_mode: str = "sequence"

    @property
    def steps(self) -> int:
        return int(self.top_classes.shape[0])

    def class_label(self, index: int) -> str:
        """The character of class ``index``; the blank is shown as ``·``."""
        return BLANK_MARK if index == BLANK else self.charset[index - 1]

    def to_dict(self) -> dict:
        """What ``crnn visualize --json`` writes: the reading, each character's position, each step's top class."""
        return {"name": self.name, "text": self.text, "confidence": round(self.confidence, 6),
                "width": int(self.input.shape[1]), "height": int(self.input.shape[0]),
                "characters": [{"char": c, "x": round(x, 2), "prob": round(p, 4)} for c, x, p in self.char_positions],
                "steps": self.alignment()}

    def alignment(self) -> list[dict]:
        """Per time step: x position, top class label and probability (JSON-friendly)."""
        return [{"t": t, "x": round(float(x), 2), "label": self.class_label(int(c)), "prob": round(float(p), 4)}
                for t, (x, c, p) in enumerate(zip(self.frame_x, self.top_classes, self.top_probs))]


# ---------------------------------------------------------------------------------------------- layers


def layer_names(model) -> list[str]:
    """``stage1`` .. ``stageN``: one name per conv stage of ``model.cnn``."""
    return [f"stage{i + 1}" for i in range(len(model.cnn))]


def default_layers(model) -> list[int]:
    """A middle stage (still spatially detailed) and the last one (what the RNN reads); 0-based."""
    n = len(model.cnn)
    return sorted({max(n // 2, 1) - 1, n - 1})


def resolve_layers(model, layers: str | Sequence[int | str] | None) -> list[int]:
    """0-based stage indices from ``None`` (default), ``"all"``, ``"last"``, ``"none"``, 1-based numbers,
    ``"stageN"`` names, or a comma-separated string of those."""
    n = len(model.cnn)
    if layers is None:
        return default_layers(model)
    items: list[int | str] = [s.strip() for s in layers.split(",") if s.strip()] if isinstance(layers, str) \
        else list(layers)
    out: list[int] = []
    for item in items:
        key = str(item).strip().lower()
        if key == "all":
            out.extend(range(n))
        elif key == "none":
            continue
        elif key == "last":
            out.append(n - 1)
        else:
            m = re.fullmatch(r"(?:stage)?(\d+)", key)
            if not m or not 1 <= int(m.group(1)) <= n:
                raise ConfigError(f"layer {item!r} is not a conv stage of this model: use 1..{n}, stage1..stage{n}, "
                                  "'last', 'all' or 'none'")
            out.append(int(m.group(1)) - 1)
    return sorted(set(out))


# ------------------------------------------------------------------------------------------ explain


@contextmanager
def _grad_enabled(device):
    """Gradients on, even under an outer ``inference_mode``; cuDNN's RNN has no backward in eval mode."""
    import torch

    with torch.inference_mode(False), torch.enable_grad():
        if getattr(device, "type", str(device)) == "cuda":
            with torch.backends.cudnn.flags(enabled=False):
                yield
        else:
            yield


def _sequence_log_score(log_probs, indices: Sequence[int]):
    """CTC log-likelihood of ``indices`` under (1, T, C) ``log_probs``: log P(text | image) over all paths."""
    import torch

    from crnn.models.crnn import ctc_loss

    targets = torch.tensor(list(indices), dtype=torch.long, device=log_probs.device)
    return -ctc_loss(log_probs, torch.tensor([log_probs.shape[1]]), targets, torch.tensor([len(indices)]),
                     reduction="sum", zero_infinity=False)


SALIENCY_MODES = ("sequence", "chars")


def explain(recognizer, image, layers: str | Sequence[int | str] | None = None, channels: int = 4,
            saliency: str = "sequence", smooth: int = 0, noise: float = 0.1, name: str | None = None,
            seed: int = 0) -> Explanation:
    """Run ``recognizer`` on one image (path, bytes, PIL image or array) and collect what it saw.

    ``layers``: conv stages whose activations to keep (see :func:`resolve_layers`; default: a
    middle stage and the last); ``channels``: how many most active channels per stage.
    ``saliency="sequence"``: |gradient| of the decoded text's CTC log-likelihood
    log P(text | image) w.r.t. the input; it concentrates on the *least* certain
    characters (a confident character's log-probability is flat). ``"chars"``: for each
    decoded character the |gradient| of its own log-probability at the step that emitted
    it, each scaled to [0, 1], then the maximum over characters: shows the pixels each
    character was read from. ``smooth``: average over this many extra noisy copies of the
    input (SmoothGrad, noise ``noise`` times the input range), 0 for the plain gradient.
    Raises :class:`~crnn.errors.DataError` for an unreadable image and
    :class:`~crnn.errors.CrnnError` for a recognizer without a PyTorch model (ONNX).
    """
    import torch
    import torch.nn.functional as F

    from crnn.data.images import normalize_batch, preprocess_image
    from crnn.decoding.greedy import greedy_decode

    if not isinstance(getattr(recognizer, "model", None), torch.nn.Module) or not hasattr(recognizer.model, "cnn"):
        raise CrnnError(f"explanations need a PyTorch CRNN checkpoint (gradients and feature maps); "
                        f"{type(recognizer).__name__} has none (an ONNX model?)")
    if saliency not in SALIENCY_MODES:
        raise ConfigError(f"saliency must be one of {', '.join(SALIENCY_MODES)}, not {saliency!r}")
    if name is None:
        name = str(image) if isinstance(image, (str, os.PathLike)) else "image"
    rec = recognizer
    model = rec.model
    array = preprocess_image(image, rec.preprocess, name)
    batch, _ = normalize_batch([array], rec.preprocess.channels)
    x = torch.from_numpy(batch).to(rec.device)
    h, w = array.shape[:2]
    chosen = resolve_layers(model, layers)
    names = layer_names(model)
    chars = rec.charset.chars
    captured: dict[int, torch.Tensor] = {}

    me = threading.get_ident()

    def hook(i):
        def keep(_module, _inputs, out):
            if threading.get_ident() == me:  # a server may run the shared model in other threads meanwhile
                captured[i] = out.detach()
        return keep

    def gradient_map(xg, lp, result, peaks) -> torch.Tensor:
        if saliency == "sequence" or not peaks:
            (g,) = torch.autograd.grad(_sequence_log_score(lp, result.indices), xg)
            return g.abs().amax(dim=1)[0]
        maps = []
        for j, (f, c) in enumerate(peaks):
            (g,) = torch.autograd.grad(lp[0, f, c], xg, retain_graph=j < len(peaks) - 1)
            m = g.abs().amax(dim=1)[0]
            maps.append(m / m.max().clamp_min(1e-30))
        return torch.stack(maps).amax(dim=0)

    handles = [model.cnn[i].register_forward_hook(hook(i)) for i in chosen]
    was_training = model.training
    model.eval()
    try:
        with _grad_enabled(rec.device):
            xg = x.clone().requires_grad_(True)
            lp = model(xg)
            for hd in handles:
                hd.remove()
            handles = []
            lp_np = lp[0].detach().float().cpu().numpy()
            result = greedy_decode(lp_np)
            steps = lp_np.shape[0]
            best = lp_np.argmax(axis=1).astype(np.int64)
            probs = np.exp(lp_np.max(axis=1)).astype(np.float32)
            runs = []  # the steps that emitted each decoded character (a run of the same top class)
            for ci, f0 in zip(result.indices, result.frames):
                f1 = f0
                while f1 + 1 < steps and best[f1 + 1] == ci:
                    f1 += 1
                runs.append((ci, f0, f1))
            peaks = [(f0 + int(np.argmax(probs[f0:f1 + 1])), ci) for ci, f0, f1 in runs]
            sal = gradient_map(xg, lp, result, peaks)
            if smooth > 0:
                gen = torch.Generator(device="cpu").manual_seed(seed)
                for _ in range(smooth):
                    eps = torch.randn(x.shape, generator=gen).to(x.device) * (2.0 * noise)
                    xn = (x + eps).requires_grad_(True)
                    sal = sal + gradient_map(xn, model(xn), result, peaks)
                sal = sal / (smooth + 1)
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)

    sal_np = np.nan_to_num(sal.detach().float().cpu().numpy().astype(np.float32))
    peak = float(sal_np.max())
    if peak > 0:
        sal_np /= peak

    feature_maps, feature_channels, mean_maps, shapes = {}, {}, {}, {}
    for i in chosen:
        f = captured[i].float()                                    # (1, C, h', w')
        up = F.interpolate(f, size=(h, w), mode="bilinear", align_corners=False)[0]
        strength = f[0].mean(dim=(1, 2))
        top = torch.argsort(strength, descending=True)[:max(channels, 0)]
        feature_maps[names[i]] = up[top].cpu().numpy().astype(np.float32)
        feature_channels[names[i]] = [int(c) for c in top]
        mean_maps[names[i]] = up.mean(dim=0).cpu().numpy().astype(np.float32)
        shapes[names[i]] = tuple(int(s) for s in f.shape[1:])

    centres = model.frame_centres(w, steps)
    positions = [(chars[ci - 1], float(centres[f0:f1 + 1].mean()), float(probs[f0:f1 + 1].max()))
                 for ci, f0, f1 in runs]
    return Explanation(
        name=name, image=array, input=batch[0].mean(axis=0), text=rec.charset.decode(result.indices),
        confidence=result.confidence, log_probs=lp_np, top_classes=best, top_probs=probs, frame_x=centres,
        char_positions=positions, saliency=sal_np, feature_maps=feature_maps, feature_channels=feature_channels,
        mean_maps=mean_maps, layer_shapes=shapes, charset=chars, saliency_mode=saliency)


# ------------------------------------------------------------------------------------------- render


def _base_rgb(expl: Explanation) -> np.ndarray:
    img = expl.image.astype(np.float32) / 255.0
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def _blend(expl: Explanation, heat: np.ndarray, cmap: str = "magma", weighted: bool = False) -> np.ndarray:
    """The image with ``heat`` painted over it.

    ``weighted`` (saliency): the heat is scaled by its 99th percentile, so a few extreme
    pixels do not wash out the rest, its opacity follows its value, and the image
    underneath is drawn faint; otherwise the heat is min-max scaled at constant opacity.
    """
    from matplotlib import colormaps

    heat = heat.astype(np.float32)
    if weighted:
        top = float(np.percentile(heat, 99))
        norm = np.clip(heat / top, 0, 1) if top > 0 else np.zeros_like(heat)
        base = 0.45 + 0.4 * _base_rgb(expl)
        a = (0.9 * norm ** 0.6)[:, :, None]
    else:
        lo, hi = float(heat.min()), float(heat.max())
        norm = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
        base = _base_rgb(expl)
        a = np.full(norm.shape + (1,), 0.6, dtype=np.float32)
    colour = colormaps[cmap](norm)[:, :, :3]
    return np.clip(base * (1 - a) + colour * a, 0, 1)


def _show(ax, expl: Explanation, rgb: np.ndarray | None = None) -> None:
    h, w = expl.input.shape
    ax.imshow(_base_rgb(expl) if rgb is None else rgb, extent=(0, w, h, 0), aspect="auto", interpolation="nearest")


def _bare(ax, width: float, xticks: bool = False) -> None:
    ax.set_xlim(0, width)
    ax.set_yticks([])
    if not xticks:
        ax.set_xticks([])
    else:
        ax.tick_params(axis="x", labelsize=7, length=2, pad=1)


def _shown(ch: str) -> str:
    """A character as the figure draws it: a space as an open box."""
    return "\u2423" if ch == " " else ch


def _title(ax, text: str) -> None:
    ax.set_title(text, loc="left", fontsize=8, pad=2, parse_math=False)


def figure(expl: Explanation, width_in: float = 10.0, dpi: int = 100):
    """The explanation as a matplotlib :class:`~matplotlib.figure.Figure` (Agg canvas, no pyplot)."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    h, w = expl.input.shape
    aspect = h / w
    full = float(np.clip(width_in * aspect, 0.45, 2.0))
    k = max((m.shape[0] for m in expl.feature_maps.values()), default=0)
    rows: list[tuple[str, str, float]] = [("input", "", full), ("chars", "", 0.3), ("strip", "", 0.35),
                                          ("saliency", "", full)]
    for layer in expl.feature_maps:
        rows.append(("mean", layer, full))
        if k:
            rows.append(("channels", layer, float(np.clip(width_in / k * aspect, 0.35, 1.2))))
    gap = 0.32  # inches of title space above each row
    top_in = 0.45
    total = sum(r[2] for r in rows) + gap * len(rows) + top_in + 0.15
    fig = Figure(figsize=(width_in, total), dpi=dpi)
    FigureCanvasAgg(fig)
    mean_h = sum(r[2] for r in rows) / len(rows)
    gs = fig.add_gridspec(len(rows), max(k, 1), height_ratios=[r[2] for r in rows], left=0.015, right=0.985,
                          top=1 - top_in / total, bottom=0.15 / total, hspace=gap / mean_h, wspace=0.03)
    fig.suptitle(f"{expl.name}:  \u201c{expl.text}\u201d   confidence {expl.confidence:.1%}   "
                 f"({w}x{h} px, {expl.steps} time steps)", fontsize=10, parse_math=False,
                 y=1 - 0.12 / total, va="top")
    quality = colormaps["RdYlGn"]
    xs = [x for _, x, _ in expl.char_positions]

    for r, (kind, layer, _) in enumerate(rows):
        if kind == "channels":
            maps = expl.feature_maps[layer]
            for j in range(k):
                ax = fig.add_subplot(gs[r, j])
                ax.set_xticks([])
                ax.set_yticks([])
                if j < maps.shape[0]:
                    _show(ax, expl, _blend(expl, maps[j]))
                    ax.set_xlim(0, w)
                    ax.set_title(f"{layer} channel {expl.feature_channels[layer][j]}", fontsize=7, pad=2)
                else:
                    ax.axis("off")
            continue
        ax = fig.add_subplot(gs[r, :])
        if kind == "input":
            _show(ax, expl)
            for x in xs:
                ax.axvline(x, color="#1f77b4", lw=0.8, alpha=0.7)
            _bare(ax, w)
            _title(ax, f"(a) input as the model sees it ({w}x{h}, after preprocessing); blue lines: where each "
                       "character was emitted")
        elif kind == "chars":
            _bare(ax, w)
            ax.set_ylim(0, 1)
            for spine in ax.spines.values():
                spine.set_visible(False)
            for ch, x, p in expl.char_positions:
                ax.text(x, 0.45, _shown(ch), ha="center", va="center", fontsize=12, fontweight="bold", parse_math=False,
                        color="black", bbox={"boxstyle": "round,pad=0.15", "fc": quality(p), "ec": "none",
                                             "alpha": 0.85})
            _title(ax, "(b) decoded characters at their receptive-field centres (box colour: probability, red low "
                       "- green high)")
        elif kind == "strip":
            steps = expl.steps
            fx = expl.frame_x
            step = float(np.median(np.diff(fx))) if steps > 1 else float(w)
            ax.imshow(expl.top_probs[None, :], cmap="viridis", vmin=0, vmax=1, aspect="auto",
                      interpolation="nearest", extent=(fx[0] - step / 2, fx[-1] + step / 2, 1, 0))
            cell_pt = step / w * width_in * 72 * 0.97
            size = min(9.0, cell_pt * 0.85)
            for x, c, p in zip(fx, expl.top_classes, expl.top_probs):
                if c == 0 and size < 4:
                    continue
                ax.text(x, 0.5, _shown(expl.class_label(int(c))), ha="center", va="center", fontsize=max(size, 3.5),
                        color="white" if p < 0.55 else "black", parse_math=False, clip_on=True)
            _bare(ax, w, xticks=True)
            _title(ax, f"(c) CTC alignment: top class of each of the {steps} time steps, colour = its probability "
                       f"(dark 0 - yellow 1), {BLANK_MARK} = blank; x axis in input pixels")
        elif kind == "saliency":
            _show(ax, expl, _blend(expl, expl.saliency, "inferno", weighted=True))
            for x in xs:
                ax.axvline(x, color="#1f77b4", lw=0.6, alpha=0.5)
            _bare(ax, w)
            what = ("|d log P(text | image) / d pixel|, brightest where the reading is least certain"
                    if expl.saliency_mode == "sequence" else
                    "per character |d log p(char) / d pixel|, each scaled to 1: the pixels each character is read from")
            _title(ax, f"(d) saliency: {what}")
        elif kind == "mean":
            c, fh, fw = expl.layer_shapes[layer]
            _show(ax, expl, _blend(expl, expl.mean_maps[layer]))
            _bare(ax, w)
            _title(ax, f"(e) {layer}: mean activation of its {c} channels ({fh}x{fw} map upsampled), then its "
                       f"{len(expl.feature_channels[layer])} most active channels")
    return fig


def figure_png(expl: Explanation, width_in: float = 10.0, dpi: int = 100) -> bytes:
    """The rendered explanation as PNG bytes."""
    fig = figure(expl, width_in, dpi)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # glyphs missing from the default font
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_explanation(expl: Explanation, path: str | os.PathLike, width_in: float = 10.0, dpi: int = 100) -> Path:
    """Write the explanation figure to ``path`` (PNG); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(expl, width_in, dpi))
    return path


def explanation_png(recognizer, image, **kwargs) -> bytes:
    """:func:`explain` then :func:`figure_png`: the whole figure as PNG bytes (for the HTTP service)."""
    render_kw = {k: kwargs.pop(k) for k in ("width_in", "dpi") if k in kwargs}
    return figure_png(explain(recognizer, image, **kwargs), **render_kw)


__all__ = ["Explanation", "explain", "figure", "figure_png", "render_explanation", "explanation_png",
           "resolve_layers", "layer_names", "default_layers", "BLANK_MARK"]
