"""Reading HyenaDNA weight files into the canonical (``-hf`` base model) key layout.

Canonical keys are those of ``HyenaDNAModel.state_dict()``: ``backbone.embeddings...``,
``backbone.layers.{i}.{norm1,mixer,norm2,mlp}...``, ``backbone.ln_f...`` (no ``hyena.`` prefix,
no ``lm_head``, the shared sine frequency once as ``implicit_filter.1.freq``).

Accepted files: ``model.safetensors``; pickled ``pytorch_model.bin`` / ``weights.ckpt`` read with
``torch.load(weights_only=True)`` (a pickle that needs arbitrary code is refused; inert
hyper-parameter containers of Lightning checkpoints, e.g. omegaconf configs, are replaced by
empty placeholders without importing or running their code). Key layouts: ``hyena.backbone...``
(causal LM), ``backbone...`` (base model), Lightning ``state_dict`` with ``model.backbone...``,
with or without the ``checkpoint_mixer`` ``.layer`` infix.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from embedhead.errors import InputError

LM_HEAD_KEY = "lm_head.weight"
_LAYER_INFIX = re.compile(r"^(backbone\.layers\.\d+\.(?:mixer|mlp))\.layer\.")
_SHARED_FREQ = re.compile(r"^(.*\.implicit_filter)\.(3|5)\.freq$")
#: Globals of Lightning hyper-parameters that are replaced by inert placeholders (never imported).
INERT_GLOBAL_PREFIXES: tuple[str, ...] = (
    "omegaconf.",
    "typing.",
    "pathlib.",
    "argparse.Namespace",
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
)
_PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth")


class _InertPlaceholder:
    """Stands for an object of a config library; accepts and drops everything it is given."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _InertPlaceholder:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


def _refusal(path: Path, needed: list[str]) -> InputError:
    listed = ", ".join(needed)
    return InputError(
        f"refusing to load: unpickling this file would need arbitrary code ({listed}). embedhead "
        "reads pickles only with torch.load(weights_only=True); convert the weights to "
        "safetensors with a tool you trust",
        path,
    )


def load_pickle_safely(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` with clear errors; never runs code from the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_error: Exception = exc
    except Exception as exc:  # corrupt or truncated files raise many kinds of errors
        raise InputError(f"cannot read the weights: {type(exc).__name__}: {exc}", path) from exc
    try:
        needed = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # legacy (non-zip) pickles cannot be inspected
        needed = []
    if not needed:
        reason = str(first_error).strip().splitlines()[0] if str(first_error).strip() else ""
        raise InputError(
            f"cannot be read safely with torch.load(weights_only=True) (not a plain tensor "
            f"pickle, or it needs arbitrary code): {reason}",
            path,
        ) from first_error
    if not all(name.startswith(INERT_GLOBAL_PREFIXES) for name in needed):
        raise _refusal(path, needed) from first_error
    stubs: list[Any] = [(_InertPlaceholder, name) for name in needed]
    try:
        with torch.serialization.safe_globals(stubs):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refusal(path, needed) from exc
    except (OSError, RuntimeError, EOFError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read the weights: {exc}", path) from exc


def read_raw_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a weight file, keys as stored (Lightning: the ``state_dict`` entry)."""
    if path.suffix == ".safetensors":
        try:
            return dict(load_file(str(path), device="cpu"))
        except (SafetensorError, OSError) as exc:
            raise InputError(f"cannot read safetensors weights: {exc}", path) from exc
    if path.suffix not in _PICKLE_SUFFIXES:
        raise InputError(
            "unknown weight file type (expected .safetensors, .bin, .ckpt, .pt or .pth)", path
        )
    obj = load_pickle_safely(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"expected a dict of tensors, found {type(obj).__name__}", path)
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise InputError(f"entries that are not named tensors: {', '.join(bad[:5])}", path)
    return dict(obj)


def canonical_state_dict(raw: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """Map any accepted key layout to canonical keys; drop ``lm_head`` and duplicate freqs.

    Lightning entries outside ``model.`` (task encoders/decoders of the training wrapper) are
    dropped. Duplicated sine frequencies (``.3.freq``, ``.5.freq``) must equal ``.1.freq``.
    """
    lightning = any(key.startswith("model.") for key in raw)
    out: dict[str, Tensor] = {}
    duplicates: dict[str, Tensor] = {}
    for key, tensor in raw.items():
        name = key
        if lightning:
            if not name.startswith("model."):
                continue
            name = name[len("model.") :]
        if name.startswith("hyena."):
            name = name[len("hyena.") :]
        if name == LM_HEAD_KEY:
            continue
        name = _LAYER_INFIX.sub(r"\1.", name)
        if _SHARED_FREQ.match(name):
            duplicates[name] = tensor
            continue
        if name in out:
            raise InputError(f"two tensors map to the key {name!r} (one is {key!r})", path)
        out[name] = tensor
    for name, tensor in duplicates.items():
        match = _SHARED_FREQ.match(name)
        assert match is not None
        main = f"{match.group(1)}.1.freq"
        if main not in out:
            out[main] = tensor
        elif out[main].shape != tensor.shape or not torch.equal(out[main], tensor):
            raise InputError(
                f"{name} differs from {main}: the sine frequency is one shared module", path
            )
    return out


def check_state_dict(
    state: dict[str, Tensor], expected: dict[str, torch.Size], path: Path
) -> dict[str, Tensor]:
    """Missing/unknown keys, shape mismatches, non-float tensors and NaN/inf values are
    InputErrors naming the tensor.

    Returns the tensors as contiguous float32 in the order of ``expected``.
    """
    missing = [k for k in expected if k not in state]
    unknown = [k for k in state if k not in expected]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:6])}" + (" ..." * (len(missing) > 6)))
        if unknown:
            parts.append(f"unknown keys: {', '.join(unknown[:6])}" + (" ..." * (len(unknown) > 6)))
        raise InputError(
            "weights do not match config.json (" + "; ".join(parts) + f"; {len(missing)} missing,"
            f" {len(unknown)} unknown)",
            path,
        )
    out: dict[str, Tensor] = {}
    for key, shape in expected.items():
        tensor = state[key]
        if tuple(tensor.shape) != tuple(shape):
            raise InputError(
                f"shape mismatch for {key}: file has {list(tensor.shape)}, config.json implies "
                f"{list(shape)}",
                path,
            )
        if not tensor.is_floating_point():
            raise InputError(f"{key} holds {tensor.dtype}, expected floating point", path)
        value = tensor.to(torch.float32).contiguous()
        finite = torch.isfinite(value)
        if not bool(finite.all()):
            nan = int(torch.isnan(value).sum())
            raise InputError(
                f"{key} holds {nan} NaN and {int((~finite).sum()) - nan} infinite value(s): "
                "damaged weights (they would give NaN embeddings)",
                path,
            )
        out[key] = value
    return out


def weight_hash(state: dict[str, Tensor]) -> str:
    """SHA-256 over the sorted names, shapes and little-endian float32 bytes of the tensors.

    Independent of the file format: the same weights in .bin, .safetensors or .ckpt hash alike.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(repr(tuple(tensor.shape)).encode("ascii") + b"\0")
        digest.update(np.ascontiguousarray(tensor.numpy(), dtype="<f4").tobytes())
    return digest.hexdigest()
