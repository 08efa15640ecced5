"""Siamese heads that score a pair of sequences from their cached backbone embeddings.

Two heads share one MLP (:class:`PairMLP`) on the symmetric pair features ``[a, b, |a-b|, a*b]``:

* :class:`ThesisHead` works on per-position embeddings::

      x1 (B, L1, D), m1 (B, L1) bool    x2 (B, L2, D), m2 (B, L2) bool
        -> conv1d over positions (D -> C channels, kernel k, "same" padding) -> activation
        -> masked mean over length (pads excluded)        a (B, C), b (B, C)
        -> [a, b, |a-b|, a*b] (B, 4C) -> fc1 -> fc2 -> ... -> fc_out   (B,)

  Pads are zeroed before the convolution, so a sequence gets the same vector whatever the
  length of the other sequences in its batch.
* :class:`PooledHead` works on pooled vectors ``p1 (B, D)``, ``p2 (B, D)`` -> ``(B,)``: the same
  MLP, no convolution; very fast.

Both return one raw value per pair, shape ``(B,)``: a logit for ``task="classification"``, a
standardised score for ``task="regression"``. :meth:`SiameseHead.to_output` turns raw values into
what users see: a probability, or a score in original units (the target mean and standard
deviation used for standardising are buffers of the module, so they travel in the weights file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from embedhead.errors import ConfigError

HEAD_KINDS = ("thesis", "pooled")
TASKS = ("classification", "regression")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


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
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {tuple(ACTIVATIONS)}, not {self.activation!r}"
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


class PairMLP(nn.Module):
    """``[a, b, |a-b|, a*b]`` (B, 4C) -> hidden layers with activation and dropout -> (B,)."""

    def __init__(self, in_features: int, config: HeadConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 4 * in_features
        for hidden in config.hidden_sizes:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[config.activation]()]
            layers.append(nn.Dropout(config.dropout))
            width = hidden
        self.hidden = nn.Sequential(*layers)
        self.fc_out = nn.Linear(width, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: (B, C) -> raw output (B,)."""
        features = torch.cat([a, b, (a - b).abs(), a * b], dim=-1)
        return self.fc_out(self.hidden(features)).squeeze(-1)


class SiameseHead(nn.Module):
    """Common part of both heads: the MLP and the output transform (see module docstring)."""

    config: HeadConfig
    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(self, config: HeadConfig, features: int) -> None:
        super().__init__()
        self.config = config
        self.mlp = PairMLP(features, config)
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    def set_target_scale(self, mean: float, std: float) -> None:
        """Regression: remember how targets were standardised (raw = (y - mean) / std)."""
        self.target_mean.fill_(mean)
        self.target_std.fill_(std)

    def to_output(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw (B,) -> probability (classification) or score in original units (regression)."""
        if self.config.task == "classification":
            return torch.sigmoid(raw)
        return raw * self.target_std + self.target_mean

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One side of the pair -> (B, C); implemented by each head."""
        raise NotImplementedError

    def forward(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor,
        m1: torch.Tensor | None = None,
        m2: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Both sides -> raw output (B,); masks (B, L) are needed by the thesis head only."""
        return self.mlp(self.encode(x1, m1), self.encode(x2, m2))


class ThesisHead(SiameseHead):
    """Per-position embeddings (B, L, D) + mask (B, L) -> conv1d -> masked mean -> MLP -> (B,)."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__(config, config.channels)
        self.conv = nn.Conv1d(config.d_model, config.channels, config.kernel_size)
        k = config.kernel_size
        self.same_padding = ((k - 1) // 2, k // 2)  # output length = input length
        self.act = ACTIVATIONS[config.activation]()

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, L, D), mask (B, L) bool (True = real position) -> (B, C).

        Pad positions may hold any finite values: they are zeroed before a wider convolution
        and get weight 0 in the mean. Kernel size 1 runs as one matmul over (B, L, D).
        """
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        keep = mask.to(x.dtype)  # (B, L)
        if self.config.kernel_size == 1:
            h = self.act(F.linear(x, self.conv.weight.squeeze(-1), self.conv.bias))  # (B, L, C)
        else:
            x = x * keep.unsqueeze(-1)  # pads zeroed: as if each sequence were alone
            inputs = F.pad(x.transpose(1, 2), self.same_padding)  # (B, D, L + k - 1)
            h = self.act(self.conv(inputs)).transpose(1, 2)  # (B, L, C)
        total = torch.bmm(keep.unsqueeze(1), h).squeeze(1)  # (B, C)
        return total / keep.sum(dim=1, keepdim=True).clamp(min=1.0)


class PooledHead(SiameseHead):
    """Pooled vectors (B, D) -> the same MLP -> (B,)."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__(config, config.d_model)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, D) -> (B, D) unchanged (the mask is ignored)."""
        return x


def build_head(config: HeadConfig) -> SiameseHead:
    """The head described by ``config`` (freshly initialised; seed torch first)."""
    return ThesisHead(config) if config.kind == "thesis" else PooledHead(config)
