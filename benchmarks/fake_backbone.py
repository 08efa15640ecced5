"""A stand-in backbone for store and overlap benchmarks: rows at a chosen rate, no model.

``FakeBackbone(d_model, rate_nt_s)`` looks like a loaded backbone to ``embed`` (``config``,
``identity``, ``__call__(ids (B, L)) -> (B, L, D) float32``): it returns slices of one
precomputed random tensor and, when ``rate_nt_s`` is set, sleeps so it produces
``B * L`` rows per ``B * L / rate_nt_s`` seconds (a GPU's pace, without a GPU). The sleep
releases the GIL like a CUDA kernel wait, so the writer threads run meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class _Config:
    d_model: int
    max_seq_len: int


@dataclass(frozen=True)
class _Identity:
    name: str
    key: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": {}, "weight_hash": self.key, "random_init": True}


class FakeBackbone:
    """Precomputed float32 rows at ``rate_nt_s`` nucleotides per second (None: as fast as
    slicing allows, i.e. the writer alone)."""

    def __init__(self, d_model: int, rate_nt_s: float | None = None, max_len: int = 1 << 15):
        self.config = _Config(d_model=d_model, max_seq_len=max_len)
        self.identity = _Identity(name=f"fake-d{d_model}", key=f"fake-{d_model}")
        self.rate = rate_nt_s
        self._bank = torch.randn(1 << 16, d_model, generator=torch.Generator().manual_seed(0))
        self.seconds = 0.0  # time spent "computing" (sleeping), for the backbone-alone figure

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        b, length = ids.shape
        start = time.perf_counter()
        rows = self._bank[: b * length] if b * length <= self._bank.shape[0] else None
        out = (
            rows
            if rows is not None
            else self._bank.repeat(-(-b * length // 65536), 1)[: b * length]
        ).view(b, length, -1)
        if self.rate:
            time.sleep(max(0.0, b * length / self.rate - (time.perf_counter() - start)))
        self.seconds += time.perf_counter() - start
        return out
