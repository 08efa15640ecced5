"""Multi-process embedding under ``torchrun`` (one or many nodes).

Rank and world size come from the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``). Every rank plans the same batches and takes every ``world_size``-th one; it
writes them to its own shard ``STORE.parts/rank-K.zarr`` (no two processes ever write one chunk
or one HDF5 file). After a barrier, rank 0 merges the shards into the store
(:func:`embedhead.store.merge_parts`, a sequential copy) and removes them. The process group
uses gloo (barriers only; tensors never travel between ranks), so it works on CPU and GPU.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from embedhead.errors import ConfigError

BARRIER_TIMEOUT = _dt.timedelta(minutes=60)


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def device_for(self, device: str) -> str:
        """``auto``/``cuda`` -> this rank's GPU when CUDA is available; ``cpu`` stays."""

        if device == "cpu":
            return "cpu"
        if device == "auto" and not torch.cuda.is_available():
            return "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda asked for, but torch sees no CUDA device")
        if device in ("auto", "cuda"):
            return f"cuda:{self.local_rank % max(1, torch.cuda.device_count())}"
        raise ConfigError(f"--device must be cpu, cuda or auto, not {device!r}")

    def init(self) -> None:
        """Join the gloo process group (no-op for a single process or when already joined)."""

        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group(
                backend="gloo",
                rank=self.rank,
                world_size=self.world_size,
                timeout=BARRIER_TIMEOUT,
            )

    def barrier(self) -> None:

        if self.world_size > 1:
            dist.barrier()

    def shutdown(self) -> None:

        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def dist_context() -> DistContext:
    """Rank, world size and local rank from torchrun's environment (1 process without it)."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ConfigError(f"bad RANK/WORLD_SIZE/LOCAL_RANK environment: {exc}") from exc
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world}")
    return DistContext(rank=rank, world_size=world, local_rank=local)
