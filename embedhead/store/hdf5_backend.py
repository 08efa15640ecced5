"""HDF5 backend: one ``.h5`` file holding the layout of :mod:`embedhead.store.layout`.

Single writer: only one process ever writes an ``.h5`` file (torchrun ranks each keep a Zarr
journal, rank 0 assembles). An HDF5 file can be corrupted by a process killed mid-write, so
embedhead never writes into a live ``.h5`` file. New sequences go to a crash-safe Zarr journal
in the sidecar folder ``STORE.h5.parts/`` (see :mod:`embedhead.store.zarr_backend`); when a
run finishes, the file is re-assembled from the old file plus the journal into
``.STORE.h5.tmp-*``, fsynced and renamed over ``STORE.h5`` in one step, and the journal is
removed. A killed run leaves the old file intact and its committed journal entries are reused
by the next run. Root attributes are JSON strings (``json.loads(f.attrs["backbone"])``).
Every numeric dataset carries the fletcher32 checksum filter, and ``chunk_checksums/NAME``
records the fletcher32 trailer each of its chunks was written with: a reader checks a chunk's
trailer (4 bytes read from the file) against that record the first time it reads the chunk, so
a valid chunk copied over another is refused like a damaged one (files without the record open
unchecked).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from embedhead.errors import InputError, StoreDamaged, StoreWriteError
from embedhead.store import layout
from embedhead.store.base import EmbeddingStore, RawBlock, select_block


class Hdf5EmbeddingStore(EmbeddingStore):
    """Reader of a ``.h5`` embedding store."""

    def __init__(self, path: str | Path) -> None:
        if Path(path).is_dir():
            raise InputError("is a folder, but an .h5/.hdf5 store is a file", path)
        if not Path(path).is_file():
            raise InputError("embedding store not found", path)
        self._datasets: dict[str, h5py.Dataset] = {}
        self._checks: dict[str, _ChunkCheck | None] = {}
        self._fd: int | None = None
        try:
            self._file = h5py.File(str(path), "r")
        except OSError as exc:
            raise InputError(f"not an embedding store (cannot open as HDF5: {exc})", path) from exc
        super().__init__(str(path))

    def _read_attrs(self) -> dict[str, Any]:
        if "format_version" not in self._file.attrs:
            raise InputError("not an embedding store (no format_version attribute)", self.path)
        try:
            return layout.attrs_from_hdf5(dict(self._file.attrs))
        except ValueError as exc:  # an attribute that is no JSON text
            raise InputError(
                f"unreadable root attribute (damaged store: {exc})", self.path
            ) from exc

    def _dataset(self, name: str) -> h5py.Dataset:
        node = self._datasets.get(name)
        if node is not None:
            return node
        node = self._file.get(name)
        if not isinstance(node, h5py.Dataset):
            raise InputError(f"store lacks its {name!r} dataset (damaged store)", self.path)
        self._datasets[name] = node
        return node

    def _block_rows(self) -> int:
        chunks = self._dataset(layout.POSITIONS).chunks
        return int(chunks[0]) if chunks else layout.rows_per_chunk(self.d_model, self.dtype)

    def _read_index(self, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return [], empty, empty.copy()
        ids = [s.decode() if isinstance(s, bytes) else str(s) for s in self._read(layout.IDS, 0, n)]
        offsets = np.asarray(self._read(layout.OFFSETS, 0, n), dtype=np.int64)
        lengths = np.asarray(self._read(layout.LENGTHS, 0, n), dtype=np.int64)
        return ids, offsets, lengths

    def _read(self, name: str, start: int, stop: int, rows: np.ndarray | None = None) -> Any:
        """Rows ``start:stop`` (or the rows ``rows``) of dataset ``name``; a chunk that fails
        its fletcher32 checksum or does not decode (h5py raises OSError), or whose trailer is
        not the one recorded for it (:meth:`_check_chunks`): StoreDamaged."""
        dataset = self._dataset(name)
        self._check_chunks(name, dataset, start, stop, rows)
        try:
            return np.asarray(dataset[start:stop] if rows is None else dataset[rows])
        except (OSError, ValueError, RuntimeError) as exc:
            raise self._damaged(name, start, stop, str(exc)) from exc

    def _damaged(self, name: str, start: int, stop: int, why: str) -> StoreDamaged:
        rows_text = f"rows {start}..{stop - 1}"
        return StoreDamaged(
            f"damaged store: {name} {rows_text}: {why}; the store cannot be trusted (run "
            "`embedhead store verify` for every damaged chunk; re-embed into a fresh --store)",
            self.path,
            array=name,
            rows=rows_text,
            reason=why,
        )

    def _check(self, name: str) -> _ChunkCheck | None:
        """The recorded trailers of dataset ``name`` (None when the file has no record)."""
        if name not in self._checks:
            record = self._file.get(f"{layout.CHUNK_CHECKSUMS}/{name}")
            if not isinstance(record, h5py.Dataset):
                self._checks[name] = None
            else:
                try:
                    recorded = np.asarray(record[:], dtype=np.uint32)
                except (OSError, ValueError, RuntimeError) as exc:
                    raise StoreDamaged(
                        f"damaged store: {layout.CHUNK_CHECKSUMS}/{name} is unreadable ({exc})",
                        self.path,
                        array=f"{layout.CHUNK_CHECKSUMS}/{name}",
                        reason=str(exc),
                    ) from exc
                self._checks[name] = _ChunkCheck(recorded, np.zeros(recorded.size, dtype=bool))
        return self._checks[name]

    def _check_chunks(
        self, name: str, dataset: h5py.Dataset, start: int, stop: int, rows: np.ndarray | None
    ) -> None:
        """Refuse a chunk of rows ``start:stop`` (or ``rows``) whose fletcher32 trailer is not
        the one recorded for it; each chunk is checked once per open store (4 bytes read)."""
        check = self._check(name)
        if check is None or not dataset.chunks or stop <= start:
            return
        per = int(dataset.chunks[0])
        wanted = (
            np.arange(start // per, -(-stop // per))
            if rows is None
            else np.unique(np.asarray(rows, dtype=np.int64) // per)
        )
        inside = wanted[wanted < check.done.size]
        todo = np.concatenate((inside[~check.done[inside]], wanted[wanted >= check.done.size]))
        for k in todo.tolist():
            lo, hi = k * per, min((k + 1) * per, int(dataset.shape[0]))
            if k >= check.recorded.size:
                raise self._damaged(name, lo, hi, f"chunk {k} has no recorded checksum")
            got = self._trailer(dataset, lo)
            if got is None:
                raise self._damaged(name, lo, hi, f"chunk {k} is missing")
            if got != int(check.recorded[k]):
                raise self._damaged(
                    name,
                    lo,
                    hi,
                    f"chunk {k} is not the chunk written there (fletcher32 {got:08x}, written "
                    f"as {int(check.recorded[k]):08x}): a chunk copied over another?",
                )
            check.done[k] = True

    def _trailer(self, dataset: h5py.Dataset, row: int) -> int | None:
        """The last 4 bytes (little-endian) of the stored chunk starting at ``row``; None when
        the chunk is not allocated."""
        info = dataset.id.get_chunk_info_by_coord((row,) + (0,) * (dataset.ndim - 1))
        if info.byte_offset is None or not info.size:
            return None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return _stored_trailer(self._fd, info)

    def check_chunk_identity(self) -> None:
        """Cheap check of every recorded chunk (an append, before any embedding): its trailer
        is the one written there (4 bytes read per chunk). StoreDamaged for the first not."""
        for name in _CHECKED:
            if name in self._file:
                dataset = self._dataset(name)
                self._check_chunks(name, dataset, 0, int(dataset.shape[0]), None)

    def chunk_identity_known(self) -> bool:
        """True when reads check chunk identity (the file has its ``chunk_checksums``)."""
        name = layout.POOLED if self.pooled_only else layout.POSITIONS
        return self._check(name) is not None

    def _array_rows(self, name: str) -> int:
        return int(self._dataset(name).shape[0])

    def _read_positions(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._read(layout.POSITIONS, start, stop))

    def _read_pooled(self, rows: np.ndarray) -> np.ndarray:
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo <= 4 * rows.size:
            block = np.asarray(self._read(layout.POOLED, lo, hi))
            return block if hi - lo == rows.size else block[rows - lo]
        return np.asarray(self._read(layout.POOLED, lo, hi, rows))

    def content_hashes(self) -> dict[str, str] | None:
        if layout.HASHES not in self._file:
            return None
        raw = self._read(layout.HASHES, 0, len(self)) if len(self) else []
        texts = [h.decode() if isinstance(h, bytes) else str(h) for h in raw]
        return {sid: h for sid, h in zip(self._ids, texts, strict=True) if h}

    def chunk_problems(self) -> list[str]:
        """Read every chunk of every dataset; one line per damaged chunk (array, rows)."""
        problems: list[str] = []
        n = len(self)
        names = [layout.IDS, layout.OFFSETS, layout.LENGTHS, layout.POOLED]
        for name in names + ([] if self.pooled_only else [layout.POSITIONS]):
            dataset = self._dataset(name)
            end = n if name != layout.POSITIONS else self.rows_end()
            rows = int(dataset.chunks[0]) if dataset.chunks else max(1, end)
            for k in range(-(-end // rows)):
                lo, hi = k * rows, min(end, (k + 1) * rows)
                try:
                    self._read(name, lo, hi)
                except StoreDamaged as exc:
                    problems.append(f"{name} rows {lo}..{hi - 1}: {exc.reason}")
        return problems

    def close(self) -> None:
        self._datasets.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._file.close()


@dataclass(frozen=True)
class _ChunkCheck:
    """Recorded fletcher32 trailers of one dataset's chunks, and which chunks were checked."""

    recorded: np.ndarray  # (C,) uint32
    done: np.ndarray  # (C,) bool, set as chunks pass


