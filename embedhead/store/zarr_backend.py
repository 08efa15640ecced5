"""Zarr v3 backend: a ``.zarr`` folder holding the layout of :mod:`embedhead.store.layout`.

Crash safety: zarr's local store writes every chunk and metadata file to a temporary file and
renames it over the old one, so a killed process leaves each file either old or new. Data rows
and index entries are written first; the commit marker (root attributes ``n_sequences`` /
``n_positions``, one atomic file) is updated last, so readers and resumed runs only ever see
complete sequences. Rows past the marker are leftovers, overwritten by the next append.
Single writer per store folder (distributed runs write one shard folder per rank).

Reading also works from object storage: a path that is an fsspec URL (``s3://bucket/x.zarr``,
``gs://...``, ``memory://...``) opens through zarr's fsspec store (:func:`is_url`,
:func:`storage_options`; s3 credentials come from the usual ``AWS_*`` environment variables,
the endpoint from ``AWS_ENDPOINT_URL``, extra fsspec options as JSON in
``EMBEDHEAD_STORAGE_OPTIONS``). Array handles are opened once per reader (each open costs a
metadata read), so every later read is one request per stored chunk.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec
from zarr.storage import LocalStore

from embedhead.errors import ConfigError, InputError
from embedhead.store import layout
from embedhead.store.base import EmbeddingStore, StoreWriter

_CODECS: dict[str, list[BloscCodec]] = {
    "zstd": [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
    "lz4": [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")],
    "none": [],
}


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
        self._raw: tuple[Path, bool] | bool | None = False  # raw chunk layout (False: unknown)
        super().__init__(str(path))

    def _read_attrs(self) -> dict[str, Any]:
        attrs = dict(self._group.attrs)
        if "format_version" not in attrs:
            raise InputError("not an embedding store (no format_version attribute)", self.path)
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

    def _raw_chunks(self) -> tuple[Path, bool] | None:
        """(folder, blosc?) of ``positions`` when its chunks can be read as files and decoded
        directly (local store, plain chunk grid, bytes [+ blosc] codecs, zero fill); else None.
        """
        if self._raw is False:
            self._raw = _raw_layout(self._array(layout.POSITIONS))
        return self._raw if isinstance(self._raw, tuple) else None

    def _read_block(self, k: int, start: int, stop: int) -> np.ndarray:
        """One chunk file read and decoded without zarr's per-call machinery when possible."""
        raw = self._raw_chunks()
        if raw is None:
            return self._read_positions(start, stop)
        folder, blosc = raw
        array = self._array(layout.POSITIONS)
        rows, width = array.chunks
        try:
            data = (folder / array.metadata.encode_chunk_key((k, 0))).read_bytes()
        except FileNotFoundError:  # never written: zarr's fill value
            return np.zeros((stop - start, width), dtype=array.dtype)
        block = np.empty(rows * width, dtype=array.dtype)  # writable, decoded in place
        if blosc:
            try:
                numcodecs.blosc.decompress(data, block)
            except ValueError:  # not one whole chunk's worth: let zarr decide
                return self._read_positions(start, stop)
        elif len(data) == block.nbytes:
            block.view(np.uint8)[:] = np.frombuffer(data, dtype=np.uint8)
        else:
            return self._read_positions(start, stop)
        return block.reshape(rows, width)[: stop - start]

    def _read_index(self, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return [], empty, empty.copy()
        ids = [str(s) for s in np.asarray(self._array(layout.IDS)[:n])]
        offsets = np.asarray(self._array(layout.OFFSETS)[:n], dtype=np.int64)
        lengths = np.asarray(self._array(layout.LENGTHS)[:n], dtype=np.int64)
        return ids, offsets, lengths

    def _read_positions(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._array(layout.POSITIONS)[start:stop])

    def _read_pooled(self, rows: np.ndarray) -> np.ndarray:
        pooled = self._array(layout.POOLED)
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo == rows.size:
            return np.asarray(pooled[lo:hi])
        if hi - lo <= 4 * rows.size:
            return np.asarray(pooled[lo:hi])[rows - lo]
        return np.asarray(pooled.get_orthogonal_selection((rows, slice(None))))

    def close(self) -> None:
        """Drop the cached array handles (zarr opens files per read)."""
        self._arrays.clear()


def _raw_layout(array: zarr.Array) -> tuple[Path, bool] | None:
    """(chunk folder, blosc-compressed?) when ``array``'s chunk files can be decoded by hand."""
    store = array.store
    codecs = tuple(getattr(array.metadata, "codecs", ()))
    if not isinstance(store, LocalStore) or array.shards is not None or len(codecs) not in (1, 2):
        return None
    first = codecs[0]
    if not isinstance(first, BytesCodec) or len(array.chunks) != 2:
        return None
    if first.endian is not None and first.endian.value != sys.byteorder:
        return None
    if not all(isinstance(c, BloscCodec) for c in codecs[1:]) or float(array.fill_value) != 0.0:
        return None
    return Path(store.root) / array.path, len(codecs) == 2


def create_zarr_store(path: str | Path, attrs: dict[str, Any]) -> None:
    """Create an empty store atomically (built in a temporary folder, then renamed)."""
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
                compressors=codecs, fill_value=0,
            )  # fmt: skip
        group.create_array(
            layout.POOLED, shape=(0, d_model), chunks=(rows, d_model), dtype=sdt,
            compressors=codecs, fill_value=0,
        )  # fmt: skip
        group.create_array(layout.IDS, shape=(0,), chunks=(layout.INDEX_CHUNK,), dtype=str)
        for name in (layout.OFFSETS, layout.LENGTHS):
            group.create_array(name, shape=(0,), chunks=(layout.INDEX_CHUNK,), dtype="int64")
        group.attrs.update({**attrs, layout.N_SEQUENCES: 0, layout.N_POSITIONS: 0})
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def lock_folder(path: str | Path) -> int:
    """Exclusive advisory lock on a store folder (released when the fd closes or the process dies).

    Returns the fd; ConfigError when another process holds the lock.
    """
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
    """Appends to a ``.zarr`` store in place; ``commit()`` rewrites the marker atomically.

    Holds an exclusive lock on the folder while open (a second writer gets a ConfigError).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock: int | None = lock_folder(path)
        try:
            self._open(path)
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _open(self, path: str | Path) -> None:
        reader = ZarrEmbeddingStore(path)
        self.attrs = dict(reader.attrs)
        self._ids: set[str] = set(reader.ids())
        self._n = len(reader)
        self._p = reader.n_positions
        reader.close()
        self._group = _open_group(path, "r+")
        self._committed = (self._n, self._p)

    def _array(self, name: str) -> zarr.Array:
        return _member_array(self._group, name, self.path)

    def __contains__(self, sid: object) -> bool:
        return sid in self._ids

    def __len__(self) -> int:
        return self._n

    @staticmethod
    def _ensure_rows(array: zarr.Array, needed: int) -> None:
        if array.shape[0] < needed:
            grown = max(needed, int(array.shape[0] * 1.5), array.chunks[0])
            array.resize((grown, *array.shape[1:]))

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
        offsets = self._p + np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
        total = int(lens.sum())
        if not self.pooled_only:
            assert positions is not None and positions.shape[0] == total
            arr = self._array(layout.POSITIONS)
            self._ensure_rows(arr, self._p + total)
            arr[self._p : self._p + total] = positions
        arr = self._array(layout.POOLED)
        self._ensure_rows(arr, self._n + n)
        arr[self._n : self._n + n] = pooled
        for name, values in (
            (layout.IDS, np.asarray(list(ids), dtype=str)),
            (layout.OFFSETS, offsets),
            (layout.LENGTHS, lens),
        ):
            arr = self._array(name)
            self._ensure_rows(arr, self._n + n)
            arr[self._n : self._n + n] = values
        self._ids.update(ids)
        self._n += n
        self._p += total

    def commit(self) -> None:
        if (self._n, self._p) == self._committed:
            return
        self._group.attrs.update({layout.N_SEQUENCES: self._n, layout.N_POSITIONS: self._p})
        self._committed = (self._n, self._p)

    def close(self) -> None:
        """Commit, then trim the arrays to the committed sizes (plain readers see exact shapes)."""
        self.commit()
        for name, rows in (
            (layout.POSITIONS, self._p),
            (layout.POOLED, self._n),
            (layout.IDS, self._n),
            (layout.OFFSETS, self._n),
            (layout.LENGTHS, self._n),
        ):
            if name == layout.POSITIONS and self.pooled_only:
                continue
            arr = self._array(name)
            if arr.shape[0] != rows:
                arr.resize((rows, *arr.shape[1:]))
        self._unlock()

    def abandon(self) -> None:
        """Keep what is committed; uncommitted rows are overwritten by the next run."""
        self._unlock()
