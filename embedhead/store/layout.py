"""The one logical layout of an embedding store, shared by the Zarr and HDF5 backends.

Arrays (``N`` committed sequences, ``P`` committed positions, ``D`` = backbone ``d_model``)::

    positions  (P, D)  storage dtype   per-position embeddings of all sequences, concatenated
    pooled     (N, D)  storage dtype   masked mean over each sequence's positions
    ids        (N,)    utf-8 string    sequence id
    offsets    (N,)    int64           first row of the sequence in ``positions``
    lengths    (N,)    int64           number of rows (nucleotides embedded, pads never stored)
    hashes     (N,)    utf-8 string    content hash of each sequence (Zarr; "" unknown)
    chunk_crcs (C,)    uint32          crc32c trailer of each positions chunk (Zarr; 0 unknown)
    pooled_crcs (Cp, 2) uint32         crc32c trailers each pooled chunk may hold (Zarr; 0 none)
    chunk_checksums/NAME (C,) uint32   fletcher32 trailer of each chunk of NAME (HDF5)

Format 2 (see docs/store.md): every run plans its rows up front and gives each batch a region of
``positions`` that starts on a chunk boundary and spans whole chunks, so concurrent writers
(threads, torchrun ranks) never share a chunk; the tail of a region is padding, never indexed.
Offsets therefore increase in index order but need not be contiguous. A batch is committed by
one small object ``commits/<run>-<batch>.npz`` (ids, offsets, lengths, pooled rows, and the
crc32c of each chunk its rows lie in) written after its rows; a chunk holding committed rows is
rewritten only after an intent object ``commits/<run>-<n>.intent`` names its new crc32c. A
finished run folds the records (and intents) into the index arrays and ``chunk_crcs``. Readers
treat the folded index plus the pending records as the committed set.

Root attributes: ``format_version``, ``backbone`` (identity dict: name, config, weight_hash,
random_init), ``backbone_key``, ``tokenizer``, ``dtype`` (logical: float16|bfloat16|float32),
``storage_dtype`` (bfloat16 is stored as raw ``uint16`` bit patterns), ``d_model``,
``pooled_only``, ``max_length`` (truncation used, or None), ``precision`` (backbone compute
precision), ``compression`` (codec of the embedding arrays), ``command``, ``created``, and the
``n_sequences`` / ``n_positions``: the first ``n_sequences`` index entries are folded;
``n_positions`` is the end of the last folded sequence's rows. Format 1 (read, upgraded on
append) had contiguous offsets and a prefix marker.

Zarr keeps attributes as JSON; HDF5 keeps every root attribute as a JSON-encoded string.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from embedhead.store.options import COMPRESSIONS as COMPRESSIONS  # re-exported
from embedhead.store.options import DEFAULT_COMPRESSION as DEFAULT_COMPRESSION
from embedhead.store.options import DEFAULT_DTYPE as DEFAULT_DTYPE
from embedhead.store.options import DTYPES as DTYPES

FORMAT_VERSION = 2
READABLE_FORMATS: tuple[int, ...] = (1, 2)
"""Format 1 stores (contiguous rows, prefix marker) read unchanged; a writer upgrades them."""

POSITIONS = "positions"
POOLED = "pooled"
IDS = "ids"
OFFSETS = "offsets"
LENGTHS = "lengths"

HASHES = "hashes"
"""(N,) utf-8: 16 hex digits of the SHA-256 of each stored sequence ("" when unknown); stores
written before it existed lack the array (their content check is skipped)."""

CHUNK_CRCS = "chunk_crcs"
"""(ceil(P / chunk_rows),) uint32: the crc32c trailer each ``positions`` chunk was written with
(0 = unknown: no committed rows, or written where the crc is not known). Readers refuse a chunk
whose trailer differs (a valid chunk copied over another). Stores written before it existed
lack the array (their chunk identity check is skipped)."""

POOLED_CRCS = "pooled_crcs"
"""(ceil(N / chunk_rows), 2) uint32: for each ``pooled`` chunk, the crc32c trailer it holds
after the last fold and the one it held before (0 = none). A fold records a chunk's new trailer
(keeping the old one) before it replaces the chunk, so a reader accepts the chunk before and
after; any other trailer is a chunk copied over another. Stores written before it existed lack
the array (their pooled chunks are not identity-checked)."""

CHUNK_CHECKSUMS = "chunk_checksums"
"""HDF5 group: ``chunk_checksums/NAME`` (ceil(rows / chunk_rows),) uint32 holds, for each
fletcher32 dataset NAME (positions, pooled, offsets, lengths), the fletcher32 trailer (the last
4 bytes, little-endian) each stored chunk was written with. Readers refuse a chunk whose
trailer differs (a valid chunk copied over another). Files written before it existed lack the
group (their chunk identity check is skipped)."""

N_SEQUENCES = "n_sequences"
N_POSITIONS = "n_positions"
COMMITS = "commits"
"""Folder (object prefix) of per-batch commit records inside a Zarr store."""

STORAGE_DTYPES: dict[str, str] = {"float16": "float16", "bfloat16": "uint16", "float32": "float32"}

ZARR_SUFFIXES: tuple[str, ...] = (".zarr",)
HDF5_SUFFIXES: tuple[str, ...] = (".h5", ".hdf5")
PARTS_SUFFIX = ".parts"
"""Sidecar folder ``STORE.parts/``: per-rank shards / the HDF5 journal (merged, then removed)."""

TARGET_CHUNK_BYTES = 1 << 20
INDEX_CHUNK = 1 << 13


def content_hash(seq: str) -> str:
    """16 hex digits of the SHA-256 of a normalised (and truncated) sequence."""
    return hashlib.sha256(seq.encode("ascii")).hexdigest()[:16]


def align_up(rows: int, chunk: int) -> int:
    """``rows`` rounded up to a multiple of ``chunk``."""
    return -(-rows // chunk) * chunk


def storage_dtype(dtype: str) -> np.dtype[Any]:
    """Numpy dtype used on disk for a logical store dtype."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"unknown store dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    return np.dtype(STORAGE_DTYPES[dtype])


def rows_per_chunk(d_model: int, dtype: str) -> int:
    """Rows per chunk so that one chunk holds about 1 MiB (a power of two, 256..65536)."""
    row_bytes = max(1, d_model * storage_dtype(dtype).itemsize)
    rows = 1 << max(0, (TARGET_CHUNK_BYTES // row_bytes).bit_length() - 1)
    return int(min(65536, max(256, rows)))


def encode(values: np.ndarray, dtype: str) -> np.ndarray:
    """float32 array (..., D) -> on-disk array of the logical ``dtype`` (bfloat16: RNE bits)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if dtype == "bfloat16":
        bits = values.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        out = rounded.astype(np.uint16)
        nan = np.isnan(values)
        if nan.any():
            out[nan] = 0x7FC0
        return out
    return values.astype(storage_dtype(dtype))


def decode(raw: np.ndarray, dtype: str) -> np.ndarray:
    """On-disk array -> float32 (bfloat16 bits are shifted into the high half of a float32)."""
    if dtype == "bfloat16":
        return (np.asarray(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.asarray(raw).astype(np.float32, copy=False)


def attrs_to_hdf5(attrs: dict[str, Any]) -> dict[str, str]:
    """HDF5 keeps each root attribute as JSON text (nested dicts do not fit HDF5 attributes)."""
    return {key: json.dumps(value, sort_keys=True) for key, value in attrs.items()}


def attrs_from_hdf5(raw: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`attrs_to_hdf5`."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        text = value.decode() if isinstance(value, bytes) else str(value)
        out[key] = json.loads(text)
    return out
