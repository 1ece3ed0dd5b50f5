"""How many CPU threads torch trains with: ``train.threads``, or the faster of the current count and one,
measured on a real batch (on a busy machine one thread can beat two several times over)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from crnn.data.dataset import Batch
from crnn.devices import amp_dtype
from crnn.training.distributed import DistContext
from crnn.training.progress import fastest_threads


def choose_threads(setting: int, model: torch.nn.Module, first_batch: Callable[[], Batch], device: torch.device,
                   ctx: DistContext, say: Callable[[str], None], amp: bool = False) -> None:
    """Set torch's CPU threads and say what was chosen. The measurement runs forward and backward in eval
    mode and drops the gradients, so the run's state (weights, RNG, BN statistics) is untouched; in the
    precision the run trains in (``amp``: bf16 kernels divide their work between threads differently)."""
    if device.type != "cpu":
        return
    if setting > 0:
        torch.set_num_threads(setting)
        say(f"torch threads: {setting} (train.threads)")
        return
    now = torch.get_num_threads()
    if now <= 1 or ctx.distributed:
        say(f"torch threads: {now}")
        return
    batch = first_batch()

    def step() -> None:
        with torch.autocast(device.type, dtype=amp_dtype(device), enabled=amp):
            out = model(batch.images, batch.widths, batch.targets, batch.target_lengths)
        out.loss.mean().backward()

    was_training = model.training
    model.eval()
    try:
        best, timings = fastest_threads(step, [now, 1])
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    said = ", ".join(f"{timings[n]:.3f} s with {n}" for n in sorted(timings))
    say(f"torch threads: {best} (a training step took {said} on this machine as it is now; train.threads sets it)")
