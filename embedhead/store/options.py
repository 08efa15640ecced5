"""User-facing choices of the store format: storage dtypes and embedding codecs.

No numpy, no torch: the CLI reads these for its ``--dtype`` / ``--compression`` options and
:mod:`embedhead.store.layout` re-exports them for the format code.
"""

from __future__ import annotations

DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32")
DEFAULT_DTYPE = "float16"

COMPRESSIONS: tuple[str, ...] = ("zstd", "lz4", "none")
DEFAULT_COMPRESSION = "zstd"
"""Embedding-array codecs. Zarr: Blosc zstd level 3 / Blosc lz4 level 1 (both byte-shuffled) /
none. HDF5 (no zstd without plugins): gzip level 4 / lzf / none, each with the shuffle filter.
zstd is smallest; lz4 is several times faster to write (use it when a GPU outruns the writer)."""