_CHECKED = (layout.POSITIONS, layout.POOLED, layout.OFFSETS, layout.LENGTHS)
"""The fletcher32 datasets whose chunk trailers ``chunk_checksums`` records."""


def _stored_trailer(fd: int, info: Any) -> int:
    """The last 4 bytes (little-endian) of the stored chunk ``info`` (h5py's StoreInfo) of the
    file open at ``fd``: its fletcher32 checksum."""
    return int.from_bytes(os.pread(fd, 4, info.byte_offset + info.size - 4), "little")


def _chunk_trailers(dataset: h5py.Dataset, fd: int) -> np.ndarray:
    """(C,) uint32: the fletcher32 trailer (last 4 bytes) of each chunk of a flushed dataset
    along axis 0, read through ``fd`` (the file, opened for reading); 0 for a chunk never
    written."""
    per = int(dataset.chunks[0])
    out = np.zeros(-(-int(dataset.shape[0]) // per), dtype=np.uint32)

    def one(info: Any) -> None:
        out[info.chunk_offset[0] // per] = _stored_trailer(fd, info)

    if out.size:
        dataset.id.chunk_iter(one)
    return out


_H5_CODECS: dict[str, dict[str, Any]] = {
    "zstd": {"compression": "gzip", "compression_opts": 4, "shuffle": True, "fletcher32": True},
    "lz4": {"compression": "lzf", "shuffle": True, "fletcher32": True},
    "none": {"fletcher32": True},
}
"""Every dataset carries HDF5's fletcher32 checksum filter (a damaged chunk fails to read)."""


def raw_blocks(store: EmbeddingStore, max_positions: int = 1 << 20) -> Iterator[RawBlock]:
    """Storage-order blocks of encoded data with *compacted* positions (gaps and padding of a
    format-2 store dropped): ids, lengths, positions (sum(lengths), D) or None, pooled."""
    ids, offsets, lengths = store.ids(), store.offsets(), store.lengths()
    n = len(ids)
    start = 0
    while start < n:
        stop, first = start + 1, int(offsets[start])
        while stop < n and int(offsets[stop] + lengths[stop]) - first <= max_positions:
            stop += 1
        rows = np.arange(start, stop, dtype=np.int64)
        pos = None
        if not store.pooled_only:
            last = int(max(offsets[start:stop] + lengths[start:stop]))
            block = store._read_positions(first, last)
            pos = np.concatenate(
                [block[int(o) - first : int(o) - first + int(k)]
                 for o, k in zip(offsets[start:stop], lengths[start:stop], strict=True)]
            )  # fmt: skip
        yield ids[start:stop], lengths[start:stop], pos, store._read_pooled(rows)
        start = stop


def _append(ds: h5py.Dataset, values: np.ndarray) -> None:
    start = ds.shape[0]
    ds.resize((start + values.shape[0], *ds.shape[1:]))
    ds[start:] = values


def _record_trailers(f: h5py.File, path: Path) -> None:
    """Write ``chunk_checksums/NAME`` for every fletcher32 dataset of ``f`` (open at ``path``)."""
    f.flush()
    fd = os.open(path, os.O_RDONLY)
    try:
        tables = {
            name: _chunk_trailers(f[name], fd)
            for name in _CHECKED
            if name in f and f[name].fletcher32
        }
    finally:
        os.close(fd)
    for name, table in tables.items():
        f.create_dataset(
            f"{layout.CHUNK_CHECKSUMS}/{name}", data=table, dtype="<u4", maxshape=(None,),
            chunks=(max(1, min(table.size, layout.INDEX_CHUNK)),), fletcher32=True,
        )  # fmt: skip


def publish(tmp: Path, target: Path) -> None:
    """fsync ``tmp``, rename it over ``target`` in one step, fsync the folder."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def assemble_hdf5(
    target: str | Path, attrs: dict[str, Any], sources: Sequence[EmbeddingStore]
) -> tuple[int, int]:
    """Write ``target`` from ``sources`` (first occurrence of an id wins) via temp + rename.

    Returns (n_sequences, n_positions) of the new file.
    """
    target = Path(target)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a killed assembly
        stale.unlink(missing_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    d_model, dtype = int(attrs["d_model"]), str(attrs["dtype"])
    rows = layout.rows_per_chunk(d_model, dtype)
    sdt = layout.storage_dtype(dtype)
    pooled_only = bool(attrs["pooled_only"])
    seen: set[str] = set()
    n = p = 0
    try:
        with h5py.File(tmp, "w") as f:
            packed = _H5_CODECS[str(attrs.get("compression", layout.DEFAULT_COMPRESSION))]
            if not pooled_only:
                f.create_dataset(
                    layout.POSITIONS, shape=(0, d_model), maxshape=(None, d_model),
                    chunks=(rows, d_model), dtype=sdt, **packed,
                )  # fmt: skip
            f.create_dataset(
                layout.POOLED, shape=(0, d_model), maxshape=(None, d_model),
                chunks=(rows, d_model), dtype=sdt, **packed,
            )  # fmt: skip
            f.create_dataset(
                layout.IDS, shape=(0,), maxshape=(None,), chunks=(layout.INDEX_CHUNK,),
                dtype=h5py.string_dtype("utf-8"),
                **{k: v for k, v in packed.items() if k != "fletcher32"},  # not for strings
            )  # fmt: skip
            for name in (layout.OFFSETS, layout.LENGTHS):
                f.create_dataset(
                    name, shape=(0,), maxshape=(None,), chunks=(layout.INDEX_CHUNK,),
                    dtype="int64", **packed,
                )  # fmt: skip
            hashes = [source.content_hashes() for source in sources]
            if any(h is not None for h in hashes):
                f.create_dataset(
                    layout.HASHES, shape=(0,), maxshape=(None,), chunks=(layout.INDEX_CHUNK,),
                    dtype=h5py.string_dtype("utf-8"),
                )  # fmt: skip
            for source, known in zip(sources, hashes, strict=True):
                for block in raw_blocks(source):
                    ids, lens, positions, pooled = select_block(
                        block, [sid not in seen for sid in block[0]]
                    )
                    if not ids:
                        continue
                    seen.update(ids)
                    if not pooled_only:
                        assert positions is not None
                        _append(f[layout.POSITIONS], positions)
                    offsets = p + np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
                    _append(f[layout.POOLED], pooled)
                    _append(f[layout.IDS], np.asarray(ids, dtype=object))
                    _append(f[layout.OFFSETS], offsets)
                    _append(f[layout.LENGTHS], lens)
                    if layout.HASHES in f:
                        got = [(known or {}).get(sid, "") for sid in ids]
                        _append(f[layout.HASHES], np.asarray(got, dtype=object))
                    n += len(ids)
                    p += int(lens.sum())
            final = {**attrs, layout.N_SEQUENCES: n, layout.N_POSITIONS: p}
            for key, value in layout.attrs_to_hdf5(final).items():
                f.attrs[key] = value
            _record_trailers(f, tmp)
        publish(tmp, target)  # the h5py file is closed before this (and before any raise)
    except OSError as exc:  # disk full, permission denied, the temporary file vanished
        what = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StoreWriteError(
            f"{target}: cannot write the store: {what}. The old file and the journal are "
            "kept; free space / fix permissions, then rerun the same command to finish"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return n, p
