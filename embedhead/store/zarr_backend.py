"""Zarr v3 backend: a ``.zarr`` folder holding the layout of :mod:`embedhead.store.layout`.

Writing (format 2): a run reserves a region of ``positions`` per batch (chunk-aligned, whole
chunks), writes it with whole-chunk writes (no read-modify-write, no fill-value scan; local
chunk files are encoded by :class:`_ChunkFiles` and written in place), then commits the batch
with one small object ``commits/<run>-<batch>.npz`` holding its ids, offsets, lengths and
pooled rows. Rows (R, D) in the storage dtype -> one file per chunk (chunk_rows, D). A killed
process leaves each batch either committed (record present, rows complete) or absent; records
are never overwritten, so any order of commits from any number of threads or torchrun ranks is
safe. The finishing writer folds the records into the index arrays (sorted by offset) and
removes them. Readers see folded + pending records. Each record also names the crc32c trailer
of every ``positions`` chunk its rows lie in (an intent object ``commits/<run>-<n>.intent``
names the new trailer of a chunk about to be rewritten); fold keeps one per chunk in
``chunk_crcs``, and local readers refuse a chunk whose trailer is not one written there (a valid
chunk copied over another). One folding writer per store (an advisory
lock on local folders); torchrun ranks write regions and records of their own batches into the
same store, rank 0 folds.

Reading also works from object storage: a path that is an fsspec URL (``s3://bucket/x.zarr``,
``gs://...``, ``memory://...``) opens through zarr's fsspec store (:func:`is_url`,
:func:`storage_options`; s3 credentials come from the usual ``AWS_*`` environment variables,
the endpoint from ``AWS_ENDPOINT_URL``, extra fsspec options as JSON in
``EMBEDHEAD_STORAGE_OPTIONS``). Array handles are opened once per reader (each open costs a
metadata read), so every later read is one request per stored chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import google_crc32c
import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ZstdCodec
from zarr.core.array_spec import ArrayConfigParams
from zarr.storage import LocalStore

from embedhead.errors import ConfigError, InputError, StoreDamaged, StoreWriteError
from embedhead.processes import pid_running
from embedhead.store import layout
from embedhead.store.base import EmbeddingStore, StoreWriter
from embedhead.store.chunk_objects import ChunkObjects, replace_file

_WRITE_CONFIG: ArrayConfigParams = {"write_empty_chunks": True}
"""Whole chunks are always written: skips zarr's per-chunk "all equal to the fill value" scan."""

BLOSC_BLOCKSIZE = 1 << 18
"""Blosc block of a new store's embedding chunks (256 KiB; a 1 MiB chunk is 4 blocks).

Blosc's automatic choice for these levels is 16-128 KiB; on float16 rows 256 KiB blocks encode
lz4 ~1.2x and zstd ~1.5x faster, decode ~2x faster, and zstd's output is ~8% smaller (one
thread, ``benchmarks/bench_store.py --write``). The block size is written in every chunk's blosc
header, so any blosc decoder (plain zarr, older embedhead) reads the chunks: stores with the old
automatic blocks and new ones read alike."""

_CODECS: dict[str, list[BloscCodec | Crc32cCodec]] = {
    "zstd": [
        BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", blocksize=BLOSC_BLOCKSIZE),
        Crc32cCodec(),
    ],
    "lz4": [
        BloscCodec(cname="lz4", clevel=1, shuffle="shuffle", blocksize=BLOSC_BLOCKSIZE),
        Crc32cCodec(),
    ],
    "none": [Crc32cCodec()],
}
"""Codec chains of the embedding arrays of a new store: every chunk ends in a crc32c trailer."""

_INDEX_CODECS: list[ZstdCodec | Crc32cCodec] = [ZstdCodec(level=0), Crc32cCodec()]
"""Codecs of the index arrays of a new store (zarr's default zstd, then the crc32c trailer)."""

ROW_CHUNK_KEYS: dict[str, Any] = {"name": "default", "separator": "."}
"""Chunk keys of the (rows, D) arrays of a new store: ``c.<k>.0``, every chunk a file of the
array's folder (zarr's default ``c/<k>/0`` makes one folder per chunk: a mkdir, ~0.5 ms on
ext4, per 1 MiB chunk written). Older stores keep theirs: keys always come from the metadata."""

_DAMAGE = (ValueError, RuntimeError, OSError, TypeError, EOFError)
"""What zarr / numcodecs / blosc raise on a chunk that is truncated, zeroed or fails its crc."""


def crc32c_trailer(data: bytes | memoryview) -> bytes:
    """The 4-byte little-endian crc32c of ``data`` (what zarr's ``crc32c`` codec appends)."""
    return struct.pack("<I", google_crc32c.value(np.frombuffer(data, dtype=np.uint8)))


def strip_crc32c(data: bytes | memoryview) -> memoryview | None:
    """``data`` without its crc32c trailer, or None when the trailer does not match."""
    if len(data) < 4:
        return None
    body = memoryview(data)[:-4]
    return body if crc32c_trailer(body) == bytes(data[-4:]) else None


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
STORAGE_OPTIONS_ENV = "EMBEDHEAD_STORAGE_OPTIONS"


def is_url(path: str | Path) -> bool:
    """True for an fsspec URL (``s3://...``, ``memory://...``); ``file://`` counts as a URL."""
    return isinstance(path, str) and bool(_URL.match(path))


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options for ``url``: ``EMBEDHEAD_STORAGE_OPTIONS`` (a JSON object) plus, for
    ``s3://``, the endpoint from ``AWS_ENDPOINT_URL`` unless the JSON names one.

    Credentials are left to the filesystem (s3fs reads ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY`` / ``AWS_PROFILE`` itself). ConfigError for invalid JSON.
    """
    raw = os.environ.get(STORAGE_OPTIONS_ENV, "").strip()
    try:
        options = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ConfigError(f"{STORAGE_OPTIONS_ENV} is not valid JSON ({exc}): {raw!r}") from None
    if not isinstance(options, dict):
        raise ConfigError(f"{STORAGE_OPTIONS_ENV} must be a JSON object, not {raw!r}")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith(("s3://", "s3a://")) and endpoint and "endpoint_url" not in options:
        client = dict(options.get("client_kwargs") or {})
        client.setdefault("endpoint_url", endpoint)
        options["client_kwargs"] = client
    return options


def url_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, root key without a trailing slash) of a store URL, with its listing cache
    dropped (other processes add and remove objects under it)."""
    try:
        fs, root = fsspec.core.url_to_fs(url, **storage_options(url))
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"{url}: cannot use this URL ({exc})") from exc
    root = str(root).rstrip("/")
    fs.invalidate_cache(root)
    return fs, root


def store_exists(path: str | Path) -> bool:
    """Whether a store is there: a local path exists; at a URL, the group metadata is written
    with its ``format_version`` (a creation killed half-way counts as absent and is redone)."""
    if not is_url(path):
        return Path(path).exists()
    fs, root = url_fs(str(path))
    try:
        meta = json.loads(fs.cat_file(f"{root}/zarr.json"))
    except FileNotFoundError:
        return False
    except ValueError:
        return True  # damaged metadata: let the reader report it
    except OSError as exc:
        raise InputError(f"cannot open the store ({type(exc).__name__}: {exc})", path) from exc
    return isinstance(meta, dict) and "format_version" in (meta.get("attributes") or {})


def _open_group(path: str | Path, mode: str) -> zarr.Group:
    try:
        if is_url(path):
            return zarr.open_group(
                str(path),
                mode=mode,  # type: ignore[arg-type]
                storage_options=storage_options(str(path)),
            )
        return zarr.open_group(str(path), mode=mode)  # type: ignore[arg-type]
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise InputError(f"not an embedding store (cannot open as Zarr: {exc})", path) from exc
    except OSError as exc:  # network, permission, credentials
        raise InputError(f"cannot open the store ({type(exc).__name__}: {exc})", path) from exc


def _member_array(group: zarr.Group, name: str, path: str | Path) -> zarr.Array:
    """The array ``name`` of a store's group; a clear error when a damaged store lacks it."""
    try:
        node = group[name]
    except KeyError:
        raise InputError(f"store lacks its {name!r} array (damaged store)", path) from None
    if not isinstance(node, zarr.Array):
        raise InputError(f"store member {name!r} is not an array (damaged store)", path)
    return node


