"""A control store: the same dataset embedded by a RANDOM backbone of a store's shape.

``random_backbone_store(store_attrs, dataset_dir, folder, seed=0)`` reads the architecture of
the backbone that wrote a store (``attrs["backbone"]["config"]``, every field of
:data:`embedhead.backbone.config.ARCH_FIELDS`), writes a randomly initialised checkpoint of
exactly that shape into ``folder/backbone/`` (standard initialisation, seed
``SEED_OFFSET + seed`` so it never repeats a ``backbone init --seed`` checkpoint; its identity
says ``random_init``) and embeds the dataset with it into ``folder/store.zarr`` with the
original store's options (dtype, compression, ``pooled_only``, ``max_length``). A head trained
on that store shows what the architecture alone (length, composition) gives, without
pretraining.

Cached: a second call with the same folder reuses the checkpoint (refused with a
:class:`~embedhead.errors.ConfigError` when its shape differs) and resumes/skips the embedding
(``embed`` never recomputes a stored sequence; another dataset given the same folder is
appended). The embedding time of every build is summed in ``folder/timing.json``
(``{"seconds", "nucleotides", "device"}``): the backbone's seconds per nucleotide on this
machine -- the same shape costs the same, random weights or not -- from which time per pair
*including* the embedding is estimated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from embedhead.backbone.config import ARCH_FIELDS
from embedhead.backbone.presets import write_random_checkpoint
from embedhead.embed.config import EmbedConfig
from embedhead.embed.run import embed_dataset
from embedhead.errors import ConfigError
from embedhead.fileio import write_json
from embedhead.store import open_store

TIMING_FILE = "timing.json"
SEED_OFFSET = 7919
"""Added to the caller's seed: a store made by ``backbone init --seed 0`` is not its own control."""
CHECKPOINT_DIR = "backbone"
STORE_NAME = "store.zarr"


@dataclass(frozen=True)
class RandomStore:
    """A built (or reused) random-backbone store and the backbone's measured speed."""

    store: Path
    checkpoint: Path
    seconds_per_nt: float | None
    """Embedding seconds per nucleotide over every build (None when unknown)."""
    device: str
    built: bool
    """True when this call embedded sequences (False: everything was cached)."""


def backbone_shape(attrs: Mapping[str, Any], where: str | Path) -> dict[str, Any]:
    """The architecture fields recorded in a store's attributes (ConfigError when absent)."""
    backbone = attrs.get("backbone")
    config = backbone.get("config") if isinstance(backbone, Mapping) else None
    missing = [f for f in ARCH_FIELDS if not isinstance(config, Mapping) or f not in config]
    if missing:
        raise ConfigError(
            f"{where}: the store does not record its backbone's architecture (missing "
            f"{', '.join(missing[:4])}); a random-backbone control needs a store written by "
            "`embedhead embed`"
        )
    assert isinstance(config, Mapping)
    return {f: config[f] for f in ARCH_FIELDS}


def _embed_config(attrs: Mapping[str, Any], device: str) -> EmbedConfig:
    base = EmbedConfig()
    return EmbedConfig(
        dtype=str(attrs.get("dtype", base.dtype)),
        compression=str(attrs.get("compression", base.compression)),
        pooled_only=bool(attrs.get("pooled_only", False)),
        max_length=attrs.get("max_length"),
        device=device,
        progress=False,
        command="random-backbone control",
    )


def _checkpoint(folder: Path, shape: Mapping[str, Any], seed: int) -> Path:
    path = folder / CHECKPOINT_DIR
    if (path / "config.json").is_file():
        recorded = json.loads((path / "config.json").read_text(encoding="utf-8"))
        differs = sorted(f for f in shape if recorded.get(f) != shape[f])
        if differs or recorded.get("embedhead_seed") != seed:
            raise ConfigError(
                f"{path}: a cached random backbone of another shape or seed (differs in "
                f"{', '.join(differs) or 'seed'}); remove the folder to rebuild it"
            )
        return path
    return write_random_checkpoint(
        path, preset="tiny-1k", seed=seed, name=f"random-d{shape['d_model']}", **shape
    )


def random_backbone_store(
    attrs: Mapping[str, Any],
    dataset_dir: str | Path,
    folder: str | Path,
    *,
    seed: int = 0,
    device: str = "auto",
    where: str | Path = "store",
) -> RandomStore:
    """Build (or reuse) the random-backbone store of ``dataset_dir`` (see module docstring)."""
    shape = backbone_shape(attrs, where)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = _checkpoint(folder, shape, SEED_OFFSET + seed)
    store = folder / STORE_NAME
    summary = embed_dataset(dataset_dir, store, checkpoint, _embed_config(attrs, device))
    with open_store(store) as written:
        same = written.identity.get("weight_hash") == attrs["backbone"].get("weight_hash")
    if same:
        raise ConfigError(
            f"{where}: the store was made by this very random backbone (identity "
            f"{attrs['backbone'].get('key')}); a random-backbone control would equal it"
        )
    stats = summary.stats
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    timing_path = folder / TIMING_FILE
    built = stats.n_embedded > 0
    if built and stats.nucleotides > 0:  # summed over the builds (another dataset appends)
        seconds, nucleotides = stats.seconds, stats.nucleotides
        if timing_path.is_file():
            before = json.loads(timing_path.read_text(encoding="utf-8"))
            seconds += float(before["seconds"])
            nucleotides += int(before["nucleotides"])
        write_json(timing_path, {"seconds": seconds, "nucleotides": nucleotides, "device": device})
    per_nt: float | None = None
    used = device
    if timing_path.is_file():
        timing = json.loads(timing_path.read_text(encoding="utf-8"))
        per_nt = float(timing["seconds"]) / max(int(timing["nucleotides"]), 1)
        used = str(timing.get("device", device))
    return RandomStore(store, checkpoint, per_nt, used, built)
