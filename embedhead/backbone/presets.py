"""Shapes of the public HyenaDNA checkpoints and randomly initialised checkpoints of them.

``init_backbone(preset, out_dir, seed)`` writes a folder in the public ``-hf`` layout
(``config.json`` + ``model.safetensors``, keys ``hyena.backbone...`` plus ``lm_head.weight``) with
RANDOM weights, for demos and tests without Hub access. Its ``config.json`` carries
``embedhead_random_init: true`` and ``embedhead_name: random-<preset>``, so the loaded identity
says random and nobody mistakes it for pretrained weights.

``write_random_checkpoint(out_dir, preset=..., seed=..., init=..., **overrides)`` builds custom
small ones (e.g. ``d_model=16, n_layer=2, d_inner=32, max_seq_len=512`` for fast tests);
``init="stress"`` draws every tensor at random (layer-norm gains, biases, position grids, decay
rates, frequencies) for numerical tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import save_file
from torch import nn

from embedhead.backbone.config import HyenaDNAConfig, validate_config
from embedhead.backbone.model import (
    ExponentialModulation,
    HyenaDNAModel,
    HyenaFilter,
    PositionalGrid,
    Sine,
    init_module,
)
from embedhead.errors import ConfigError
from embedhead.fileio import atomic_dir, write_json

#: Fields shared by every public checkpoint (spec table).
COMMON_FIELDS: dict[str, Any] = {
    "vocab_size": 12,
    "pad_vocab_size_multiple": 8,
    "emb_dim": 5,
    "filter_order": 64,
    "short_filter_order": 3,
    "num_inner_mlps": 2,
    "hyena_order": 2,
    "activation_freq": 10,
    "train_freq": True,
    "use_bias": True,
    "embed_dropout": 0.1,
    "hyena_dropout": 0.0,
    "hyena_filter_dropout": 0.0,
    "layer_norm_epsilon": 1e-5,
    "initializer_range": 0.02,
    "pad_token_id": 4,
    "tie_word_embeddings": False,
}


@dataclass(frozen=True)
class Preset:
    """One public checkpoint shape and its backbone parameter count (spec table)."""

    name: str
    hub_id: str
    d_model: int
    n_layer: int
    d_inner: int
    max_seq_len: int
    parameters: int

    def config_fields(self) -> dict[str, Any]:
        """Every config.json field of this shape."""
        return {
            **COMMON_FIELDS,
            "d_model": self.d_model,
            "n_layer": self.n_layer,
            "d_inner": self.d_inner,
            "max_seq_len": self.max_seq_len,
        }


def _preset(name: str, repo: str, d: int, n: int, i: int, lmax: int, params: int) -> Preset:
    return Preset(name, f"LongSafari/hyenadna-{repo}-hf", d, n, i, lmax, params)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset("tiny-1k", "tiny-1k-seqlen", 128, 2, 512, 1026, 436_096),
        _preset("tiny-1k-d256", "tiny-1k-seqlen-d256", 256, 2, 1024, 1026, 1_641_088),
        _preset("tiny-16k-d128", "tiny-16k-seqlen-d128", 128, 2, 512, 16386, 436_096),
        _preset("small-32k", "small-32k-seqlen", 256, 4, 1024, 32770, 3_277_568),
        _preset("medium-160k", "medium-160k-seqlen", 256, 8, 1024, 160002, 6_550_528),
        _preset("medium-450k", "medium-450k-seqlen", 256, 8, 1024, 450002, 6_550_528),
        _preset("large-1m", "large-1m-seqlen", 256, 8, 1024, 1000002, 6_550_528),
    )
}


def count_backbone_parameters(config: HyenaDNAConfig) -> int:
    """Analytic count of the backbone's parameters (buffers z, t, deltas and lm_head excluded)."""
    d, i, f, e = config.d_model, config.d_inner, config.filter_order, config.emb_dim
    per_layer = (
        4 * d  # norm1, norm2
        + 3 * d * d
        + 3 * d  # in_proj
        + 3 * d * config.short_filter_order
        + 3 * d  # short_filter
        + d * d
        + d  # out_proj
        + d  # filter bias
        + f * e
        + f  # implicit_filter.0
        + f  # shared sine frequency
        + 2 * (f * f + f)  # implicit_filter.2, .4
        + d * f  # implicit_filter.6 (no bias)
        + i * d
        + i
        + d * i
        + d  # mlp
    )
    return config.vocab_rows * d + config.n_layer * per_layer + 2 * d


