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

import torch
import torch.nn.functional as F
from torch import nn

from embedhead.heads.config import ACTIVATION_NAMES, HeadConfig
from embedhead.heads.config import HEAD_KINDS as HEAD_KINDS
from embedhead.heads.config import TASKS as TASKS

ACTIVATIONS: dict[str, type[nn.Module]] = dict(
    zip(ACTIVATION_NAMES, (nn.ReLU, nn.GELU, nn.Tanh), strict=True)
)


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
