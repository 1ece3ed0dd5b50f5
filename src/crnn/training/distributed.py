"""Multi-process training with PyTorch's DistributedDataParallel, started by ``torchrun``.

``torchrun --nproc_per_node=N -m crnn train ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
:func:`context` then joins the process group (gloo on CPU, NCCL on CUDA). Each
rank trains on its own share of every epoch's batches; metrics are summed
across ranks; only rank 0 writes logs and checkpoints. Without those variables
everything here is a no-op, so single-process training runs the same code.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def device(self, name: str) -> torch.device:
        if name in ("auto", "cuda") and torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.distributed:
            return model
        dev = next(model.parameters()).device
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def context() -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend)
        atexit.register(_leave_group)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _leave_group() -> None:
    """Destroy the process group at exit. A process that leaves with the group still up (another rank stopped
    first, after a bug or bad input) can die in gloo's own threads as the peers' connections close ("terminate
    called without an active exception", exit status -6) after its one-line error was printed; torch also
    asks for this before exit."""
    if dist.is_initialized():
        dist.destroy_process_group()


def any_true(flag: bool, ctx: DistContext) -> bool:
    """True on every rank if it is true on any (so all ranks stop at the same step)."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
