"""Embedding store: per-position and pooled backbone embeddings, cached once, read many times.

``open_store(path)`` picks the backend by suffix (``.zarr`` folder, or ``.h5``/``.hdf5`` file)
and returns an :class:`~embedhead.store.base.EmbeddingStore` (reads give float32 arrays:
``get(id) -> (L, D)``, ``get_pooled(ids) -> (N, D)``). ``open_writer(path, attrs)`` creates or
reopens a store for appending after checking that it was built by the same backbone.
``merge_parts(path)`` folds the sidecar ``STORE.parts/`` shards (per-rank shards of a
distributed run, or the HDF5 journal) into the store. The on-disk layout: :mod:`.layout`.
"""

from embedhead.store.access import (
    backend_of,
    check_compatible,
    merge_parts,
    open_store,
    open_writer,
    part_paths,
    parts_dir,
)
from embedhead.store.base import EmbeddingStore, StoreChunk, StoreWriter

__all__ = [
    "EmbeddingStore",
    "StoreChunk",
    "StoreWriter",
    "backend_of",
    "check_compatible",
    "merge_parts",
    "open_store",
    "open_writer",
    "part_paths",
    "parts_dir",
]
