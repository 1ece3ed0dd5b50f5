"""Grow a trained CRNN into a wider one that starts out computing the same function (Net2WiderNet,
Chen, Goodfellow and Shlens, arXiv 1511.05641).

Why: a larger network trained from scratch on a CPU needs many hours to reach what the shipped model
already reads; widened from it, it starts there and spends its training on what the extra capacity can
add. Each new channel of a conv stage is a copy of an existing one (its filter, its BatchNorm
parameters and statistics), and whatever reads that stage (the next conv, or the RNN's input weights)
splits its weight for the copied channel evenly between the original and its copies, so every
activation after the copy is what it was. A little noise on the copies' filters lets them drift apart
in training (exact copies would get identical gradients forever); the function then differs from the
original only by that noise.

The RNN's hidden size grows the same way (``rnn_hidden``): each new unit of every layer and direction
copies an old unit's rows in each gate's input and recurrent weights and biases, and whatever reads the
units (the recurrent weights themselves, the next layer's input weights, the output layer) splits its
weight for a copied unit between the copies; an LSTM's cell state is copied with its unit, so every
hidden state stays what it was. The output layer keeps its rows (one per character) and only takes the
wider RNN's columns, so a caller that rebuilds the rows for another charset does so as for any fine-tune;
every other weight is passed on as it is.

>>> import torch
>>> from crnn.models.crnn import CRNN
>>> from crnn.models.presets import preset_blocks
>>> small = CRNN(preset_blocks("small"), 10, height=32).eval()
>>> wide = CRNN(preset_blocks("small", [32, 64, 128, 128, 256]), 10, height=32).eval()
>>> wide.load_state_dict(widen_state_dict(small.state_dict(), small.blocks, wide, noise=0.0))
<All keys matched successfully>
>>> x = torch.rand(2, 1, 32, 64)
>>> bool(torch.allclose(small(x), wide(x), atol=1e-4))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from crnn.models.geometry import Block


def _mapping(old: int, new: int, gen: torch.Generator) -> torch.Tensor:
    """Which old channel each of ``new`` channels copies: the first ``old`` are themselves, the rest are
    spread as evenly as possible over the old ones (a random order), so no channel is copied twice while
    another is not copied at all."""
    extra = new - old
    reps = torch.cat([torch.randperm(old, generator=gen) for _ in range(-(-extra // old))])[:extra] if extra else \
        torch.empty(0, dtype=torch.long)
    return torch.cat([torch.arange(old), reps])


def check_growable(old_blocks: Sequence[Block], new_blocks: Sequence[Block]) -> None:
    """Raise ``ValueError`` saying why ``old_blocks`` cannot grow into ``new_blocks`` (the one place these rules
    live: the fine-tune setup asks here before any data is read)."""
    if len(old_blocks) != len(new_blocks):
        raise ValueError(f"cannot widen a {len(old_blocks)}-stage CNN into a {len(new_blocks)}-stage one")
    for i, (a, b) in enumerate(zip(old_blocks, new_blocks)):
        if (a.pool, a.kernel, a.separable) != (b.pool, b.kernel, b.separable):
            raise ValueError(f"conv stage {i + 1} differs in more than its width; only widths can grow")
        if a.separable:
            raise ValueError("depthwise-separable stages (the mobile preset) cannot be widened")
        if b.out < a.out:
            raise ValueError(f"conv stage {i + 1} would shrink from {a.out} to {b.out} channels; widths can only grow")


def widen_state_dict(old: dict[str, torch.Tensor], old_blocks: Sequence[Block], new_model: nn.Module,
                     noise: float = 0.02, seed: int = 0) -> dict[str, torch.Tensor]:
    """The weights of ``new_model`` (a :class:`~crnn.models.crnn.CRNN` whose conv stages are at least as wide
    as ``old_blocks`` and whose RNN has at least as many hidden units, the same type and layers) grown from
    ``old``, the narrower model's state dict.

    ``noise``: the standard deviation of the noise added to the copied filters (and the copied RNN units' input
    weights), relative to the standard deviation of the weights they copy (0 = an exact copy of the function).
    """
    new_blocks: list[Block] = list(new_model.blocks)  # type: ignore[arg-type]
    check_growable(old_blocks, new_blocks)
    gen = torch.Generator().manual_seed(seed)
    out = {k: v.clone() for k, v in new_model.state_dict().items()}
    prev_map: torch.Tensor | None = None
    prev_count: torch.Tensor | None = None
    for i, (a, b) in enumerate(zip(old_blocks, new_blocks)):
        conv, bn = f"cnn.{i}.0.weight", f"cnn.{i}.1"
        w = old[conv]
        if prev_map is not None and prev_count is not None:  # split the inputs that the last stage copied
            w = w[:, prev_map] / prev_count[prev_map].view(1, -1, 1, 1)
        m = _mapping(a.out, b.out, gen)
        w = w[m].clone()
        if noise and b.out > a.out:
            w[a.out:] += torch.randn(w[a.out:].shape, generator=gen) * (noise * float(old[conv].std()))
        out[conv] = w
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{bn}.{name}"] = old[f"{bn}.{name}"][m].clone()
        out[f"{bn}.num_batches_tracked"] = old[f"{bn}.num_batches_tracked"].clone()
        prev_map, prev_count = m, torch.bincount(m, minlength=a.out).to(w.dtype)
    assert prev_map is not None and prev_count is not None
    rows = int(new_model.feature_dim) // new_blocks[-1].out  # type: ignore[arg-type]
    # The RNN reads each column's channels x rows flattened channel-major: feature c * rows + r.
    cols = (prev_map.view(-1, 1) * rows + torch.arange(rows).view(1, -1)).reshape(-1)
    scale = prev_count[prev_map].repeat_interleave(rows)
    old_hidden = rnn_hidden(old)
    new_hidden = rnn_hidden(out)
    check_rnn_growable(old_hidden, new_hidden)
    gates = old["rnn.weight_hh_l0"].shape[0] // old_hidden
    hm = _mapping(old_hidden, new_hidden, gen)
    hcount = torch.bincount(hm, minlength=old_hidden).to(scale.dtype)
    unit_rows = torch.cat([g * old_hidden + hm for g in range(gates)])  # each gate's block of rows
    both = torch.cat([hm, old_hidden + hm])  # a bidirectional layer's output: forward units, then backward
    both_scale = hcount[torch.cat([hm, hm])]
    copied = torch.cat([g * new_hidden + torch.arange(old_hidden, new_hidden) for g in range(gates)])  # new units
    for k, v in old.items():
        if k.startswith("cnn."):
            continue
        # the rest is the narrower model's as it is (the output layer may be rebuilt for another charset by
        # the caller), except where the wider conv stages or RNN are read or written
        if k.startswith("rnn."):
            v = v[unit_rows]  # indexing copies: ``old`` is never written
            if k.startswith("rnn.weight_ih_l0"):
                v = v[:, cols] / scale.view(1, -1)
            elif k.startswith("rnn.weight_ih"):
                v = v[:, both] / both_scale.view(1, -1)
            elif k.startswith("rnn.weight_hh"):
                v = v[:, hm] / hcount[hm].view(1, -1)
            if noise and new_hidden > old_hidden and k.startswith("rnn.weight_ih"):
                v[copied] += torch.randn(v[copied].shape, generator=gen) * (noise * float(old[k].std()))
            out[k] = v
        elif k == "fc.weight":
            out[k] = v[:, both] / both_scale.view(1, -1)
        else:
            out[k] = v.clone()
    return out


def rnn_hidden(weights: dict[str, torch.Tensor]) -> int:
    """The RNN hidden size of a CRNN state dict (its first recurrent weight is gates x hidden by hidden)."""
    return int(weights["rnn.weight_hh_l0"].shape[1])


def check_rnn_growable(old_hidden: int, new_hidden: int) -> None:
    """Raise ``ValueError`` when an RNN of ``old_hidden`` units cannot grow into ``new_hidden``."""
    if new_hidden < old_hidden:
        raise ValueError(f"the RNN would shrink from {old_hidden} to {new_hidden} hidden units; it can only grow")
