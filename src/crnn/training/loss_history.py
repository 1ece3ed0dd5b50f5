"""Each real training sample's per-character CTC loss, summed over the steps that saw it, for ``crnn audit``
(``RUN/sample_losses.tsv``): wrong labels are learned last, so their mean stays high."""

from __future__ import annotations

from pathlib import Path

import torch

from crnn.data.dataset import TextLineDataset
from crnn.data.sample_losses import FILE_NAME, write_sample_losses
from crnn.training import distributed as dist_utils


class SampleLossHistory:
    """Running sums for the first ``len(real)`` indices of the training set (in a ``Mixed`` set the real
    samples come first, so a batch index below that is a real sample)."""

    def __init__(self, real: TextLineDataset | None):
        self.real = real
        self.n = len(real) if real is not None else 0
        self.sums = torch.zeros(self.n, dtype=torch.float64)
        self.counts = torch.zeros(self.n, dtype=torch.int64)
        self._synced = (self.sums.clone(), self.counts.clone())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"sum": self.sums.clone(), "count": self.counts.clone()}

    def load_state_dict(self, saved: dict[str, torch.Tensor] | None) -> None:
        """Restore a resumed run's sums (ignored when the data no longer has the same number of samples)."""
        if saved is not None and len(saved["sum"]) == self.n:
            self.sums, self.counts = saved["sum"].clone(), saved["count"].clone()
        self._synced = (self.sums.clone(), self.counts.clone())

    def add(self, indices: list[int], per_char: torch.Tensor) -> None:
        """Add one batch's per-character losses; ``indices`` are the batch's dataset indices."""
        if not self.n:
            return
        idx = torch.as_tensor(indices, dtype=torch.long)
        assert len(idx) == len(per_char), "the loader's batches differ from the sampler's"
        rows = idx < self.n
        if bool(rows.any()):
            vals = per_char.detach().to("cpu", torch.float64)
            self.sums.index_add_(0, idx[rows], vals[rows])
            self.counts.index_add_(0, idx[rows], torch.ones_like(idx[rows]))

    def sync(self, ctx: dist_utils.DistContext) -> None:
        """Under DDP, add every rank's steps since the last sync (each rank saw its share of each batch).
        A mid-epoch checkpoint holds the main rank's unsynced share only: a resumed DDP run loses the other
        ranks' part of that one epoch; a single-process run loses nothing."""
        if ctx.distributed and self.n:
            import torch.distributed as tdist

            comm = dist_utils.comm_device()
            d_sum = (self.sums - self._synced[0]).to(comm)
            d_count = (self.counts - self._synced[1]).to(comm)
            tdist.all_reduce(d_sum)
            tdist.all_reduce(d_count)
            self.sums, self.counts = self._synced[0] + d_sum.cpu(), self._synced[1] + d_count.cpu()
        self._synced = (self.sums.clone(), self.counts.clone())

    def write(self, run: Path) -> None:
        if self.n and self.real is not None:
            names = self.real.names if self.real.names is not None else [str(k) for k in range(self.n)]
            write_sample_losses(run / FILE_NAME, names, self.real.labels, self.sums.tolist(), self.counts.tolist())
