"""The HyenaDNA network in plain PyTorch (inference only, all dropouts off).

Shapes (B batch, L length <= max_seq_len, D d_model, I d_inner, F filter_order, E emb_dim):

- ``HyenaDNAModel.forward(input_ids: LongTensor (B, L)) -> Tensor (B, L, D)``: the final
  layer-normed hidden state (``last_hidden_state``), float32 unless the model was cast to float64.
- ``HyenaOperator``: (B, L, D) -> (B, L, D): in_proj (D -> 3D), causal depthwise conv of width 3,
  split x0, x1, v, long implicit filter k (L, D) applied to v * x1 by an FFT of size 2L (batched
  over channels), plus ``filter_fn.bias * (v * x1)``, then ``out_proj(y * x0)``.
- ``HyenaFilter.filter(L) -> (L, D)``: the first L rows of the stored position grid ``z`` through
  Linear(E, F), sin, Linear(F, F), sin, Linear(F, F), sin, Linear(F, D) (one shared frequency),
  times ``exp(-t * |deltas|) + 0.05``.

Module and parameter names reproduce the public checkpoint keys (``backbone.layers.{i}.mixer...``);
the shared sine module is stored once, under ``implicit_filter.1.freq``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel

from embedhead.backbone.checkpoint import weight_hash
from embedhead.backbone.config import HyenaDNAConfig
from embedhead.backbone.identity import BackboneIdentity
from embedhead.errors import InputError

MODULATION_SHIFT = 0.05


def position_grid(max_seq_len: int, emb_dim: int) -> tuple[Tensor, Tensor]:
    """The position grid of the original initialisation: z (1, Lmax, E) and t (1, Lmax, 1).

    Only used to initialise fresh models; checkpoints store (and we load) both buffers.
    """
    t = torch.linspace(0.0, 1.0, max_seq_len, dtype=torch.float64)[None, :, None]
    bands = (emb_dim - 1) // 2
    t_rescaled = torch.linspace(0.0, max_seq_len - 1, max_seq_len, dtype=torch.float64)
    w = 2 * math.pi * t_rescaled[None, :, None] / max_seq_len
    f = torch.linspace(1e-4, bands - 1, bands, dtype=torch.float64)[None, None]
    angle = f * w
    z = torch.cat([t, torch.cos(angle), -torch.sin(angle)], dim=-1)
    return z.float(), t.float()


def initial_deltas(d_model: int) -> Tensor:
    """Decay rates of the original initialisation, shape (1, 1, D)."""
    target, fast, slow = 1e-2, 0.3, 1.5
    max_decay = math.log(target) / fast
    min_decay = math.log(target) / slow
    return torch.linspace(min_decay, max_decay, d_model)[None, None]


def fft_causal_conv(s: Tensor, k: Tensor) -> Tensor:
    """Causal linear convolution y[..., c, t] = sum_{j<=t} k[c, j] s[..., c, t-j].

    s: (B, C, L), k: (C, L) -> (B, C, L). Exact (no wrap-around): FFT of size 2L, computed in at
    least float32 (FFTs have no half-precision kernels on every device).
    """
    length = s.shape[-1]
    work = torch.promote_types(s.dtype, torch.float32)
    n = 2 * length
    s_f = torch.fft.rfft(s.to(work), n=n)
    k_f = torch.fft.rfft(k.to(work), n=n)
    return torch.fft.irfft(s_f * k_f, n=n)[..., :length]


def causal_short_conv(p: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Causal depthwise convolution over time, zeros before the start.

    p: (B, C, L), weight: (C, 1, W), bias: (C,) -> (B, C, L) with
    q[c, t] = bias[c] + sum_i weight[c, 0, i] * p[c, t - (W - 1) + i]. Written as W shifted
    multiply-adds (the same sums as ``nn.Conv1d(padding=W-1)`` cropped to L; faster on CPU than
    the depthwise convolution kernel).
    """
    width = weight.shape[-1]
    length = p.shape[-1]
    w = weight[:, 0, :].to(p.dtype)
    q = p * w[:, width - 1 : width]
    if bias is not None:
        q = q + bias.to(p.dtype)[:, None]
    for lag in range(1, min(width, length)):
        q[..., lag:] += p[..., :-lag] * w[:, width - 1 - lag : width - lag]
    return q


class PositionalGrid(nn.Module):
    """Stored buffers ``z`` (1, Lmax, E) and ``t`` (1, Lmax, 1); ``prefix(L)`` slices rows."""

    z: Tensor
    t: Tensor

    def __init__(self, max_seq_len: int, emb_dim: int) -> None:
        super().__init__()
        z, t = position_grid(max_seq_len, emb_dim)
        self.register_buffer("z", z)
        self.register_buffer("t", t)

    def prefix(self, length: int) -> tuple[Tensor, Tensor]:
        """(z[:, :L], t[:, :L]); never rebuilt for L: the filter of a short input is a prefix."""
        return self.z[:, :length], self.t[:, :length]


