"""Options of the experiments stage (no torch, no numpy): baselines config, sweep defaults.

``embedhead baselines`` and ``embedhead sweep`` take their option defaults and ``Choice`` lists
from here; :class:`embedhead.experiments.sweep.SweepConfig` uses the same sweep defaults, and
``tests/test_cli_defaults.py`` checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from embedhead.errors import ConfigError
from embedhead.heads.config import TASKS

__all__ = [
    "DEFAULT_KS",
    "MODELS",
    "PRUNERS",
    "SAMPLERS",
    "SWEEP_BATCH_TRIALS",
    "SWEEP_PRUNER",
    "SWEEP_REPEATS",
    "SWEEP_SAMPLER",
    "SWEEP_SEED",
    "SWEEP_TRIALS",
    "SWEEP_WORKERS",
    "TASKS",
    "BaselineConfig",
]

SWEEP_TRIALS = 20
SWEEP_SEED = 0
SWEEP_REPEATS = 1
SWEEP_WORKERS = 0
"""Trials trained at once; 0: one per CPU core (at most 8)."""
SWEEP_BATCH_TRIALS = 1
"""Trials each process asks for at once; those of one head shape train in one pass over the data
(``embedhead.heads.batched``); 1: one trial at a time. Default 1: on CPU batching measured slower
in the default (thesis) space, where few trials share a shape (benchmarks/bench_sweep.py)."""
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
SWEEP_SAMPLER = "tpe"
SWEEP_PRUNER = "median"

MODELS = ("kmer", "gc", "length", "kmer_gc_length", "aligner")
DEFAULT_KS = (2, 3, 4, 5, 6)


@dataclass(frozen=True)
class BaselineConfig:
    """What to fit: models, k values, regularisation grids, task and seed."""

    models: tuple[str, ...] = MODELS
    ks: tuple[int, ...] = DEFAULT_KS
    c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    alpha_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    task: str = "classification"
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.models) - set(MODELS)
        if unknown or not self.models:
            raise ConfigError(
                f"unknown baseline model(s) {sorted(unknown)} (choose from {', '.join(MODELS)})"
            )
        if not self.ks or any(k < 1 or k > 12 for k in self.ks):
            raise ConfigError(f"k values must be between 1 and 12, not {list(self.ks)}")
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r} (choose from {', '.join(TASKS)})")
