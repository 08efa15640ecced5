"""Head and training configs (no torch, no numpy): :class:`HeadConfig`, :class:`TrainConfig`.

Also the choice lists every layer shares: :data:`TASKS`, :data:`HEAD_KINDS`,
:data:`ACTIVATION_NAMES`, :data:`LOADERS`, the devices (from :mod:`embedhead.embed.config`) and
the evaluation :data:`SPLITS`. ``embedhead train``/``evaluate``/``predict``/``sweep`` take their
option defaults and ``Choice`` lists from here; ``tests/test_cli_defaults.py`` checks that they
agree. Models (:mod:`.models`) and training (:mod:`.train`) import these; nothing here needs torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from embedhead.dataset import SPLITS
from embedhead.embed.config import DEFAULT_DEVICE, DEVICES
from embedhead.errors import ConfigError

__all__ = [
    "ACTIVATION_NAMES",
    "DEFAULT_DEVICE",
    "DEVICES",
    "EVAL_SPLIT",
    "HEAD_KINDS",
    "KEEP_CHOICES",
    "LOADERS",
    "SPLITS",
    "TASKS",
    "THRESHOLD_RULES",
    "TRAIN_REPEATS",
    "HeadConfig",
    "TrainConfig",
]

HEAD_KINDS = ("thesis", "pooled")
TASKS = ("classification", "regression")
ACTIVATION_NAMES = ("relu", "gelu", "tanh")
"""Activations of the heads (the modules they name: ``embedhead.heads.models.ACTIVATIONS``)."""
TRAIN_REPEATS = 1
"""``train --repeats`` default: one run folder (more: a folder of seeds plus summary.json)."""
EVAL_SPLIT = "test"
"""The split ``evaluate`` scores unless told otherwise."""
KEEP_CHOICES = ("best", "last")
"""Which weights a run keeps: the best validation epoch's or the last epoch's (the thesis)."""
THRESHOLD_RULES = ("accuracy", "youden", "fixed")
"""How the classification threshold is chosen on validation (``heads.metrics.choose_threshold``)."""
LOADERS = ("auto", "memory", "stream")
"""How training holds embeddings: 'auto' (memory when it fits), 'memory' or 'stream'."""


def _is_int(value: Any) -> bool:
    """An int that is not a bool (JSON's true/false would pass ``isinstance(v, int)``)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class HeadConfig:
    """Everything needed to rebuild a head (saved as ``config.json["head"]`` of a run).

    ``hidden_sizes`` are the widths of fc1, fc2, ... (the number of hidden layers is its length);
    ``conv_channels`` and ``kernel_size`` only matter for the thesis head; ``conv_channels``
    ``None`` means ``d_model`` (the thesis: as many channels as the backbone has).
    """

    d_model: int
    kind: str = "thesis"
    task: str = "classification"
    conv_channels: int | None = 128
    kernel_size: int = 1
    activation: str = "relu"
    hidden_sizes: tuple[int, ...] = (128, 32)
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.hidden_sizes, list):  # JSON gives lists
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if not isinstance(self.hidden_sizes, tuple):
            raise ConfigError(
                f"hidden_sizes must be a list of positive integers, not {self.hidden_sizes!r}"
            )
        if self.kind not in HEAD_KINDS:
            raise ConfigError(f"head kind must be one of {HEAD_KINDS}, not {self.kind!r}")
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, not {self.task!r}")
        if self.activation not in ACTIVATION_NAMES:
            raise ConfigError(
                f"activation must be one of {ACTIVATION_NAMES}, not {self.activation!r}"
            )
        for name in ("d_model", "conv_channels", "kernel_size"):
            value = getattr(self, name)
            if name == "conv_channels" and value is None:
                continue
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if not self.hidden_sizes or any(not _is_int(h) or h < 1 for h in self.hidden_sizes):
            raise ConfigError(
                f"hidden_sizes must be one or more positive integers, not {self.hidden_sizes!r}"
            )
        if not isinstance(self.dropout, int | float) or isinstance(self.dropout, bool):
            raise ConfigError(f"dropout must be a number in [0, 1), not {self.dropout!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), not {self.dropout!r}")

    @property
    def channels(self) -> int:
        """The thesis head's convolution width: ``conv_channels``, or ``d_model`` when None."""
        return self.d_model if self.conv_channels is None else self.conv_channels

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``hidden_sizes`` as a list)."""
        out = asdict(self)
        out["hidden_sizes"] = list(self.hidden_sizes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown head config field(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """How to train (saved as ``config.json["train"]`` of a run).

    ``patience`` 0 disables early stopping; ``train_size`` subsamples the training split (seeded);
    ``loader`` is 'auto' (memory when it fits), 'memory' or 'stream'; ``device`` is where
    :func:`train_head` loads the data ('auto': cuda when available), and :func:`fit` trains the
    head on the device its data were loaded to. ``keep`` is which weights the run keeps: 'best'
    (lowest validation loss) or 'last' (the final epoch's, as the thesis did). ``threshold``
    is how classification's decision threshold is chosen on the validation split: 'accuracy'
    (maximise it), 'youden' (maximise TPR - FPR) or 'fixed' (0.5).
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
    keep: str = "best"
    threshold: str = "accuracy"

    def __post_init__(self) -> None:
        if self.keep not in KEEP_CHOICES:
            raise ConfigError(f"keep must be one of {KEEP_CHOICES}, not {self.keep!r}")
        if self.threshold not in THRESHOLD_RULES:
            raise ConfigError(f"threshold must be one of {THRESHOLD_RULES}, not {self.threshold!r}")
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, not {self.task!r}")
        if self.head not in HEAD_KINDS:
            raise ConfigError(f"head must be one of {HEAD_KINDS}, not {self.head!r}")
        if self.loader not in LOADERS:
            raise ConfigError(f"loader must be one of {LOADERS}, not {self.loader!r}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
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
