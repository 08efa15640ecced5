"""Embedding store: per-position and pooled backbone embeddings, cached once, read many times.

``open_store(path)`` picks the backend by suffix (``.zarr`` folder, or ``.h5``/``.hdf5`` file)
and returns an :class:`~embedhead.store.base.EmbeddingStore` (reads give float32 arrays:
``get(id) -> (L, D)``, ``get_pooled(ids) -> (N, D)``). ``open_writer(path, attrs)`` creates or
reopens a store for appending after checking that it was built by the same backbone.
``merge_parts(path)`` folds the sidecar ``STORE.parts/`` shards (per-rank shards of a
distributed run, or the HDF5 journal) into the store. The on-disk layout: :mod:`.layout`;
the user-facing choices (dtypes, codecs, no numpy): :mod:`.options`.

The names below are resolved on first use, so ``import embedhead.store.options`` (what the CLI
reads for its option defaults) costs neither numpy nor zarr nor h5py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embedhead.store.access import (
        backend_of,
        check_compatible,
        merge_parts,
        merge_store,
        open_store,
        open_writer,
        part_paths,
        parts_dir,
    )
    from embedhead.store.base import EmbeddingStore, StoreChunk, StoreWriter

_HOMES = {
    "EmbeddingStore": "embedhead.store.base",
    "StoreChunk": "embedhead.store.base",
    "StoreWriter": "embedhead.store.base",
    "backend_of": "embedhead.store.access",
    "check_compatible": "embedhead.store.access",
    "merge_parts": "embedhead.store.access",
    "merge_store": "embedhead.store.access",
    "open_store": "embedhead.store.access",
    "open_writer": "embedhead.store.access",
    "part_paths": "embedhead.store.access",
    "parts_dir": "embedhead.store.access",
}

__all__ = [
    "EmbeddingStore",
    "StoreChunk",
    "StoreWriter",
    "backend_of",
    "check_compatible",
    "merge_parts",
    "merge_store",
    "open_store",
    "open_writer",
    "part_paths",
    "parts_dir",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'embedhead.store' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
