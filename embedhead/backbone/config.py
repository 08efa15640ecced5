"""``HyenaDNAConfig``: the architecture fields of a HyenaDNA checkpoint (``config.json``).

The fields and their meaning follow the public ``LongSafari/hyenadna-*-seqlen-hf`` files. The
defaults here are those of the public tiny-1k checkpoint (every public size shares all fields but
``d_model``, ``n_layer``, ``d_inner`` and ``max_seq_len``); :func:`config_from_file` never relies on
them: every architecture field must be present in the file (the library defaults of the original
configuration class match no checkpoint).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from transformers import PretrainedConfig

from embedhead.errors import ConfigError, InputError

#: Fields that define the network (and its numbers); identities hash exactly these.
ARCH_FIELDS: tuple[str, ...] = (
    "vocab_size",
    "pad_vocab_size_multiple",
    "d_model",
    "n_layer",
    "d_inner",
    "max_seq_len",
    "emb_dim",
    "filter_order",
    "short_filter_order",
    "num_inner_mlps",
    "hyena_order",
    "activation_freq",
    "train_freq",
    "use_bias",
    "layer_norm_epsilon",
)

#: Fields the forward pass ignores (dropouts are off at inference) but that a file may carry.
OPTIONAL_FIELDS: tuple[str, ...] = (
    "embed_dropout",
    "hyena_dropout",
    "hyena_filter_dropout",
    "initializer_range",
    "pad_token_id",
    "tie_word_embeddings",
)


class HyenaDNAConfig(PretrainedConfig):  # type: ignore[misc]
    """Configuration of a HyenaDNA backbone (model_type ``hyenadna``).

    Extra keys of a ``config.json`` (``embedhead_random_init``, ``embedhead_name``, ``auto_map``)
    are kept as attributes and written back by ``save_pretrained``.
    """

    model_type = "hyenadna"

    vocab_size: int = 12
    pad_vocab_size_multiple: int = 8
    d_model: int = 128
    n_layer: int = 2
    d_inner: int = 512
    max_seq_len: int = 1026
    emb_dim: int = 5
    filter_order: int = 64
    short_filter_order: int = 3
    num_inner_mlps: int = 2
    hyena_order: int = 2
    activation_freq: float | int = 10
    train_freq: bool = True
    use_bias: bool = True
    embed_dropout: float | int = 0.1
    hyena_dropout: float | int = 0.0
    hyena_filter_dropout: float | int = 0.0
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    pad_token_id: int | None = 4
    tie_word_embeddings: bool = False

    @property
    def vocab_rows(self) -> int:
        """Rows of the embedding table: vocab_size rounded up to pad_vocab_size_multiple."""
        m = int(self.pad_vocab_size_multiple)
        return ((int(self.vocab_size) + m - 1) // m) * m

    def arch_dict(self) -> dict[str, Any]:
        """The architecture fields (``ARCH_FIELDS``) as plain JSON values."""
        out: dict[str, Any] = {}
        for name in ARCH_FIELDS:
            value = getattr(self, name)
            if name in _FLOAT_FIELDS:
                value = float(value)
            elif isinstance(value, bool) or name in ("train_freq", "use_bias"):
                value = bool(value)
            else:
                value = int(value)
            out[name] = value
        return out


_FLOAT_FIELDS = ("activation_freq", "layer_norm_epsilon")
_SUPPORTED = {"short_filter_order": 3, "num_inner_mlps": 2, "hyena_order": 2}


def validate_config(config: HyenaDNAConfig, source: str | Path | None = None) -> None:
    """Refuse configurations this implementation cannot run (ConfigError naming the field)."""
    where = f"{source}: " if source is not None else ""
    for name, value in _SUPPORTED.items():
        if getattr(config, name) != value:
            raise ConfigError(
                f"{where}{name}={getattr(config, name)!r} is not supported "
                f"(every public HyenaDNA checkpoint has {value})"
            )
    for name in ("train_freq", "use_bias"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"{where}{name} must be true or false, got {getattr(config, name)!r}")
    if not config.use_bias:
        raise ConfigError(f"{where}use_bias=false is not supported (public checkpoints use true)")
    for name in _FLOAT_FIELDS:
        value = getattr(config, name)
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ConfigError(f"{where}{name} must be a positive number, got {value!r}")
    for name in (
        "vocab_size",
        "pad_vocab_size_multiple",
        "d_model",
        "n_layer",
        "d_inner",
        "max_seq_len",
        "emb_dim",
        "filter_order",
    ):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where}{name} must be a positive integer, got {value!r}")
    if config.emb_dim < 3 or config.emb_dim % 2 == 0:
        raise ConfigError(f"{where}emb_dim must be odd and >= 3, got {config.emb_dim!r}")


def config_from_file(path: str | Path) -> HyenaDNAConfig:
    """Read a ``config.json``; every architecture field must be in the file.

    Raises InputError (unreadable file, missing field, wrong model_type) or ConfigError
    (unsupported values).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("config.json not found", path) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the configuration: {exc}", path) from exc
    if not isinstance(data, dict):
        raise InputError("config.json must hold a JSON object", path)
    if isinstance(data.get("layer"), dict) and "max_seq_len" not in data:
        data = translate_original_config(data, path)
    model_type = data.get("model_type", "hyenadna")
    if model_type != "hyenadna":
        raise InputError(f"model_type is {model_type!r}, expected 'hyenadna'", path)
    missing = [name for name in ARCH_FIELDS if name not in data]
    if missing:
        raise InputError(
            f"config.json lacks the field(s) {', '.join(missing)} (embedhead reads every "
            "architecture field from the file; the original library defaults match no checkpoint)",
            path,
        )
    data.pop("model_type", None)
    data.pop("auto_map", None)  # points at remote code that embedhead never runs
    check_generic_fields(data, path)
    try:
        config = HyenaDNAConfig(**data)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # transformers' own keys
        raise ConfigError(f"{path}: config.json is not a valid configuration ({exc})") from exc
    validate_config(config, path)
    return config