class Sine(nn.Module):
    """sin(freq * x) with a learnt frequency per feature, ``freq`` (1, F)."""

    def __init__(self, order: int, w: float) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.full((1, order), float(w)))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.freq * x)


class ImplicitFilter(nn.Module):
    """The filter MLP, numbered like the original ``nn.Sequential`` (0, 1=sine, 2, 4, 6).

    The sine at positions 1, 3 and 5 is ONE module; it is registered once (as ``1``).
    (1, L, E) -> (1, L, D).
    """

    def __init__(self, emb_dim: int, order: int, d_model: int, w: float) -> None:
        super().__init__()
        self.add_module("0", nn.Linear(emb_dim, order))
        self.add_module("1", Sine(order, w))
        self.add_module("2", nn.Linear(order, order))
        self.add_module("4", nn.Linear(order, order))
        self.add_module("6", nn.Linear(order, d_model, bias=False))

    def forward(self, z: Tensor) -> Tensor:
        m = self._modules
        sine = m["1"]
        assert sine is not None
        h = sine(m["0"](z))  # type: ignore[misc]
        h = sine(m["2"](h))  # type: ignore[misc]
        h = sine(m["4"](h))  # type: ignore[misc]
        return m["6"](h)  # type: ignore[misc,no-any-return]


class ExponentialModulation(nn.Module):
    """k * (exp(-t * |deltas|) + 0.05); ``deltas`` is a stored buffer (1, 1, D)."""

    deltas: Tensor

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.register_buffer("deltas", initial_deltas(d_model))

    def forward(self, t: Tensor, k: Tensor) -> Tensor:
        decay = torch.exp(-t * self.deltas.abs())
        return k * (decay + MODULATION_SHIFT)


class HyenaFilter(nn.Module):
    """The long implicit filter of one layer plus its per-channel ``bias`` (D)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        d = config.d_model
        self.bias = nn.Parameter(torch.zeros(d))
        self.pos_emb = PositionalGrid(config.max_seq_len, config.emb_dim)
        self.implicit_filter = ImplicitFilter(
            config.emb_dim, config.filter_order, d, float(config.activation_freq)
        )
        self.modulation = ExponentialModulation(d)

    def filter(self, length: int) -> Tensor:
        """The filter for the first ``length`` positions, shape (L, D)."""
        z, t = self.pos_emb.prefix(length)
        k = self.implicit_filter(z)
        return self.modulation(t, k)[0]


class HyenaOperator(nn.Module):
    """Order-2 Hyena mixer: (B, L, D) -> (B, L, D)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        d = config.d_model
        width = config.short_filter_order
        self.d_model = d
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        self.short_filter = nn.Conv1d(3 * d, 3 * d, width, groups=3 * d, padding=width - 1)
        self.filter_fn = HyenaFilter(config)

    def forward(self, u: Tensor) -> Tensor:
        length = u.shape[1]
        p = self.in_proj(u).transpose(1, 2).contiguous()  # (B, 3D, L)
        q = causal_short_conv(p, self.short_filter.weight, self.short_filter.bias)
        x0, x1, v = q.split(self.d_model, dim=1)
        s = v * x1  # (B, D, L)
        k = self.filter_fn.filter(length).transpose(0, 1)  # (D, L)
        y = fft_causal_conv(s, k) + s * self.filter_fn.bias[:, None]
        y = y.to(x0.dtype) * x0
        return self.out_proj(y.transpose(1, 2))  # type: ignore[no-any-return]


class Mlp(nn.Module):
    """fc2(gelu_tanh(fc1(x))): (B, L, D) -> (B, L, D) through I hidden units."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, config.d_inner)
        self.fc2 = nn.Linear(config.d_inner, config.d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))  # type: ignore[no-any-return]


class Block(nn.Module):
    """Pre-norm block: r = x + mixer(norm1(x)); out = r + mlp(norm2(r))."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        eps = float(config.layer_norm_epsilon)
        self.norm1 = nn.LayerNorm(config.d_model, eps=eps)
        self.mixer = HyenaOperator(config)
        self.norm2 = nn.LayerNorm(config.d_model, eps=eps)
        self.mlp = Mlp(config)

    def forward(self, x: Tensor) -> Tensor:
        r = x + self.mixer(self.norm1(x))
        return r + self.mlp(self.norm2(r))  # type: ignore[no-any-return]