class ZarrEmbeddingStore(EmbeddingStore):
    """Reader of a ``.zarr`` embedding store."""

    def __init__(self, path: str | Path) -> None:
        if not is_url(path):
            if Path(path).exists() and not Path(path).is_dir():
                raise InputError("is a file, but a .zarr store is a folder", path)
            if not Path(path).is_dir():
                raise InputError("embedding store not found", path)
        self._group = _open_group(path, "r")
        self._arrays: dict[str, zarr.Array] = {}
        self._raw: _RawLayout | bool | None = False  # raw chunk layout (False: unknown)
        self._chunk_objects: dict[str, ChunkObjects] = {}  # array path -> its chunk objects
        self._objects_lock = threading.Lock()  # not _ident_lock: identity loading needs objects
        self._ident: _Identity | bool | None = False  # expected chunk crcs (False: unread)
        self._ident_lock = threading.Lock()
        self._pooled_crcs: np.ndarray | bool | None = False  # (C, 2) accepted (False: unread)
        self._pooled_ok: set[int] = set()  # pooled chunks whose trailer passed
        self._pending = _unfolded(self._group, read_records(path), path)
        super().__init__(str(path))

    def _read_attrs(self) -> dict[str, Any]:
        attrs = dict(self._group.attrs)
        if "format_version" not in attrs:
            raise InputError("not an embedding store (no format_version attribute)", self.path)
        self._folded = attrs.get(layout.N_SEQUENCES)
        if self._pending.n and isinstance(self._folded, int):
            attrs[layout.N_SEQUENCES] = self._folded + self._pending.n
        return attrs

    def _array(self, name: str) -> zarr.Array:
        """The member array, opened once (each open reads its metadata)."""
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = _member_array(self._group, name, self.path)
        return array

    def _block_rows(self) -> int:
        array = self._array(layout.POSITIONS)
        return int((array.shards or array.chunks)[0])

    def _raw_chunks(self) -> _RawLayout | None:
        """How ``positions``' chunk files can be read and decoded directly (local store, plain
        chunk grid, bytes [+ blosc] [+ crc32c] codecs, zero fill); else None.
        """
        if self._raw is False:
            array = self._array(layout.POSITIONS)
            objects = self._objects(array)
            self._raw = None if objects is None else _raw_layout(array, objects)
        return self._raw if isinstance(self._raw, _RawLayout) else None

    def _objects(self, array: zarr.Array) -> ChunkObjects | None:
        """The chunk objects of a member array (None: a store kind read only through zarr)."""
        with self._objects_lock:
            objects = self._chunk_objects.get(array.path)
            if objects is None:
                objects = chunk_objects(array, self.path)
                if objects is not None:
                    self._chunk_objects[array.path] = objects
            return objects

    def _damaged(self, name: str, start: int, stop: int, why: str) -> StoreDamaged:
        return damaged(self.path, name, start, stop, why)

    def _read_block(
        self, k: int, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """One chunk file read and decoded without zarr's per-call machinery when possible.

        A chunk file that is missing (inside committed rows), fails its crc32c, is not the
        chunk written there (its trailer differs from ``chunk_crcs``) or does not decode:
        StoreDamaged naming the rows. A chunk no committed sequence uses reads as zeros.
        """
        raw = self._raw_chunks()
        if raw is None:
            return self._zarr_positions(start, stop)
        return self._raw_chunk(raw, k, start, stop, out)

    def _raw_chunk(
        self, raw: _RawLayout, k: int, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows ``start:stop`` (absolute, inside chunk ``k``) of ``positions``, read raw;
        decoded straight into ``out`` when it is the whole chunk's (rows, D) destination."""
        array = self._array(layout.POSITIONS)
        rows, width = array.chunks
        whole = (
            out is not None
            and stop - start == rows
            and out.shape == (rows, width)
            and out.dtype == array.dtype
            and out.flags.c_contiguous
            and out.flags.writeable
        )
        try:
            data: bytes | memoryview = raw.objects.read(array.metadata.encode_chunk_key((k, 0)))
        except FileNotFoundError:
            if self.rows_used(start, stop):
                raise self._damaged(layout.POSITIONS, start, stop, "chunk file missing") from None
            return np.zeros((stop - start, width), dtype=array.dtype)  # unused padding rows
        except OSError as exc:
            raise self._damaged(layout.POSITIONS, start, stop, f"unreadable: {exc}") from exc
        if raw.crc:
            body = strip_crc32c(data)
            if body is None:
                raise self._damaged(layout.POSITIONS, start, stop, "crc32c checksum mismatch")
            self._check_identity(k, bytes(data[-4:]), start, stop)
            data = body
        block = (  # writable, decoded in place
            out.reshape(-1) if whole and out is not None else np.empty(rows * width, array.dtype)
        )
        if raw.blosc:
            try:
                numcodecs.blosc.decompress(data, block)
            except (ValueError, RuntimeError):  # not one whole chunk's worth: let zarr decide
                return self._zarr_positions(start, stop)
        elif len(data) == block.nbytes:
            block.view(np.uint8)[:] = np.frombuffer(data, dtype=np.uint8)
        else:
            return self._zarr_positions(start, stop)
        if whole and out is not None:
            return out
        first = k * rows
        return block.reshape(rows, width)[start - first : stop - first]

    def _identity(self) -> _Identity | None:
        """The expected crc32c of each ``positions`` chunk (None: the store has no
        ``chunk_crcs``; its chunk identity check is skipped). Read once, thread-safe."""
        with self._ident_lock:
            if self._ident is False:
                self._ident = self._load_identity()
            return self._ident if isinstance(self._ident, _Identity) else None

    def _load_identity(self, records: Records | None = None) -> _Identity | None:
        if self.pooled_only or layout.CHUNK_CRCS not in self._group:
            return None
        stored = int(self._array(layout.CHUNK_CRCS).shape[0])
        self._check_present(layout.CHUNK_CRCS, 0, stored)
        folded = np.asarray(self._read(layout.CHUNK_CRCS, 0, stored), dtype=np.uint32)
        rows = self._block_rows()
        used = lambda k: self.rows_used(k * rows, (k + 1) * rows)  # noqa: E731
        return _Identity.build(folded, self._pending if records is None else records, used)

    def _refreshed_identity(self) -> _Identity | None:
        """The expected crcs read again: a writer still running may have rewritten a chunk
        since this reader opened (its intent object, or its fold, is written first)."""
        with self._ident_lock:
            self._arrays.pop(layout.CHUNK_CRCS, None)  # its shape may have grown
            with contextlib.suppress(InputError):  # else the first view and its mismatch stand
                self._ident = self._load_identity(read_records(self.path))
            return self._ident if isinstance(self._ident, _Identity) else None

    def chunk_identity_known(self) -> bool:
        """True when reads check chunk identity: ``chunk_crcs`` is there and ``positions`` is
        read raw (a store with checksums, local or at a URL)."""
        raw = None if self.pooled_only else self._raw_chunks()
        return raw is not None and raw.crc and self._identity() is not None

    def _check_identity(self, k: int, trailer: bytes, start: int, stop: int) -> None:
        """StoreDamaged when chunk ``k``'s crc32c trailer is not one it was written with."""
        ident = self._identity()
        if ident is None:
            return
        got = int.from_bytes(trailer, "little")
        if not ident.accepts(k, got):
            ident = self._refreshed_identity() or ident
        if not ident.accepts(k, got):
            raise self._damaged(
                layout.POSITIONS,
                start,
                stop,
                f"chunk {k} is not the chunk written there (crc32c {got:08x}, written as "
                f"{ident.describe(k)}): a chunk copied over another?",
            )

    def check_chunk_identity(self) -> None:
        """Cheap check of every ``positions`` and ``pooled`` chunk committed rows use (embed
        resume): the chunk file is there and its crc32c trailer is the one written (4 bytes
        read per chunk; stores with ``chunk_crcs`` / ``pooled_crcs``). StoreDamaged for the
        first that is not."""
        self._check_pooled(0, len(self) - self._pending.n)
        if self.pooled_only or not len(self):
            return
        raw = self._raw_chunks()
        ident = self._identity() if raw is not None and raw.crc else None
        if raw is None or ident is None:
            return
        array = self._array(layout.POSITIONS)
        rows = int(array.chunks[0])
        for k in ident.checked(_used_chunks(self._offsets, self._lengths, rows)):
            lo, hi = k * rows, min((k + 1) * rows, self.rows_end())
            trailer = self._chunk_trailer(raw.objects, array, int(k), lo, hi)
            self._check_identity(int(k), trailer, lo, hi)

    def _chunk_trailer(
        self, objects: ChunkObjects, array: zarr.Array, k: int, lo: int, hi: int
    ) -> bytes:
        """The 4-byte crc32c trailer of row chunk ``k`` of ``array`` (rows ``lo:hi`` named in
        the error): StoreDamaged when the chunk is missing, unreadable or truncated."""
        name = array.basename
        try:
            trailer = objects.tail(array.metadata.encode_chunk_key((k, 0)), 4)
        except FileNotFoundError:
            raise self._damaged(name, lo, hi, "chunk file missing") from None
        except OSError as exc:
            raise self._damaged(name, lo, hi, f"unreadable: {exc}") from exc
        if len(trailer) != 4:
            raise self._damaged(name, lo, hi, "chunk file truncated")
        return trailer

    def _pooled_table(self, fresh: bool = False) -> np.ndarray | None:
        """(C, 2) trailers each ``pooled`` chunk may hold (None: no ``pooled_crcs``)."""
        with self._ident_lock:
            if self._pooled_crcs is False or fresh:
                if layout.POOLED_CRCS not in self._group:
                    self._pooled_crcs = None
                else:
                    self._arrays.pop(layout.POOLED_CRCS, None)  # its current shape
                    stored = int(self._array(layout.POOLED_CRCS).shape[0])
                    self._check_present(layout.POOLED_CRCS, 0, stored)
                    table = self._read(layout.POOLED_CRCS, 0, stored)
                    self._pooled_crcs = np.asarray(table, dtype=np.uint32).reshape(-1, 2)
            return self._pooled_crcs if isinstance(self._pooled_crcs, np.ndarray) else None

    def _check_pooled(self, start: int, stop: int) -> None:
        """StoreDamaged when a ``pooled`` chunk of folded rows ``start:stop`` holds a crc32c
        trailer ``pooled_crcs`` does not name for it (a chunk copied over another); each
        chunk checked once per open store (4 bytes read)."""
        table = self._pooled_table()
        if table is None or stop <= start:
            return
        array = self._array(layout.POOLED)
        objects = self._objects(array)
        if objects is None:
            return
        rows = int(array.chunks[0])
        for k in range(start // rows, -(-stop // rows)):
            if k in self._pooled_ok or k >= table.shape[0] or not table[k].any():
                continue  # checked, or written where the trailer was not recorded
            lo, hi = k * rows, min(stop, (k + 1) * rows)
            got = int.from_bytes(self._chunk_trailer(objects, array, k, lo, hi), "little")
            if got not in table[k]:  # a fold since this store was opened? look once more
                fresh = self._pooled_table(fresh=True)
                if fresh is not None and k < fresh.shape[0]:
                    table = fresh
            if got == 0 or got not in table[k]:
                named = " or ".join(f"{int(c):08x}" for c in table[k] if c)
                raise self._damaged(
                    layout.POOLED,
                    lo,
                    hi,
                    f"chunk {k} is not the chunk written there (crc32c {got:08x}, written as "
                    f"{named}): a chunk copied over another?",
                )
            self._pooled_ok.add(k)

    def _missing_chunks(self, name: str, start: int, stop: int) -> list[int]:
        """Chunks of rows ``start:stop`` of an array whose chunk object is absent (local
        folder or URL; arrays written with checksums, which write every chunk)."""
        array = self._array(name)
        if stop <= start or array.shards is not None:
            return []
        if not _has_crc(array):  # older stores skipped chunks equal to the fill value
            return []
        objects = self._objects(array)
        if objects is None:
            return []
        rows = int(array.chunks[0])
        rest = (0,) * (len(array.chunks) - 1)
        keys = array.metadata.encode_chunk_key  # type: ignore[union-attr]
        return [
            k
            for k in range(start // rows, -(-stop // rows))
            if not objects.exists(keys((k, *rest)))
        ]

    def _check_present(self, name: str, start: int, stop: int) -> None:
        """StoreDamaged when a chunk file of committed rows ``start:stop`` of ``name`` is gone
        (zarr would read it as its fill value: zeros, or empty ids)."""
        missing = self._missing_chunks(name, start, stop)
        if missing:
            rows = int(self._array(name).chunks[0])
            spans = ", ".join(
                f"{max(start, k * rows)}..{min(stop, (k + 1) * rows) - 1}" for k in missing[:5]
            )
            more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
            raise self._damaged(
                name, start, stop, f"{len(missing)} chunk file(s) missing: rows {spans}{more}"
            )

    def _read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of array ``name`` through zarr; damage is StoreDamaged."""
        try:
            return np.asarray(self._array(name)[start:stop])
        except StoreDamaged:
            raise
        except _DAMAGE as exc:
            raise self._damaged(name, start, stop, _why(exc)) from exc

    def _read_index(self, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        n = n - self._pending.n
        if n == 0:
            ids: list[str] = []
            offsets = lengths = np.zeros(0, dtype=np.int64)
        else:
            for name in (layout.IDS, layout.OFFSETS, layout.LENGTHS, layout.POOLED):
                self._check_present(name, 0, n)
            ids = [str(s) for s in self._read(layout.IDS, 0, n)]
            offsets = np.asarray(self._read(layout.OFFSETS, 0, n), dtype=np.int64)
            lengths = np.asarray(self._read(layout.LENGTHS, 0, n), dtype=np.int64)
        if self._pending.n:
            ids = ids + self._pending.ids
            offsets = np.concatenate([offsets, self._pending.offsets])
            lengths = np.concatenate([lengths, self._pending.lengths])
        return ids, offsets, lengths

    def _read_positions(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``: chunk by chunk through the raw reader (crc32c and chunk
        identity checked) for a local store with checksums, else through zarr."""
        raw = self._raw_chunks()
        if raw is None or not raw.crc or stop <= start:
            return self._zarr_positions(start, stop)
        rows = self._block_rows()
        first, last = start // rows, (stop - 1) // rows
        if first == last:  # a copy: a view would keep the whole decoded chunk alive
            part = self._raw_chunk(raw, first, start, stop)
            return part if stop - start == rows else part.copy()
        out = np.empty((stop - start, self.d_model), dtype=self._array(layout.POSITIONS).dtype)
        for k in range(first, last + 1):
            lo, hi = max(start, k * rows), min(stop, (k + 1) * rows)
            out[lo - start : hi - start] = self._raw_chunk(raw, k, lo, hi)
        return out

    def _zarr_positions(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` through zarr (absent chunk files of committed rows: damage)."""
        if stop > start:
            rows = int(self._array(layout.POSITIONS).chunks[0])
            for k in self._missing_chunks(layout.POSITIONS, start, stop):
                lo, hi = max(start, k * rows), min(stop, (k + 1) * rows)
                if self.rows_used(lo, hi):
                    raise self._damaged(layout.POSITIONS, lo, hi, "chunk file missing")
        return self._read(layout.POSITIONS, start, stop)

    def _array_rows(self, name: str) -> int:
        return int(self._array(name).shape[0])

    def _pooled_entries(self) -> int:
        return len(self) - self._pending.n

    def _read_pooled(self, rows: np.ndarray) -> np.ndarray:
        folded = len(self) - self._pending.n
        if rows.size and int(rows[-1]) >= folded:  # rows of pending commit records
            low = rows[rows < folded]
            high = self._pending.pooled[rows[rows >= folded] - folded]
            return np.concatenate([self._read_folded_pooled(low), high]) if low.size else high
        return self._read_folded_pooled(rows)

    def _read_folded_pooled(self, rows: np.ndarray) -> np.ndarray:
        pooled = self._array(layout.POOLED)
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        self._check_pooled(lo, hi)
        if hi - lo == rows.size:
            return self._read(layout.POOLED, lo, hi)
        if hi - lo <= 4 * rows.size:
            return self._read(layout.POOLED, lo, hi)[rows - lo]
        try:
            return np.asarray(pooled.get_orthogonal_selection((rows, slice(None))))
        except _DAMAGE as exc:
            raise self._damaged(layout.POOLED, lo, hi, _why(exc)) from exc

    def content_hashes(self) -> dict[str, str] | None:
        if layout.HASHES not in self._group:
            return None
        folded = len(self) - self._pending.n
        self._check_present(layout.HASHES, 0, folded)
        stored = [str(h) for h in self._read(layout.HASHES, 0, folded)] if folded else []
        pairs = zip(self._ids, stored + self._pending.hashes, strict=True)
        return {sid: h for sid, h in pairs if h}

    def chunk_problems(self) -> list[str]:
        """Read every stored chunk of every array; one line per damaged chunk (array, rows)."""
        problems: list[str] = []
        folded = len(self) - self._pending.n
        names = [layout.IDS, layout.OFFSETS, layout.LENGTHS, layout.POOLED]
        if layout.HASHES in self._group:
            names.append(layout.HASHES)
        for name in names + ([] if self.pooled_only else [layout.POSITIONS]):
            array = self._array(name)
            rows = int(array.chunks[0])
            end = folded if name != layout.POSITIONS else self.rows_end()
            for k in range(-(-end // rows)):
                lo, hi = k * rows, min(end, (k + 1) * rows)
                if name == layout.POSITIONS and not self.rows_used(lo, hi):
                    continue  # padding / rows of a batch killed before its commit
                try:
                    if self._missing_chunks(name, lo, hi):
                        raise self._damaged(name, lo, hi, "chunk file missing")
                    if name == layout.POSITIONS:
                        self._read_block(k, lo, hi)
                    else:
                        if name == layout.POOLED:
                            self._check_pooled(lo, hi)
                        self._read(name, lo, hi)
                except StoreDamaged as exc:
                    problems.append(f"{name} rows {lo}..{hi - 1}: {exc.reason}")
        return problems

    def close(self) -> None:
        """Drop the cached array handles (zarr opens files per read)."""
        self._arrays.clear()


def write_failed(path: str | Path, exc: OSError) -> StoreWriteError:
    """The one error of a failed store write (disk full, permission denied, vanished file)."""
    what = os.strerror(exc.errno) if exc.errno else str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    return StoreWriteError(
        f"{path}: cannot write the store: {what}{where}. Everything committed so far is kept; "
        "free space / fix permissions, then rerun the same command to resume"
    )


def _why(exc: BaseException) -> str:
    """A codec's error, said plainly (zarr's crc32c codec raises a ValueError naming bytes)."""
    if "checksum" in str(exc).lower():
        return "crc32c checksum mismatch"
    return f"does not decode ({type(exc).__name__}: {exc})"


def damaged(path: str | Path, name: str, start: int, stop: int, why: str) -> StoreDamaged:
    """The one error of a damaged chunk: names the store, the array and the rows."""
    rows = f"rows {start}..{stop - 1}" if stop > start else f"row {start}"
    return StoreDamaged(
        f"damaged store: {name} {rows}: {why}; the store cannot be trusted (run `embedhead "
        "store verify` for every damaged chunk; re-embed into a fresh --store)",
        path,
        array=name,
        rows=rows,
        reason=why,
    )


@dataclass(frozen=True)
class _RawLayout:
    """Chunk objects of an array and its codec chain: bytes [+ blosc] [+ crc32c]."""

    objects: ChunkObjects
    blosc: bool
    crc: bool


def _has_crc(array: zarr.Array) -> bool:
    """True for an array written with checksums (its chain ends in crc32c): such stores write
    every chunk (``write_empty_chunks``), so an absent chunk file is damage, never fill."""
    codecs = tuple(getattr(array.metadata, "codecs", ()))
    return bool(codecs) and isinstance(codecs[-1], Crc32cCodec)


def chunk_objects(array: zarr.Array, path: str | Path) -> ChunkObjects | None:
    """Where the chunks of ``array`` (a member of the store at ``path``) live: its folder in a
    local store, its key prefix in a store at a URL; None for other zarr stores."""
    if isinstance(array.store, LocalStore):
        return ChunkObjects.local(Path(array.store.root) / array.path)
    if is_url(path):
        fs, root = url_fs(str(path))
        return ChunkObjects.at_url(fs, f"{root}/{array.path}")
    return None


def _raw_layout(array: zarr.Array, objects: ChunkObjects) -> _RawLayout | None:
    """How ``array``'s chunk objects can be decoded by hand (None: only zarr can)."""
    codecs = list(getattr(array.metadata, "codecs", ()))
    if array.shards is not None or not codecs:
        return None
    crc = isinstance(codecs[-1], Crc32cCodec)
    if crc:
        codecs = codecs[:-1]
    first = codecs[0] if codecs else None
    if len(codecs) not in (1, 2) or not isinstance(first, BytesCodec) or len(array.chunks) != 2:
        return None
    if first.endian is not None and first.endian.value != sys.byteorder:
        return None
    if not all(isinstance(c, BloscCodec) for c in codecs[1:]) or float(array.fill_value) != 0.0:
        return None
    return _RawLayout(objects, blosc=len(codecs) == 2, crc=crc)


_NO_CHUNKS: np.ndarray = np.zeros(0, dtype=np.int64)
_NO_CRCS: np.ndarray = np.zeros(0, dtype=np.uint32)


@dataclass(frozen=True)
class Records:
    """Pending commit records of a store, concatenated in offset order (n entries)."""

    keys: tuple[str, ...]
    ids: list[str]
    offsets: np.ndarray
    lengths: np.ndarray
    pooled: np.ndarray
    hashes: list[str] = dataclasses.field(default_factory=list)
    """Content hash per entry ("" for records written before hashes existed)."""
    crc_chunks: np.ndarray = dataclasses.field(default_factory=lambda: _NO_CHUNKS)
    """``positions`` chunks the records' rows lie in (one pair per record and chunk) ..."""
    crc_values: np.ndarray = dataclasses.field(default_factory=lambda: _NO_CRCS)
    """... and the crc32c trailer each was written with (0: the writer did not know it)."""
    intent_chunks: np.ndarray = dataclasses.field(default_factory=lambda: _NO_CHUNKS)
    """Chunks a writer was about to rewrite (intent objects) ..."""
    intent_values: np.ndarray = dataclasses.field(default_factory=lambda: _NO_CRCS)
    """... and the crc32c of their new bytes."""

    @property
    def n(self) -> int:
        return len(self.ids)

    def accepted(self, known: Callable[[int], bool]) -> dict[int, set[int]]:
        """chunk -> crc32c trailers it may hold: those its records name, plus those of
        intents for a chunk that a record names or ``known`` says holds folded rows (an
        intent alone never makes a chunk checked: it may hold no committed rows). A 0 in a
        set means a writer did not know the crc (the chunk is not checked)."""
        accepted: dict[int, set[int]] = {}
        for k, crc in zip(self.crc_chunks.tolist(), self.crc_values.tolist(), strict=True):
            accepted.setdefault(k, set()).add(crc)
        for k, crc in zip(self.intent_chunks.tolist(), self.intent_values.tolist(), strict=True):
            if k in accepted or known(k):
                accepted.setdefault(k, set()).add(crc)
        return accepted


INTENT_SUFFIX = ".intent"
"""Intent objects ``commits/<run>-<n>.intent`` (npz: chunks, crcs) written before a chunk that
may hold committed rows is rewritten: its new crc32c is accepted beside the committed ones."""


@dataclass(frozen=True)
class _Identity:
    """Expected crc32c trailers of the ``positions`` chunks committed rows use: the folded
    ``chunk_crcs`` (0 = unknown) plus what pending commit records and intents name."""

    folded: np.ndarray
    pending: dict[int, frozenset[int]]

    @staticmethod
    def build(folded: np.ndarray, records: Records, used: Callable[[int], bool]) -> _Identity:
        known = lambda k: k < folded.size and bool(folded[k])  # noqa: E731
        pending = {k: frozenset(v) for k, v in records.accepted(known).items() if used(k)}
        return _Identity(folded=folded, pending=pending)

    def expected(self, k: int) -> frozenset[int] | None:
        """The trailers chunk ``k`` may hold; None when it is not checked."""
        base = int(self.folded[k]) if k < self.folded.size else 0
        extra = self.pending.get(k)
        if extra is None:
            return frozenset((base,)) if base else None
        if 0 in extra:
            return None
        return extra | {base} if base else extra

    def accepts(self, k: int, crc: int) -> bool:
        want = self.expected(k)
        return want is None or crc in want

    def describe(self, k: int) -> str:
        return " or ".join(f"{c:08x}" for c in sorted(self.expected(k) or ()))

    def checked(self, chunks: np.ndarray) -> list[int]:
        """The chunks of ``chunks`` that have an expected trailer."""
        return [int(k) for k in chunks.tolist() if self.expected(int(k)) is not None]


def _used_chunks(offsets: np.ndarray, lengths: np.ndarray, rows: int) -> np.ndarray:
    """Sorted indices of the chunks (``rows`` rows each) that rows of the entries lie in."""
    if not offsets.size:
        return _NO_CHUNKS
    lo = offsets // rows
    hi = (offsets + lengths - 1) // rows
    n = int(hi.max()) + 2
    depth = np.cumsum(np.bincount(lo, minlength=n) - np.bincount(hi + 1, minlength=n))
    return np.flatnonzero(depth[:-1] > 0)


def _records_dir(path: str | Path) -> Path | str:
    """``STORE/commits``: a local folder, or an object prefix (a URL string) for a URL store."""
    if is_url(path):
        return f"{str(path).rstrip('/')}/{layout.COMMITS}"
    return Path(path) / layout.COMMITS


def record_path(path: str | Path, name: str) -> Path | str:
    """Where the commit record ``name`` of store ``path`` lives (local path or URL)."""
    folder = _records_dir(path)
    return f"{folder}/{name}" if isinstance(folder, str) else folder / name


def _record_names(path: str | Path, pattern: str = "*.npz") -> tuple[list[str], Any]:
    """(sorted record names, name -> what ``np.load`` opens) of a store's ``commits/``."""
    folder = _records_dir(path)
    if isinstance(folder, str):
        fs, root = url_fs(folder)
        try:
            keys = fs.glob(f"{root}/{pattern}")
        except OSError as exc:
            raise InputError(f"cannot list commit records ({exc})", path) from exc
        names = sorted(str(k).rsplit("/", 1)[-1] for k in keys)
        return names, lambda name: io.BytesIO(fs.cat_file(f"{root}/{name}"))
    names = sorted(p.name for p in folder.glob(pattern)) if folder.is_dir() else []
    return names, lambda name: folder / name


def read_records(path: str | Path, d_model: int | None = None) -> Records:
    """Every complete commit record under ``STORE/commits/`` (a damaged one: InputError), and
    the intent objects beside them."""
    names, source = _record_names(path)
    parts: list[tuple[int, str, dict[str, np.ndarray]]] = []
    for name in names:
        try:
            with np.load(source(name), allow_pickle=False) as doc:
                part = {k: doc[k] for k in ("ids", "offsets", "lengths", "pooled")}
                n = part["ids"].shape[0]
                part["hashes"] = doc["hashes"] if "hashes" in doc.files else np.full(n, "")
                part["chunks"] = doc["chunks"] if "chunks" in doc.files else _NO_CHUNKS
                part["crcs"] = doc["crcs"] if "crcs" in doc.files else _NO_CRCS
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(
                f"commit record {name} is unreadable (damaged store: {exc})", path
            ) from exc
        first = int(part["offsets"][0]) if part["offsets"].size else -1
        parts.append((first, name, part))
    parts.sort(key=lambda t: (t[0], t[1]))
    intents, intent_chunks, intent_values = _read_intents(path)
    pairs = [p for _, _, p in parts]
    crc_fields: dict[str, Any] = {
        "crc_chunks": np.concatenate([_NO_CHUNKS, *(p["chunks"] for p in pairs)]).astype(np.int64),
        "crc_values": np.concatenate([_NO_CRCS, *(p["crcs"] for p in pairs)]).astype(np.uint32),
        "intent_chunks": intent_chunks,
        "intent_values": intent_values,
    }
    keys = tuple(name for _, name, _ in parts) + intents
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Records(keys, [], empty, empty.copy(), np.zeros((0, d_model or 0)), **crc_fields)
    return Records(
        keys=keys,
        ids=[str(s) for p in pairs for s in p["ids"]],
        offsets=np.concatenate([p["offsets"] for p in pairs]).astype(np.int64),
        lengths=np.concatenate([p["lengths"] for p in pairs]).astype(np.int64),
        pooled=np.concatenate([p["pooled"] for p in pairs]),
        hashes=[str(h) for p in pairs for h in p["hashes"]],
        **crc_fields,
    )


def _read_intents(path: str | Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(names, chunks, crcs) of the intent objects under ``STORE/commits/``."""
    names, source = _record_names(path, f"*{INTENT_SUFFIX}")
    chunks: list[np.ndarray] = [_NO_CHUNKS]
    crcs: list[np.ndarray] = [_NO_CRCS]
    for name in names:
        try:
            with np.load(source(name), allow_pickle=False) as doc:
                chunks.append(np.asarray(doc["chunks"], dtype=np.int64))
                crcs.append(np.asarray(doc["crcs"], dtype=np.uint32))
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"intent {name} is unreadable (damaged store: {exc})", path) from exc
    return tuple(names), np.concatenate(chunks), np.concatenate(crcs)


def _npz(**arrays: np.ndarray) -> bytes:
    """The bytes of an ``.npz`` of ``arrays`` (commit records, intent objects)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


_SHUFFLES = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


class _ChunkFiles:
    """Whole-chunk writes of an array (local folder or URL) without zarr's per-call machinery.

    :meth:`encode` turns one chunk (``chunk_rows``, D) into its stored bytes exactly as the
    array's codec chain says (little-endian bytes, then optionally Blosc with the array's
    parameters, then optionally the 4-byte little-endian crc32c trailer of zarr's ``crc32c``
    codec: any zarr reader decodes the result); it is the only place chunk bytes are
    made. Used only when the chain is one of those; anything else (sharding, remote
    codecs) goes through zarr. Blosc, crc32c and file writes release the GIL, so writer threads
    encode and write in parallel (in a thread other than the main one numcodecs' Blosc uses
    its context API: no global lock, one blosc thread per call).

    Chunks go to :class:`ChunkObjects` (local files, or objects at a URL). Chunk files are
    written in place (one open + write + close, no temporary file + rename):
    a chunk's rows are trusted only once the commit record of their batch exists, and records
    are written after the rows, so a chunk file torn by a kill holds only rows that no record
    names (the rerun writes those batches into a fresh region). A chunk this writer wrote
    before (the padded last chunk of a write unit that has grown since) may hold committed
    rows, so a rewrite replaces it atomically (temporary file + rename), after ``intend(chunk,
    crc)`` has recorded the crc32c of its new bytes (an intent object: a kill right after the
    rename leaves a chunk whose trailer no commit record names, but the intent does).
    ``crcs``: chunk -> crc32c trailer of the bytes last written there (crc32c chains only).
    """

    def __init__(
        self,
        objects: ChunkObjects,
        array: zarr.Array,
        intend: Callable[[int, int], None] | None = None,
    ) -> None:
        self._objects = objects
        self._intend = intend
        self.crcs: dict[int, int] = {}
        self._keys = array.metadata.chunk_key_encoding  # type: ignore[union-attr]
        self._crc = isinstance(array.metadata.codecs[-1], Crc32cCodec)  # type: ignore[union-attr]
        self._blosc: numcodecs.Blosc | None = None
        for codec in array.metadata.codecs:  # type: ignore[union-attr]
            if isinstance(codec, BloscCodec):
                self._blosc = numcodecs.Blosc(
                    cname=str(getattr(codec.cname, "value", codec.cname)),
                    clevel=int(codec.clevel),
                    shuffle=_SHUFFLES[str(getattr(codec.shuffle, "value", codec.shuffle))],
                    blocksize=int(codec.blocksize),
                )
        self._mutex = threading.Lock()
        self._written: set[int] = set()  # chunks written by this writer (rewrites: atomic)

    @staticmethod
    def usable(objects: ChunkObjects, array: zarr.Array) -> bool:
        """True for a v3 array (its local folder there, or at a URL) whose codecs are
        bytes(little) [+ blosc] [+ crc32c] on a plain chunk grid."""
        codecs = list(getattr(array.metadata, "codecs", None) or ())
        if codecs and isinstance(codecs[-1], Crc32cCodec):
            codecs = codecs[:-1]
        if objects.folder is not None and not objects.folder.is_dir():
            return False
        if not codecs or array.shards is not None:
            return False
        first, rest = codecs[0], codecs[1:]
        little = isinstance(first, BytesCodec) and str(
            getattr(first.endian, "value", first.endian)
        ) in ("little", "None")
        return little and all(isinstance(c, BloscCodec) for c in rest) and len(rest) <= 1

    def encode(self, block: np.ndarray) -> tuple[bytes | memoryview, ...]:
        """One chunk (rows, D), C-contiguous little-endian -> the bytes stored for it, in
        pieces: little-endian rows [-> blosc] [, crc32c trailer] (joined, they are the chunk;
        the rows of an uncompressed chunk are not copied)."""
        data = self._blosc.encode(block) if self._blosc is not None else block.data.cast("B")
        return (data, crc32c_trailer(data)) if self._crc else (data,)

    def write(self, first_chunk: int, region: np.ndarray, chunk_rows: int) -> None:
        little = region.dtype.newbyteorder("<")
        if region.dtype != little or not region.flags.c_contiguous:
            region = np.ascontiguousarray(region, dtype=little)  # a copy only when needed
        for k in range(region.shape[0] // chunk_rows):
            data = self.encode(region[k * chunk_rows : (k + 1) * chunk_rows])
            key = first_chunk + k
            name = self._keys.encode_chunk_key((key, 0))
            with self._mutex:
                again = key in self._written
                self._written.add(key)
                if self._crc:
                    self.crcs[key] = int.from_bytes(data[-1], "little")
            if again:
                if self._intend is not None and self._crc:
                    self._intend(key, self.crcs[key])
                self._objects.replace(name, data)
            else:
                self._objects.write_new(name, data)


def _unfolded(group: zarr.Group, records: Records, path: str | Path) -> Records:
    """``records`` without the entries already folded into the index.

    Folding writes the index arrays, then the marker, then deletes the records; a process
    killed between the last two steps leaves records whose entries are folded already.
    """
    n = group.attrs.get(layout.N_SEQUENCES, 0)
    if not records.n or not isinstance(n, int) or n <= 0:
        return records
    folded = set(str(s) for s in np.asarray(_member_array(group, layout.IDS, path)[:n]))
    keep = np.fromiter((sid not in folded for sid in records.ids), dtype=bool, count=records.n)
    if keep.all():
        return records
    return dataclasses.replace(
        records,
        ids=[sid for sid, k in zip(records.ids, keep, strict=True) if k],
        offsets=records.offsets[keep],
        lengths=records.lengths[keep],
        pooled=records.pooled[keep],
        hashes=[h for h, k in zip(records.hashes, keep, strict=True) if k],
    )  # the chunk crcs stay: folded entries' chunks are committed rows all the same


def put_object(path: Path | str, data: bytes | memoryview) -> None:
    """Write one small object whole (an object-store PUT; locally a temp file + replace).

    At a URL: one PUT that never overwrites (an exclusive create where the filesystem has one:
    FileExistsError when the object exists).
    """
    if isinstance(path, str) and is_url(path):
        fs, key = url_fs(path)
        create_object(fs, key, bytes(data))
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data)


def create_object(fs: fsspec.AbstractFileSystem, key: str, data: bytes) -> None:
    """PUT ``data`` at ``key`` unless an object is there (FileExistsError).

    Uses the filesystem's exclusive create (S3 ``If-None-Match: *``; memory://); a filesystem
    without one gets an exists check first, which is not atomic.
    """
    try:
        fs.pipe_file(key, data, mode="create")
    except (TypeError, NotImplementedError):
        if fs.exists(key):
            raise FileExistsError(key) from None
        fs.pipe_file(key, data)


def remove_object(path: Path | str) -> None:
    """Delete one file or object; absent is fine."""
    if isinstance(path, str) and is_url(path):
        fs, key = url_fs(path)
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(key)
        return
    Path(path).unlink(missing_ok=True)


LOCK_OBJECT = "writer.lock"
"""The lock object of a store at a URL (``STORE/writer.lock``, JSON: host, pid, since, token)."""


@dataclass(frozen=True)
class ObjectLock:
    """The folding writer's lock on a store at a URL: an object created exclusively."""

    url: str
    body: bytes

    def release(self) -> None:
        """Remove the lock object if it is still this lock's."""
        fs, key = url_fs(self.url)
        try:
            if fs.cat_file(key) == self.body:
                fs.rm_file(key)
        except FileNotFoundError:
            pass


def _lock_holder(body: bytes) -> dict[str, Any]:
    try:
        holder = json.loads(body)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _dead_here(holder: dict[str, Any]) -> bool:
    """True when the lock was taken on this host by a process that no longer runs."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    return not pid_running(pid)


def _busy(url: str, key: str, body: bytes) -> ConfigError:
    holder = _lock_holder(body)
    who = (
        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"
        if holder
        else "an unreadable lock"
    )
    return ConfigError(
        f"{url}: another process is writing this store (one writer per store; use torchrun "
        f"to embed in parallel): lock object {key} is held by {who}. If that process is gone "
        "(a machine that died), delete the lock object and rerun"
    )


def lock_object(url: str) -> ObjectLock:
    """Take the writer lock of a store at a URL: create ``STORE/writer.lock`` exclusively.

    A lock left by a killed process on this host (its pid is not running) is taken over; a
    lock from another host is only ever removed by hand. ConfigError when the store is busy.
    """
    fs, root = url_fs(url)
    key = f"{root}/{LOCK_OBJECT}"
    body = json.dumps(
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "token": uuid.uuid4().hex,
        }
    ).encode()
    try:
        create_object(fs, key, body)
    except FileExistsError:
        held = fs.cat_file(key)
        if not _dead_here(_lock_holder(held)):
            raise _busy(url, key, held) from None
        _take_over(url, fs, key, held, body)
    except OSError as exc:
        what = f"{type(exc).__name__}: {exc}"
        raise InputError(f"cannot create the lock object {key} ({what})", url) from exc
    now = fs.cat_file(key)
    if now != body:  # a filesystem that ignored the exclusive create, and lost the race
        raise _busy(url, key, now)
    return ObjectLock(f"{url.rstrip('/')}/{LOCK_OBJECT}", body)


def _take_over(url: str, fs: fsspec.AbstractFileSystem, key: str, held: bytes, body: bytes) -> None:
    """Replace a dead process's lock; takeovers on this host are serialised by a local flock
    (``$TMPDIR/embedhead-url-lock-<hash>``), and the new lock is still an exclusive create."""
    name = f"embedhead-url-lock-{uuid.uuid5(uuid.NAMESPACE_URL, url).hex[:16]}"
    fd = os.open(os.path.join(tempfile.gettempdir(), name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = fs.cat_file(key)
        except FileNotFoundError:
            current = b""
        if current and current != held:
            raise _busy(url, key, current)
        if current:
            fs.rm_file(key)
        try:
            create_object(fs, key, body)
        except FileExistsError:
            raise _busy(url, key, fs.cat_file(key)) from None
    finally:
        os.close(fd)


def _create_url_store(url: str, attrs: dict[str, Any]) -> None:
    """Create an empty store at a URL under its lock: the metadata of a store built in a local
    temporary folder is uploaded, the root ``zarr.json`` (with ``format_version``) last, so a
    creation killed half-way reads as no store and is redone by the next writer."""
    lock = lock_object(url)
    try:
        if store_exists(url):
            return
        fs, root = url_fs(url)
        with tempfile.TemporaryDirectory(prefix="embedhead-new-store-") as tmp:
            local = Path(tmp) / "new.zarr"
            create_zarr_store(local, attrs)
            top = local / "zarr.json"
            for file in sorted(p for p in local.rglob("*") if p.is_file() and p != top):
                fs.pipe_file(f"{root}/{file.relative_to(local).as_posix()}", file.read_bytes())
            fs.pipe_file(f"{root}/zarr.json", top.read_bytes())
    finally:
        lock.release()


def create_zarr_store(path: str | Path, attrs: dict[str, Any]) -> None:
    """Create an empty store atomically (built in a temporary folder, then renamed)."""
    if is_url(path):
        _create_url_store(str(path), attrs)
        return
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    d_model, dtype = int(attrs["d_model"]), str(attrs["dtype"])
    try:
        group = zarr.open_group(str(tmp), mode="w")
        rows = layout.rows_per_chunk(d_model, dtype)
        sdt = layout.storage_dtype(dtype)
        codecs = _CODECS[str(attrs.get("compression", layout.DEFAULT_COMPRESSION))]
        if not attrs["pooled_only"]:
            group.create_array(
                layout.POSITIONS, shape=(0, d_model), chunks=(rows, d_model), dtype=sdt,
                compressors=codecs, fill_value=0, config=_WRITE_CONFIG,
                chunk_key_encoding=ROW_CHUNK_KEYS,
            )  # fmt: skip
        group.create_array(
            layout.POOLED, shape=(0, d_model), chunks=(rows, d_model), dtype=sdt,
            compressors=codecs, fill_value=0, config=_WRITE_CONFIG,
            chunk_key_encoding=ROW_CHUNK_KEYS,
        )  # fmt: skip
        group.create_array(
            layout.IDS, shape=(0,), chunks=(layout.INDEX_CHUNK,), dtype=str,
            compressors=_INDEX_CODECS,
        )  # fmt: skip
        for name in (layout.OFFSETS, layout.LENGTHS):
            group.create_array(
                name, shape=(0,), chunks=(layout.INDEX_CHUNK,), dtype="int64",
                compressors=_INDEX_CODECS,
            )  # fmt: skip
        group.create_array(
            layout.HASHES, shape=(0,), chunks=(layout.INDEX_CHUNK,), dtype=str,
            compressors=_INDEX_CODECS,
        )  # fmt: skip
        if not attrs["pooled_only"]:
            group.create_array(
                layout.CHUNK_CRCS, shape=(0,), chunks=(layout.INDEX_CHUNK,), dtype="uint32",
                compressors=_INDEX_CODECS, fill_value=0,
            )  # fmt: skip
        group.create_array(
            layout.POOLED_CRCS, shape=(0, 2), chunks=(layout.INDEX_CHUNK, 2), dtype="uint32",
            compressors=_INDEX_CODECS, fill_value=0,
        )  # fmt: skip
        # one metadata write (``attrs.update`` rewrites zarr.json once per key: ~18 writes)
        group.update_attributes({**attrs, layout.N_SEQUENCES: 0, layout.N_POSITIONS: 0})
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def lock_folder(path: str | Path) -> int | ObjectLock:
    """Exclusive advisory lock on a store folder (released when the fd closes or the process dies).

    Returns the fd (a URL store: its :class:`ObjectLock`); ConfigError when another process
    holds the lock.
    """
    if is_url(path):
        return lock_object(str(path))
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"{path}: another process is writing this store (one writer per store; "
            "use torchrun to embed in parallel)"
        ) from None
    return fd


class ZarrStoreWriter(StoreWriter):
    """Writes chunk-aligned batch regions and per-batch commit records into a ``.zarr`` store.

    Planned use (``embed``): ``reserve(rows) -> first row``, then from any thread
    ``write_region(start, rows)`` (whole chunks) and ``commit_batch(key, ...)`` for each batch
    those rows hold. Simple use: ``write``/``write_raw`` + ``commit()``. ``close()`` folds the
    records into the index.
    ``owner=False`` (torchrun ranks other than 0): no lock, no folding, no trimming.
    """

    created = False
    """True when this writer's process created the store (set by ``open_zarr_writer``)."""

    def __init__(self, path: str | Path, *, owner: bool = True) -> None:
        self.path = str(path)
        self._owner = owner
        self._lock: int | ObjectLock | None = lock_folder(path) if owner else None
        try:
            self._open(path)
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        if isinstance(self._lock, ObjectLock):
            self._lock.release()
        elif self._lock is not None:
            os.close(self._lock)
        self._lock = None

    def _open(self, path: str | Path) -> None:
        reader = ZarrEmbeddingStore(path)
        marker = (layout.N_SEQUENCES, layout.N_POSITIONS)
        self.attrs = {k: v for k, v in reader.attrs.items() if k not in marker}
        self._ids: set[str] = set(reader.ids())
        if self._owner:  # a resume trusts the stored rows: refuse chunks copied over others
            reader.check_chunk_identity()
        reader.close()
        self._group = _open_group(path, "r+")
        self._mutex = threading.Lock()
        self._run = uuid.uuid4().hex[:12]
        self._batches = 0
        self._pending: list[tuple[list[str], np.ndarray, np.ndarray, np.ndarray]] = []
        self._hashes: dict[str, str] = {}
        self._intents = 0
        self._identity = not self.pooled_only and layout.CHUNK_CRCS in self._group
        self._positions: zarr.Array | None = None
        self._chunks: _ChunkFiles | None = None
        if not self.pooled_only:
            self._positions = self._writable(layout.POSITIONS)
            objects = chunk_objects(self._positions, path)
            if objects is not None and _ChunkFiles.usable(objects, self._positions):
                self._chunks = _ChunkFiles(objects, self._positions, self._intend)
        self.chunk_rows = int(
            (self._positions or _member_array(self._group, layout.POOLED, path)).chunks[0]
        )

    def _writable(self, name: str) -> zarr.Array:
        """The array ``name`` opened fresh (current shape) for whole-chunk writes."""
        return _member_array(self._group, name, self.path).with_config(_WRITE_CONFIG)

    def __contains__(self, sid: object) -> bool:
        return sid in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def _intend(self, chunk: int, crc: int) -> None:
        """Record that chunk ``chunk`` is about to be rewritten with crc32c ``crc``."""
        if not self._identity:
            return
        with self._mutex:
            n, self._intents = self._intents, self._intents + 1
        body = _npz(chunks=np.asarray([chunk], np.int64), crcs=np.asarray([crc], np.uint32))
        put_object(record_path(self.path, f"{self._run}-{n:08d}{INTENT_SUFFIX}"), body)

    def _chunk_crcs(self, offsets: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        """The chunks a batch's rows lie in and the crc32c each was last written with (empty
        when unknown: a store without ``chunk_crcs``, or chunks written through zarr)."""
        if self._chunks is None or not self._identity or not len(offsets):
            return {}
        offsets = np.asarray(offsets, dtype=np.int64)
        ends = offsets + np.asarray(lengths, dtype=np.int64)
        rows = self.chunk_rows
        chunks = np.arange(int(offsets.min()) // rows, (int(ends.max()) - 1) // rows + 1)
        with self._chunks._mutex:
            crcs = [self._chunks.crcs.get(int(k), 0) for k in chunks]
        return {"chunks": chunks.astype(np.int64), "crcs": np.asarray(crcs, dtype=np.uint32)}

    def set_content_hashes(self, hashes: dict[str, str]) -> None:
        self._hashes = dict(hashes)

    @property
    def end(self) -> int:
        """Rows of ``positions`` allocated so far (new regions start at or after this)."""
        return 0 if self._positions is None else int(self._positions.shape[0])

    def reserve(self, rows: int) -> int:
        """Grow ``positions`` by a chunk-aligned region of at least ``rows``; returns its start.

        Call from one thread (the planner), before the region's batches are written.
        """
        if self._positions is None or rows <= 0:
            return self.end
        base = layout.align_up(self.end, self.chunk_rows)
        self._positions.resize((base + layout.align_up(rows, self.chunk_rows), self.d_model))
        return base

    def adopt(self, base: int, rows: int) -> None:
        """Use a region another rank reserved (``positions`` already spans ``base + rows``)."""
        if self._positions is not None and self.end < base + rows:
            self._positions = self._writable(layout.POSITIONS)

    @property
    def d_model(self) -> int:
        return int(self.attrs["d_model"])

    def write_region(self, start: int, region: np.ndarray) -> None:
        """Write whole chunks ``region`` (k * chunk_rows, D) at chunk-aligned row ``start``."""
        if self._positions is None or region.shape[0] == 0:
            return
        if start % self.chunk_rows or region.shape[0] % self.chunk_rows:
            raise ValueError(f"region {start}+{region.shape[0]} is not chunk-aligned")
        if start + region.shape[0] > self.end:
            raise ValueError(f"region {start}+{region.shape[0]} lies outside the reservation")
        try:
            if self._chunks is not None:
                self._chunks.write(start // self.chunk_rows, region, self.chunk_rows)
            else:
                self._positions[start : start + region.shape[0]] = region
        except OSError as exc:
            raise write_failed(self.path, exc) from exc

    def commit_batch(
        self,
        key: str,
        ids: Sequence[str],
        offsets: np.ndarray,
        lengths: np.ndarray,
        pooled: np.ndarray,
    ) -> None:
        """Commit one batch whose rows are written: one small record object (thread-safe)."""
        body = _npz(
            ids=np.asarray(list(ids), dtype=str),
            offsets=np.asarray(offsets, dtype=np.int64),
            lengths=np.asarray(lengths, dtype=np.int64),
            pooled=np.ascontiguousarray(pooled),
            hashes=np.asarray([self._hashes.get(s, "") for s in ids], dtype=str),
            **self._chunk_crcs(offsets, lengths),
        )
        try:
            put_object(record_path(self.path, f"{key}.npz"), body)
        except OSError as exc:
            raise write_failed(self.path, exc) from exc
        with self._mutex:
            self._ids.update(ids)

    def write_raw(
        self,
        ids: Sequence[str],
        lengths: Sequence[int] | np.ndarray,
        positions: np.ndarray | None,
        pooled: np.ndarray,
    ) -> None:
        n = len(ids)
        if n == 0:
            return
        lens = np.asarray(lengths, dtype=np.int64)
        total = int(lens.sum())
        base = self.reserve(total)
        offsets = base + np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
        if not self.pooled_only:
            assert positions is not None and positions.shape[0] == total
            padded = (layout.align_up(total, self.chunk_rows), self.d_model)
            region = np.zeros(padded, positions.dtype)
            region[:total] = positions
            self.write_region(base, region)
        self._pending.append((list(ids), offsets, lens, np.asarray(pooled)))
        self._ids.update(ids)

    def commit(self) -> None:
        for ids, offsets, lens, pooled in self._pending:
            self.commit_batch(f"{self._run}-{self._batches:08d}", ids, offsets, lens, pooled)
            self._batches += 1
        self._pending = []

    def fold(self) -> int:
        """Append every pending record to the index arrays (offset order); returns how many."""
        try:
            return self._fold()
        except OSError as exc:
            raise write_failed(self.path, exc) from exc

    def _fold(self) -> int:
        records = _unfolded(self._group, read_records(self.path, self.d_model), self.path)
        attrs: dict[str, Any] = dict(self._group.attrs)
        n = int(attrs.get(layout.N_SEQUENCES, 0))
        p = int(attrs.get(layout.N_POSITIONS, 0))
        upgrade = attrs.get("format_version") != layout.FORMAT_VERSION
        if records.n:
            m = records.n
            members = [
                (layout.IDS, np.asarray(records.ids, dtype=str)),
                (layout.OFFSETS, records.offsets),
                (layout.LENGTHS, records.lengths),
                (layout.HASHES, np.asarray(records.hashes, dtype=str)),
            ]
            if not self._fold_pooled(n, records.pooled):  # else zarr writes pooled rows too
                members.insert(0, (layout.POOLED, records.pooled))
            for name, values in members:
                if name == layout.HASHES and name not in self._group:
                    continue  # a store written before hashes existed keeps its layout
                arr = _member_array(self._group, name, self.path).with_config(_WRITE_CONFIG)
                if arr.shape[0] != n + m:
                    arr.resize((n + m, *arr.shape[1:]))
                arr[n : n + m] = values
            p = max(p, int((records.offsets + records.lengths).max()))
        self._fold_crcs(records)
        if records.n or upgrade:  # the marker: one metadata write (attrs.update: one per key)
            self._group.update_attributes(
                {
                    "format_version": layout.FORMAT_VERSION,
                    layout.N_SEQUENCES: n + records.n,
                    layout.N_POSITIONS: p,
                }
            )
        for key in records.keys:  # every record read above, fully folded ones included
            remove_object(record_path(self.path, key))
        return records.n

    def _fold_pooled(self, n: int, values: np.ndarray) -> bool:
        """Write folded ``pooled`` rows ``n:n+m`` as whole chunks (the last chunk holding older
        rows replaced atomically), recording in ``pooled_crcs`` before each chunk is written
        the trailer it will hold and the one it holds. False (nothing written) for a store
        without ``pooled_crcs`` or whose pooled chunks zarr must write."""
        if layout.POOLED_CRCS not in self._group or not values.shape[0]:
            return False
        arr = self._writable(layout.POOLED)
        objects = chunk_objects(arr, self.path)
        if objects is None or not _ChunkFiles.usable(objects, arr) or not _has_crc(arr):
            return False
        rows, m = int(arr.chunks[0]), int(values.shape[0])
        first, last = n // rows, (n + m - 1) // rows
        head = n - first * rows  # older rows in the first chunk
        block = np.zeros(((last - first + 1) * rows, arr.shape[1]), dtype=arr.dtype)
        if head:
            try:
                block[:head] = np.asarray(arr[first * rows : n])
            except _DAMAGE as exc:
                raise damaged(self.path, layout.POOLED, first * rows, n, _why(exc)) from exc
        block[head : head + m] = np.asarray(values, dtype=arr.dtype)
        files = _ChunkFiles(objects, arr)
        keys = arr.metadata.encode_chunk_key
        chunks, table = [], []
        for i, k in enumerate(range(first, last + 1)):
            parts = files.encode(block[i * rows : (i + 1) * rows])
            key = keys((k, 0))
            held = 0
            if i == 0 and head:
                with contextlib.suppress(FileNotFoundError):
                    held = int.from_bytes(objects.tail(key, 4), "little")
            chunks.append((key, parts))
            table.append((int.from_bytes(parts[-1], "little"), held))
        if arr.shape[0] != n + m:
            arr.resize((n + m, arr.shape[1]))
        crcs = self._writable(layout.POOLED_CRCS)
        if crcs.shape[0] < last + 1:
            crcs.resize((last + 1, 2))
        crcs[first : last + 1] = np.asarray(table, dtype=np.uint32)  # before the chunks
        for key, parts in chunks:
            objects.replace(key, parts)
        return True

    def _fold_crcs(self, records: Records) -> None:
        """Merge the records' (and intents') chunk crcs into ``chunk_crcs``: one value per
        chunk; a chunk that several versions name (a rewritten padded chunk) gets the trailer
        it holds if that is one of them (else one of them: readers then refuse it)."""
        if not self._identity or not records.crc_chunks.size:
            return
        arr = _member_array(self._group, layout.CHUNK_CRCS, self.path).with_config(_WRITE_CONFIG)
        folded = np.asarray(arr[:], dtype=np.uint32)
        accepted = records.accepted(lambda k: k < folded.size and bool(folded[k]))
        lo, hi = min(accepted), max(accepted) + 1
        if hi > folded.size:
            folded = np.concatenate([folded, np.zeros(hi - folded.size, np.uint32)])
            arr.resize((hi,))
        for k, crcs in accepted.items():
            if folded[k]:
                crcs.add(int(folded[k]))
            if 0 in crcs:
                folded[k] = 0  # a writer that did not know the crc: not checked
            elif len(crcs) == 1:
                folded[k] = crcs.pop()
            else:
                held = self._trailer(k)
                folded[k] = held if held in crcs else max(crcs)
        arr[lo:hi] = folded[lo:hi]

    def _trailer(self, k: int) -> int | None:
        """The crc32c trailer chunk ``k`` of ``positions`` holds now (None: unreadable)."""
        assert self._positions is not None
        objects = chunk_objects(self._positions, self.path)
        try:
            if objects is None:
                return None
            data = objects.tail(self._positions.metadata.encode_chunk_key((k, 0)), 4)
        except (OSError, ValueError):
            return None
        return int.from_bytes(data, "little") if len(data) == 4 else None

    def close(self, *, keep_lock: bool = False) -> None:
        """Commit; the owner folds the records and trims arrays to their exact sizes.

        ``keep_lock``: stay locked (an HDF5 journal rebuilding its file); ``abandon()`` then
        releases the lock.
        """
        self.commit()
        if self._owner:
            self.fold()
            attrs: dict[str, Any] = dict(self._group.attrs)
            n, p = int(attrs[layout.N_SEQUENCES]), int(attrs[layout.N_POSITIONS])
            for name, rows in (
                (layout.POSITIONS, p),
                (layout.POOLED, n),
                (layout.IDS, n),
                (layout.OFFSETS, n),
                (layout.LENGTHS, n),
                (layout.HASHES, n),
            ):
                if name == layout.POSITIONS and self.pooled_only:
                    continue
                if name == layout.HASHES and name not in self._group:
                    continue
                arr = _member_array(self._group, name, self.path)
                if arr.shape[0] != rows:
                    arr.resize((rows, *arr.shape[1:]))
            if self._identity:  # one entry per chunk of the trimmed positions
                rows = layout.align_up(p, self.chunk_rows) // self.chunk_rows
                arr = _member_array(self._group, layout.CHUNK_CRCS, self.path)
                if arr.shape[0] != rows:
                    arr.resize((rows, *arr.shape[1:]))
        if not keep_lock:
            self._unlock()

    def abandon(self) -> None:
        """Keep what is committed (records); uncommitted regions are left as unused rows.

        A store this writer created that holds nothing committed is removed: a failed first
        ``embed`` leaves no empty store bound to its backbone.
        """
        try:
            empty = self._group.attrs.get(layout.N_SEQUENCES, 0) in (0, None)
            if self._owner and self.created and empty and not read_records(self.path).ids:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self._unlock()