def _int_like(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and value.lstrip("-").isdigit()


def check_generic_fields(data: dict[str, Any], path: Path) -> None:
    """ConfigError naming the file and key for ill-typed keys that ``transformers`` reads
    itself (``id2label``, ``label2id``, ``num_labels``, ``torch_dtype`` / ``dtype``): the
    backbone ignores them, but a wrong type would crash the configuration class."""
    id2label = data.get("id2label")
    if id2label is not None and (
        not isinstance(id2label, dict)
        or not all(_int_like(k) and isinstance(v, str) for k, v in id2label.items())
    ):
        raise ConfigError(
            f"{path}: id2label must be an object of integer keys to label strings "
            f'(e.g. {{"0": "LABEL_0"}}), got {id2label!r}'
        )
    label2id = data.get("label2id")
    if label2id is not None and (
        not isinstance(label2id, dict) or not all(_int_like(v) for v in label2id.values())
    ):
        raise ConfigError(
            f"{path}: label2id must be an object of label strings to integers, got {label2id!r}"
        )
    num_labels = data.get("num_labels")
    if "num_labels" in data and (
        not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 1
    ):
        raise ConfigError(f"{path}: num_labels must be a positive integer, got {num_labels!r}")
    for key in ("torch_dtype", "dtype"):
        value = data.get(key)
        if value is None or value == "auto":
            continue
        dtype = getattr(torch, value, None) if isinstance(value, str) else None
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(
                f"{path}: {key} must name a floating-point torch dtype (float32, float16, "
                f"bfloat16, ...) or be null, got {value!r}"
            )


#: Fields the original (Lightning) ``config.json`` does not carry: constants of the original code.
ORIGINAL_CODE_CONSTANTS: dict[str, Any] = {
    "num_inner_mlps": 2,
    "train_freq": True,
    "use_bias": True,
    "layer_norm_epsilon": 1e-5,
}
#: ``layer.<key>`` of the original config.json -> ``-hf`` field (as released; see
#: shared/spec/hyenadna.md "Original config.json").
ORIGINAL_LAYER_FIELDS: dict[str, str] = {
    "l_max": "max_seq_len",
    "emb_dim": "emb_dim",
    "filter_order": "filter_order",
    "local_order": "short_filter_order",
    "w": "activation_freq",
}
#: Top-level keys of the original config.json read into the ``-hf`` fields of the same name.
ORIGINAL_TOP_FIELDS: tuple[str, ...] = (
    "d_model",
    "n_layer",
    "d_inner",
    "vocab_size",
    "pad_vocab_size_multiple",
)
#: Fields no public release sets to anything but this value (top level or under ``layer``): a
#: file that sets another value describes a different network and is refused by name.
ORIGINAL_FIXED_FIELDS: dict[str, Any] = {
    "layer_norm_epsilon": 1e-5,
    "num_inner_mlps": 2,
    "shift": 0.05,
    "hyena_order": 2,
    "order": 2,
    "modulate": True,
}
#: Keys that only affect training or kernels (accepted whatever their value).
ORIGINAL_TRAINING_FIELDS: frozenset[str] = frozenset(
    {"lr", "wd", "lr_pos_emb", "residual_in_fp32", "return_hidden_state", "use_bias", "_name_"}
)
_TRAINING_PREFIXES = ("fused_", "checkpoint_")


def _training_only(key: str) -> bool:
    return (
        key in ORIGINAL_TRAINING_FIELDS
        or key.startswith(_TRAINING_PREFIXES)
        or key.endswith("dropout")
    )


def _check_fixed(name: str, value: Any, path: Path) -> None:
    expected = ORIGINAL_FIXED_FIELDS[name.rsplit(".", 1)[-1]]
    same = (
        value is expected
        if isinstance(expected, bool)
        else (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isclose(value, expected, rel_tol=1e-9, abs_tol=0.0)
        )
    )
    if not same:
        raise ConfigError(
            f"{path}: {name}={value!r} is not supported (every public HyenaDNA release has "
            f"{json.dumps(expected)}; another value describes a different network)"
        )


def translate_original_config(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The nested config.json of the original ``weights.ckpt`` releases -> ``-hf`` fields.

    Original layout (as released): top-level d_model, n_layer, d_inner, vocab_size,
    pad_vocab_size_multiple and training-only keys, plus a ``layer`` dict (``_name_`` hyena,
    emb_dim, filter_order, local_order, l_max, modulate, w, lr, wd, lr_pos_emb). Fields it lacks
    are constants of the original code (``ORIGINAL_CODE_CONSTANTS``); the same fields, when a
    file carries them, must hold those constants (``ORIGINAL_FIXED_FIELDS``). Keys outside these
    sets are refused by name rather than ignored.
    """
    layer = data["layer"]
    if layer.get("_name_", "hyena") != "hyena":
        raise InputError(f"layer._name_ is {layer.get('_name_')!r}, expected 'hyena'", path)
    out: dict[str, Any] = {}
    for name in ORIGINAL_TOP_FIELDS:
        if name not in data:
            raise InputError(f"config.json (original layout) lacks the field {name}", path)
        out[name] = data[name]
    for old, new in ORIGINAL_LAYER_FIELDS.items():
        if old not in layer:
            raise InputError(f"config.json (original layout) lacks the field layer.{old}", path)
        out[new] = layer[old]
    unknown: list[str] = []
    for prefix, section, known in (
        ("", data, set(ORIGINAL_TOP_FIELDS) | {"layer", "model_type"}),
        ("layer.", layer, set(ORIGINAL_LAYER_FIELDS)),
    ):
        for key, value in section.items():
            if key in known or _training_only(key):
                continue
            if key in ORIGINAL_FIXED_FIELDS:
                _check_fixed(prefix + key, value, path)
                continue
            unknown.append(prefix + key)
    if unknown:
        raise ConfigError(
            f"{path}: config.json (original layout) has field(s) embedhead does not know: "
            f"{', '.join(unknown)} (they may describe another network; embedhead reads the "
            "field set of the public releases, see docs/backbone.md)"
        )
    out.update(ORIGINAL_CODE_CONSTANTS)
    out["hyena_order"] = 2
    out["embed_dropout"] = data.get("embed_dropout", 0.1)
    out["model_type"] = "hyenadna"
    return out