def preset_config(preset: str, **overrides: Any) -> HyenaDNAConfig:
    """The config of a preset, with field overrides (ConfigError for unknown names)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    fields = PRESETS[preset].config_fields()
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        raise ConfigError(f"unknown config field(s) {', '.join(unknown)}")
    config = HyenaDNAConfig(**{**fields, **overrides})
    validate_config(config)
    return config


def _stress(module: nn.Module, gen: torch.Generator) -> None:
    """Every tensor of ``module`` (own tensors only) random, with structure-preserving ranges."""

    def randn(t: torch.Tensor, scale: float, shift: float = 0.0) -> None:
        t.copy_(torch.randn(t.shape, generator=gen) * scale + shift)

    def uniform(t: torch.Tensor, low: float, high: float) -> None:
        t.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)

    with torch.no_grad():
        if isinstance(module, nn.Linear):
            randn(module.weight, 1.0 / module.in_features**0.5)
            if module.bias is not None:
                randn(module.bias, 0.3)
        elif isinstance(module, nn.Embedding):
            randn(module.weight, 1.0)
        elif isinstance(module, nn.Conv1d):
            randn(module.weight, 0.6)
            if module.bias is not None:
                randn(module.bias, 0.3)
        elif isinstance(module, nn.LayerNorm):
            uniform(module.weight, 0.5, 1.5)
            randn(module.bias, 0.2)
        elif isinstance(module, Sine):
            uniform(module.freq, 0.5, 12.0)
        elif isinstance(module, PositionalGrid):
            uniform(module.z, -1.0, 1.0)
            uniform(module.t, 0.0, 1.0)
        elif isinstance(module, ExponentialModulation):
            randn(module.deltas, 3.0)
        elif isinstance(module, HyenaFilter):
            randn(module.bias, 1.0)


def random_state_dict(
    config: HyenaDNAConfig, *, seed: int = 0, init: Literal["standard", "stress"] = "standard"
) -> dict[str, torch.Tensor]:
    """Random canonical backbone tensors for ``config``, deterministic in ``seed``.

    ``standard``: the original initialisation (N(0, initializer_range) weights, unit layer norms,
    the original position grid and decay rates). ``stress``: everything random (tests).
    """
    if init not in ("standard", "stress"):
        raise ConfigError(f"init must be 'standard' or 'stress', got {init!r}")
    gen = torch.Generator().manual_seed(seed)
    model = HyenaDNAModel(config)
    for module in model.modules():
        if init == "standard":
            init_module(module, config, gen)
        else:
            _stress(module, gen)
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir}: exists and is not an empty folder; choose a new path")


def write_random_checkpoint(
    out_dir: str | Path,
    *,
    preset: str = "tiny-1k",
    seed: int = 0,
    init: Literal["standard", "stress"] = "standard",
    name: str | None = None,
    **overrides: Any,
) -> Path:
    """Write a random checkpoint (``-hf`` layout, ``hyena.`` keys + lm_head) to ``out_dir``.

    ``overrides`` replace config fields of the preset (``d_model=16, max_seq_len=512``...). The
    folder is written under a temporary name and renamed at the end. Returns ``out_dir``.
    """

    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    config = preset_config(preset, **overrides)
    label = name or (f"random-{preset}" if not overrides else f"random-{preset}-custom")
    state = random_state_dict(config, seed=seed, init=init)
    gen = torch.Generator().manual_seed(seed + 1)
    tensors = {f"hyena.{k}": v for k, v in state.items()}
    tensors["lm_head.weight"] = torch.randn(config.vocab_rows, config.d_model, generator=gen) * 0.02
    fields = {
        "model_type": "hyenadna",
        "architectures": ["HyenaDNAForCausalLM"],
        **config.arch_dict(),
        **{k: getattr(config, k) for k in COMMON_FIELDS if k not in config.arch_dict()},
        "embedhead_random_init": True,
        "embedhead_name": label,
        "embedhead_seed": seed,
        "embedhead_init": init,
    }
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / "config.json", fields, sort_keys=True)
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return out_dir


def init_backbone(preset: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Write a randomly initialised checkpoint of a public shape (see module docstring)."""
    return write_random_checkpoint(out_dir, preset=preset, seed=seed)
