"""Training curves from a run's ``metrics.csv``: ``curves.png`` next to it, redrawn after every epoch.

Four panels: training loss; validation word accuracy (and ignoring case) with CER on a
twin axis; the learning rate; validation accuracy against elapsed training time with
the throughput on a twin axis. One row draws as points, empty cells are skipped, a
file with only its header draws an empty page that says so. Uses matplotlib's
object API on the Agg canvas (no ``pyplot``), so it is safe inside training.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from crnn.errors import DataError
from crnn.fileio import atomic_write


def _series(rows: list[dict], xkey: str, ykey: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, r in enumerate(rows):
        x = r.get(xkey)
        if xkey == "epoch" and x is None:
            x = float(i + 1)
        y = r.get(ykey)
        if x is None or y is None or y != y or x != x:  # empty cell or NaN
            continue
        xs.append(float(x))
        ys.append(float(y))
    return xs, ys


def _read(path: Path) -> list[dict]:
    from crnn.training.runlog import read_metrics

    if not path.is_file():
        raise DataError(f"{path}: metrics file not found")
    try:
        rows = read_metrics(path)
    except ValueError as e:
        raise DataError(f"{path}: not a metrics.csv of this toolkit ({e})") from None
    return rows


def curves_figure(rows: list[dict], title: str = "", dpi: int = 100):
    """A :class:`~matplotlib.figure.Figure` of the curves of ``rows`` (dicts as from ``read_metrics``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 7), dpi=dpi)
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)
    axes = fig.subplots(2, 2)
    style = {"marker": "o", "markersize": 3, "linewidth": 1.4}
    (loss_ax, acc_ax), (lr_ax, time_ax) = axes

    def plot(ax, xkey, ykey, label, color, **kw) -> bool:
        xs, ys = _series(rows, xkey, ykey)
        if xs:
            ax.plot(xs, ys, label=label, color=color, **{**style, **kw})
        return bool(xs)

    has_loss = plot(loss_ax, "epoch", "train_loss", "training loss", "C0")
    if has_loss and all(y > 0 for y in _series(rows, "epoch", "train_loss")[1]):
        loss_ax.set_yscale("log")
    loss_ax.set_title("training loss (CTC, mean per epoch)", fontsize=9)

    plot(acc_ax, "epoch", "val_accuracy", "word accuracy", "C2")
    plot(acc_ax, "epoch", "val_accuracy_nocase", "ignoring case", "C2", linestyle="--", alpha=0.6)
    acc_ax.set_ylim(-0.02, 1.02)
    acc_ax.set_ylabel("accuracy", fontsize=8)
    cer_ax = acc_ax.twinx()
    plot(cer_ax, "epoch", "val_cer", "CER", "C3")
    cer_ax.set_ylabel("character error rate", fontsize=8, color="C3")
    cer_top = max([1.0] + _series(rows, "epoch", "val_cer")[1]) * 1.02
    cer_ax.set_ylim(-0.02 * cer_top / 1.04, cer_top)  # 0 and 1 line up with the accuracy axis
    lines = acc_ax.get_lines() + cer_ax.get_lines()
    if lines:
        acc_ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="center right")
    acc_ax.set_title("validation", fontsize=9)

    if plot(lr_ax, "epoch", "lr", "learning rate", "C1"):
        lrs = _series(rows, "epoch", "lr")[1]
        if all(v > 0 for v in lrs) and max(lrs) / min(lrs) > 20:
            lr_ax.set_yscale("log")
    lr_ax.set_title("learning rate (at the end of the epoch)", fontsize=9)

    xs, ys = _series(rows, "elapsed_s", "val_accuracy")
    minutes = [x / 60 for x in xs]
    if xs:
        time_ax.plot(minutes, ys, color="C2", label="word accuracy", **style)
    time_ax.set_ylim(-0.02, 1.02)
    time_ax.set_xlabel("training time (minutes)", fontsize=8)
    time_ax.set_title("validation accuracy against time", fontsize=9)
    ips_x, ips = _series(rows, "elapsed_s", "images_per_s")
    if ips_x:
        rate_ax = time_ax.twinx()
        rate_ax.plot([x / 60 for x in ips_x], ips, color="C7", label="images/s", **{**style, "linewidth": 0.8})
        rate_ax.set_ylabel("images / s", fontsize=8, color="C7")
        rate_ax.set_ylim(bottom=0)
        rate_ax.tick_params(labelsize=7)

    for ax in (loss_ax, acc_ax, lr_ax):
        ax.set_xlabel("epoch", fontsize=8)
    for ax in (loss_ax, acc_ax, lr_ax, time_ax):
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    cer_ax.tick_params(labelsize=7)
    if not rows:
        fig.text(0.5, 0.5, "no epoch finished yet", ha="center", va="center", fontsize=16, color="0.4")
    fig.subplots_adjust(left=0.07, right=0.93, bottom=0.08, top=0.9 if title else 0.95, wspace=0.32, hspace=0.38)
    return fig


def plot_curves(metrics_csv: str | os.PathLike, out_png: str | os.PathLike) -> Path:
    """Draw ``out_png`` from ``metrics_csv``; the PNG is replaced atomically (a viewer never sees half a file)."""
    src, out = Path(metrics_csv), Path(out_png)
    rows = _read(src)
    n = len(rows)
    fig = curves_figure(rows, f"{src.parent.name or src.name}: {n} epoch{'s' if n != 1 else ''}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write(out, lambda f: f.write(buf.getvalue()))


__all__ = ["plot_curves", "curves_figure"]