class Embeddings(nn.Module):
    """Token embeddings only (no positional embedding): (B, L) -> (B, L, D)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_rows, config.d_model)

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.word_embeddings(input_ids)  # type: ignore[no-any-return]


class HyenaBackbone(nn.Module):
    """Embeddings, ``n_layer`` blocks, final LayerNorm ``ln_f``: (B, L) -> (B, L, D)."""

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.d_model, eps=float(config.layer_norm_epsilon))

    def forward(self, input_ids: Tensor) -> Tensor:
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.ln_f(x)  # type: ignore[no-any-return]


def init_module(
    module: nn.Module, config: HyenaDNAConfig, generator: torch.Generator | None
) -> None:
    """Random initialisation of one module (its own tensors only, not its children's).

    Linear and embedding weights ~ N(0, initializer_range), biases 0, LayerNorms (1, 0), sine
    frequencies ``activation_freq``, position grid and decay rates as in the original.
    """
    std = float(config.initializer_range)
    with torch.no_grad():
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std, generator=generator)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std, generator=generator)
        elif isinstance(module, nn.Conv1d):
            bound = 1.0 / math.sqrt(module.kernel_size[0])
            module.weight.uniform_(-bound, bound, generator=generator)
            if module.bias is not None:
                module.bias.uniform_(-bound, bound, generator=generator)
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, Sine):
            module.freq.fill_(float(config.activation_freq))
        elif isinstance(module, PositionalGrid):
            z, t = position_grid(config.max_seq_len, config.emb_dim)
            module.z.copy_(z)
            module.t.copy_(t)
        elif isinstance(module, ExponentialModulation):
            module.deltas.copy_(initial_deltas(config.d_model))
        elif isinstance(module, HyenaFilter):
            module.bias.normal_(0.0, 1.0, generator=generator)


class HyenaDNAPreTrainedModel(PreTrainedModel):  # type: ignore[misc]
    """transformers glue: config class, checkpoint prefix (``hyena.``), weight init."""

    config_class = HyenaDNAConfig
    base_model_prefix = "hyena"
    main_input_name = "input_ids"
    _no_split_modules = ["Block"]  # noqa: RUF012

    def _init_weights(self, module: nn.Module) -> None:
        assert isinstance(self.config, HyenaDNAConfig)
        init_module(module, self.config, None)


class HyenaDNAModel(HyenaDNAPreTrainedModel):
    """The frozen backbone: ``model(input_ids (B, L)) -> Tensor (B, L, d_model)``.

    Inputs longer than ``config.max_seq_len`` or with ids outside the vocabulary raise
    InputError. ``autocast_dtype`` (set by ``load_backbone``) runs the network under CUDA
    autocast; the output is then returned as float32.
    """

    def __init__(self, config: HyenaDNAConfig) -> None:
        super().__init__(config)
        self.backbone = HyenaBackbone(config)
        self.autocast_dtype: torch.dtype | None = None
        self._identity: BackboneIdentity | None = None
        self.post_init()

    @property
    def identity(self) -> BackboneIdentity:
        """Name, architecture config, weight hash, random flag (computed unless set by loading)."""
        if self._identity is None:
            return BackboneIdentity(
                name=str(getattr(self.config, "embedhead_name", "") or "unnamed"),
                config=self.config.arch_dict(),
                weight_hash=weight_hash(self.state_dict()),
                random_init=bool(getattr(self.config, "embedhead_random_init", False)),
            )
        return self._identity

    @identity.setter
    def identity(self, value: BackboneIdentity) -> None:
        self._identity = value

    def check_input(self, input_ids: Tensor) -> None:
        """Raise InputError for a wrong shape, a length over max_seq_len or unknown ids."""
        if input_ids.dim() != 2:
            raise InputError(
                f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}"
            )
        if input_ids.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise InputError(f"input_ids must be integer token ids, got {input_ids.dtype}")
        length = input_ids.shape[1]
        if length > self.config.max_seq_len:
            raise InputError(
                f"input of length {length} exceeds max_seq_len={self.config.max_seq_len} of this "
                "backbone; split long sequences into chunks"
            )
        if input_ids.numel():
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.config.vocab_rows:
                bad = low if low < 0 else high
                raise InputError(
                    f"token id {bad} outside the vocabulary [0, {self.config.vocab_rows})"
                )

    def forward(self, input_ids: Tensor) -> Tensor:
        """Per-position embeddings (B, L, D) of token ids (B, L) (right padding is harmless)."""
        self.check_input(input_ids)
        weight = self.backbone.embeddings.word_embeddings.weight
        input_ids = input_ids.to(device=weight.device, dtype=torch.long)
        if input_ids.shape[1] == 0:
            return weight.new_zeros((input_ids.shape[0], 0, self.config.d_model))
        if self.autocast_dtype is None:
            return self.backbone(input_ids)  # type: ignore[no-any-return]
        with torch.autocast(device_type=weight.device.type, dtype=self.autocast_dtype):
            out = self.backbone(input_ids)
        return out.float()  # type: ignore[no-any-return]
