"""How to train a head: :class:`TrainConfig` (saved as ``config.json["train"]`` of a run).

Shared by :mod:`embedhead.heads.train` (which trains with it) and :mod:`embedhead.heads.run`
(which reads it back from a run folder), so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from embedhead.errors import ConfigError
from embedhead.heads.data import LOADERS
from embedhead.heads.models import HEAD_KINDS, TASKS

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train (saved as ``config.json["train"]`` of a run).

    ``patience`` 0 disables early stopping; ``train_size`` subsamples the training split (seeded);
    ``loader`` is 'auto' (memory when it fits), 'memory' or 'stream'; ``device`` is where
    :func:`train_head` loads the data ('auto': cuda when available), and :func:`fit` trains the
    head on the device its data were loaded to.
    """

    task: str = "classification"
    head: str = "thesis"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5
    seed: int = 0
    train_size: int | None = None
    device: str = "auto"
    loader: str = "auto"
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, not {self.task!r}")
        if self.head not in HEAD_KINDS:
            raise ConfigError(f"head must be one of {HEAD_KINDS}, not {self.head!r}")
        if self.loader not in LOADERS:
            raise ConfigError(f"loader must be one of {LOADERS}, not {self.loader!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda, not {self.device!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if not _is_int(self.patience) or self.patience < 0:
            raise ConfigError(f"patience must be an integer >= 0, not {self.patience!r}")
        if self.train_size is not None and (not _is_int(self.train_size) or self.train_size < 1):
            raise ConfigError(f"train_size must be a positive integer, not {self.train_size!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, not {self.seed!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"{name} must be a number, not {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, not {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0, not {self.weight_decay!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown train config field(s): {', '.join(unknown)}")
        return cls(**data)


def _is_int(value: Any) -> bool:
    """An int that is not a bool (JSON's true/false would pass ``isinstance(v, int)``)."""
    return isinstance(value, int) and not isinstance(value, bool)
