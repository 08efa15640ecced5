"""Light Siamese heads trained on cached embeddings (``train``, ``evaluate``, ``predict``).

Modules: :mod:`~embedhead.heads.models` (heads and ``HeadConfig``), :mod:`~embedhead.heads.data`
(split + store -> batches), :mod:`~embedhead.heads.metrics`, :mod:`~embedhead.heads.train`
(``TrainConfig``, ``fit``, ``train_head``), :mod:`~embedhead.heads.run` (run folders),
:mod:`~embedhead.heads.evaluate` and :mod:`~embedhead.heads.predict`.
Nothing here imports the backbone: embeddings come from the store (``predict`` embeds missing
sequences through :mod:`embedhead.embed.run`).
"""

from __future__ import annotations

from embedhead.heads.data import HeadData, load_head_data
from embedhead.heads.models import HeadConfig, PooledHead, ThesisHead, build_head
from embedhead.heads.train import (
    FitResult,
    TrainConfig,
    TrainResult,
    fit,
    load_config_overrides,
    train_head,
    train_repeats,
)

__all__ = [
    "FitResult",
    "HeadConfig",
    "HeadData",
    "PooledHead",
    "ThesisHead",
    "TrainConfig",
    "TrainResult",
    "build_head",
    "fit",
    "load_config_overrides",
    "load_head_data",
    "train_head",
    "train_repeats",
]
