"""``load_backbone``: a local checkpoint folder, a ``weights.ckpt`` or a Hub id -> frozen model.

Sources:
- a folder with ``config.json`` and ``model.safetensors`` (preferred), ``pytorch_model.bin`` or
  ``weights.ckpt``;
- a weight file (``.safetensors``/``.bin``/``.ckpt``/``.pt``) with ``config.json`` beside it;
- a Hub id (``LongSafari/hyenadna-small-32k-seqlen-hf``), resolved with
  ``huggingface_hub.snapshot_download`` from the local cache or, when online, the Hub
  (``HF_HUB_OFFLINE=1`` is respected). No code from the checkpoint is ever run.

The returned ``HyenaDNAModel`` is in eval mode, every tensor has ``requires_grad=False``, and
``model.identity`` is a :class:`BackboneIdentity`. ``model(ids (B, L)) -> (B, L, d_model)``.

Precision: ``dtype="float32"`` (default) computes in float32 on any device. ``"bfloat16"`` and
``"float16"`` keep float32 weights and run under CUDA autocast (FFTs stay float32); they are
refused on CPU with a ConfigError. The output is float32 in every case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import snapshot_download

from embedhead.backbone.checkpoint import (
    canonical_state_dict,
    check_state_dict,
    read_raw_state_dict,
    weight_hash,
)
from embedhead.backbone.config import HyenaDNAConfig, config_from_file
from embedhead.backbone.identity import BackboneIdentity
from embedhead.backbone.model import HyenaDNAModel
from embedhead.errors import ConfigError, InputError

WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin", "weights.ckpt")
DTYPES: dict[str, torch.dtype | None] = {
    "float32": None,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class LocatedCheckpoint:
    """Where a checkpoint's files are and what to call it."""

    config_path: Path
    weights_path: Path
    name: str


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> cuda when available else cpu; anything else as torch understands it."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``dtype`` (None = plain float32); half precision needs CUDA."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    autocast = DTYPES[dtype]
    if autocast is not None and device.type != "cuda":
        raise ConfigError(
            f"dtype={dtype} runs as CUDA autocast and needs a CUDA device (got {device}); "
            "use dtype=float32 on CPU"
        )
    return autocast


def _weights_in(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"no weights found (expected one of {', '.join(WEIGHT_FILES)})", folder)


def _from_hub(repo_id: str) -> Path:
    last_error: Exception | None = None
    for weights in ("model.safetensors", "pytorch_model.bin"):
        try:
            folder = Path(snapshot_download(repo_id, allow_patterns=["config.json", weights]))
        except Exception as exc:  # offline, not cached, no such repo, network error
            last_error = exc
            continue
        if (folder / "config.json").is_file() and (folder / weights).is_file():
            return folder
    raise ConfigError(
        f"cannot resolve the Hub id {repo_id!r}: not in the local Hugging Face cache and the Hub "
        f"is unreachable or offline (HF_HUB_OFFLINE) ({type(last_error).__name__}: {last_error}). "
        "Download it once online, or pass a local checkpoint folder"
    )


def locate_checkpoint(source: str | Path) -> LocatedCheckpoint:
    """Find config.json and the weight file of ``source`` (folder, weight file or Hub id)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return LocatedCheckpoint(path / "config.json", _weights_in(path), path.resolve().name)
    if path.is_file():
        folder = path.parent
        return LocatedCheckpoint(folder / "config.json", path, folder.resolve().name)
    text = str(source)
    if _HUB_ID.match(text) and not text.startswith((".", "~")):
        folder = _from_hub(text)
        return LocatedCheckpoint(folder / "config.json", _weights_in(folder), text)
    raise InputError("no such checkpoint folder or file (and not a Hub id owner/name)", path)


def expected_shapes(config: HyenaDNAConfig) -> dict[str, torch.Size]:
    """Canonical key -> shape for ``config`` (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        skeleton = HyenaDNAModel(config)
    return {key: tensor.shape for key, tensor in skeleton.state_dict().items()}


def build_model(config: HyenaDNAConfig, state: dict[str, torch.Tensor]) -> HyenaDNAModel:
    """A model holding exactly ``state`` (checked canonical float32 tensors), on CPU."""
    with torch.device("meta"):
        model = HyenaDNAModel(config)
    model.load_state_dict(state, strict=True, assign=True)
    return model


def load_backbone(
    source: str | Path, *, device: str | torch.device = "cpu", dtype: str = "float32"
) -> HyenaDNAModel:
    """Load a frozen HyenaDNA backbone; see the module docstring for sources and precision."""
    torch_device = resolve_device(device)
    autocast = resolve_dtype(dtype, torch_device)
    located = locate_checkpoint(source)
    config = config_from_file(located.config_path)
    raw = read_raw_state_dict(located.weights_path)
    canonical = canonical_state_dict(raw, located.weights_path)
    state = check_state_dict(canonical, expected_shapes(config), located.weights_path)
    model = build_model(config, state)
    random_init = bool(getattr(config, "embedhead_random_init", False))
    name = str(getattr(config, "embedhead_name", "") or located.name)
    model.identity = BackboneIdentity(
        name=name,
        config=config.arch_dict(),
        weight_hash=weight_hash(state),
        random_init=random_init,
    )
    model.requires_grad_(False)
    model.eval()
    model.to(torch_device)  # type: ignore[arg-type]
    model.autocast_dtype = autocast
    return model
