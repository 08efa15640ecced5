"""Named hyperparameter presets for heads (no torch, no numpy).

A preset is a flat mapping of :class:`~embedhead.heads.train.TrainConfig` /
:class:`~embedhead.heads.models.HeadConfig` field overrides. It is applied *under* everything
else: defaults < preset < ``--config`` file < command-line flags. In a flat overrides mapping
the key ``"preset"`` names one (``{"preset": "thesis", "epochs": 20}``: the thesis preset with
20 epochs), so ``train --preset``, ``sweep --preset`` (base overrides) and an experiment spec's
``"config": {"preset": "thesis"}`` share one path (:func:`expand_preset`).

``thesis`` holds every hyperparameter the thesis states:

=================  ============================  =======================================
field              thesis                        embedhead default
=================  ============================  =======================================
head               conv1d head (``thesis``)      same
conv_channels      d_model (``None`` = d_model)  128
hidden_sizes       fc 256, 256                   128, 32
dropout            0.5                           0.5
loss               BCE (classification)          same (BCE with logits)
optimiser          Adam, no weight decay         Adam, weight decay 1e-4
lr                 not stated: Adam's 1e-3       1e-3
epochs             10                            30
batch_size         16                            32
patience / keep    no early stopping, last       5, best validation epoch
                   epoch's weights
split              70/15/15                      prepare's default, 70/15/15
=================  ============================  =======================================

The split is made by ``prepare`` (``--split-fractions``, default ``0.7,0.15,0.15``):
:data:`THESIS_SPLIT_FRACTIONS` lets ``train --preset thesis`` check a dataset against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from embedhead.errors import ConfigError

PRESET_KEY = "preset"
THESIS_SPLIT_FRACTIONS = (0.7, 0.15, 0.15)

PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "thesis": MappingProxyType(
            {
                "task": "classification",
                "head": "thesis",
                "conv_channels": None,
                "hidden_sizes": (256, 256),
                "dropout": 0.5,
                "lr": 1e-3,
                "weight_decay": 0.0,
                "epochs": 10,
                "batch_size": 16,
                "patience": 0,
                "keep": "last",
            }
        ),
    }
)
PRESET_NAMES = tuple(PRESETS)


def preset_overrides(name: str) -> dict[str, Any]:
    """The flat overrides of preset ``name``; ConfigError naming the known presets."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESET_NAMES)})")
    return dict(PRESETS[name])


def expand_preset(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``{"preset": name, **rest}`` -> the preset's overrides updated with ``rest``.

    Without a ``"preset"`` key (or with ``None``) the overrides come back unchanged (copied).
    """
    rest = {k: v for k, v in overrides.items() if k != PRESET_KEY}
    name = overrides.get(PRESET_KEY)
    if name is None:
        return rest
    if not isinstance(name, str):
        raise ConfigError(f"preset must be a name ({', '.join(PRESET_NAMES)}), not {name!r}")
    return preset_overrides(name) | rest


def thesis_dataset_differences(parameters: Mapping[str, Any]) -> list[str]:
    """How a dataset's ``prepare`` parameters (``dataset.json["parameters"]``) differ from the
    thesis's: split fractions other than 70/15/15, negatives other than ``adjacent``, length
    matching on. Empty when the dataset was prepared as the thesis did (as far as is stated).
    """
    out: list[str] = []
    fractions = parameters.get("split_fractions")
    if fractions is not None and any(
        abs(float(a) - b) > 1e-9 for a, b in zip(fractions, THESIS_SPLIT_FRACTIONS, strict=True)
    ):
        out.append(f"split fractions {list(fractions)} (thesis: 0.7, 0.15, 0.15)")
    negatives = parameters.get("negatives")
    if negatives is not None and negatives != "adjacent":
        out.append(f"negatives {negatives!r} (thesis: 'adjacent', the next pair in file order)")
    length_match = parameters.get("length_match")
    if length_match:
        out.append(f"length-matched negatives ({length_match}; the thesis did not match lengths)")
    return out
