"""Backend-independent reader and writer interfaces of an embedding store.

Reader (:class:`EmbeddingStore`): ``get(id) -> (L, D) float32``, ``get_pooled(ids) -> (N, D)
float32``, ``iter_chunks(...)`` streaming sequential scans in storage order, and the
chunk-granular primitives of the training reader: ``block_rows`` (rows of ``positions`` per
stored chunk or shard), ``read_block(k) -> (<= block_rows, D)`` raw rows of block ``k`` (one
whole-chunk read, storage dtype), ``rows_of(ids) -> (N,) int64`` storage rows. Backends
implement five primitives (attributes, committed index, a row range of ``positions``, rows of
``pooled``, the block size); everything else (decoding, lookup, chunked scans) lives here.

Writer (:class:`StoreWriter`): ``write(ids, lengths, positions, pooled)`` appends sequences,
``commit()`` makes everything written so far visible at once, ``close()`` finalises.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from embedhead.errors import ConfigError, InputError, StoreDamaged
from embedhead.store import layout


@dataclass(frozen=True)
class StoreChunk:
    """A block of sequences read in one go.

    ``embeddings[i]``: (lengths[i], D) float32 (empty tuple when positions were not asked for
    or the store is pooled-only); ``pooled``: (n, D) float32.
    """

    ids: tuple[str, ...]
    lengths: tuple[int, ...]
    embeddings: tuple[np.ndarray, ...]
    pooled: np.ndarray


class _StoreAttrs:
    """What readers and writers both derive from a store's root attributes."""

    attrs: dict[str, Any]

    @property
    def dtype(self) -> str:
        """Logical storage dtype: float16, bfloat16 or float32 (reads always give float32)."""
        return str(self.attrs["dtype"])

    @property
    def pooled_only(self) -> bool:
        """True when the store holds pooled vectors only (no per-position embeddings)."""
        return bool(self.attrs["pooled_only"])


_ATTR_TYPES: tuple[tuple[str, type], ...] = (
    ("backbone", dict),
    ("dtype", str),
    ("d_model", int),
    ("pooled_only", bool),
    (layout.N_SEQUENCES, int),
    (layout.N_POSITIONS, int),
)


def _check_attrs(attrs: dict[str, Any], path: str) -> int:
    """InputError naming a missing or ill-typed root attribute; returns ``n_sequences``."""
    for key, kind in _ATTR_TYPES:
        if key not in attrs:
            raise InputError(f"store root attribute {key!r} is missing (damaged store)", path)
        value = attrs[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InputError(
                f"store root attribute {key}={value!r} is not of type {kind.__name__} "
                "(damaged store)",
                path,
            )
    dtype = attrs["dtype"]
    if dtype not in layout.DTYPES:
        raise InputError(f"store root attribute dtype={dtype!r} is unknown (damaged store)", path)
    if attrs.get("storage_dtype", layout.STORAGE_DTYPES[dtype]) != layout.STORAGE_DTYPES[dtype]:
        raise InputError(
            f"store root attributes disagree: dtype={dtype!r} but "
            f"storage_dtype={attrs['storage_dtype']!r} (damaged store)",
            path,
        )
    for key, least in (("d_model", 1), (layout.N_SEQUENCES, 0), (layout.N_POSITIONS, 0)):
        if int(attrs[key]) < least:
            raise InputError(
                f"store root attribute {key}={attrs[key]!r} is out of range (damaged store)", path
            )
    return int(attrs[layout.N_SEQUENCES])


class EmbeddingStore(_StoreAttrs, abc.ABC):
    """Read-only view of the committed part of a store (thread-compatible, not thread-safe)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.attrs: dict[str, Any] = self._read_attrs()
        version = self.attrs.get("format_version")
        if version not in layout.READABLE_FORMATS:
            raise InputError(
                f"unsupported store format_version {version!r} "
                f"(this embedhead reads {', '.join(map(str, layout.READABLE_FORMATS))})",
                path,
            )
        n = _check_attrs(self.attrs, path)
        try:
            ids, offsets, lengths = self._read_index(n)
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(f"cannot read the store index (damaged store: {exc})", path) from exc
        if not len(ids) == offsets.size == lengths.size == n:
            raise InputError(
                f"store index holds {min(len(ids), offsets.size, lengths.size)} entries but "
                f"n_sequences says {n} (damaged store)",
                path,
            )
        self._ids: list[str] = ids
        self._offsets = offsets
        self._lengths = lengths
        self._row: dict[str, int] = {sid: i for i, sid in enumerate(ids)}
        if len(self._row) != len(ids):
            raise StoreDamaged("store index holds duplicate ids (damaged store)", path)
        self._check_index()

    def _check_index(self) -> None:
        """Cheap structural checks of the index (on open): StoreDamaged naming the entries.

        Every length positive, offsets non-negative, increasing and non-overlapping (format 2
        leaves gaps, never overlaps), every sequence within ``positions`` and every entry
        within ``pooled``; ``n_positions`` not past the rows stored.
        """
        n = len(self._ids)
        if n == 0:
            return
        offsets, lengths = self._offsets, self._lengths
        bad = np.flatnonzero(lengths <= 0)
        if bad.size:
            raise self._bad_entries(bad, "length <= 0 (a zeroed or missing lengths chunk?)")
        ends = offsets + lengths
        bad = np.flatnonzero(offsets < 0)
        if bad.size:
            raise self._bad_entries(bad, "negative offset")
        if not self.pooled_only:
            bad = np.flatnonzero(offsets[1:] < ends[:-1]) + 1
            if bad.size:
                raise self._bad_entries(bad, "rows overlap the previous entry's rows")
            rows = self._array_rows(layout.POSITIONS)
            bad = np.flatnonzero(ends > rows)
            if bad.size:
                raise self._bad_entries(bad, f"rows past the end of positions ({rows} rows)")
        pooled, folded = self._array_rows(layout.POOLED), self._pooled_entries()
        if pooled < folded:
            raise StoreDamaged(
                f"store index holds {folded} entries but pooled only {pooled} rows (damaged store)",
                self.path,
            )

    def _pooled_entries(self) -> int:
        """Index entries whose pooled rows live in the ``pooled`` array (Zarr: the folded)."""
        return len(self._ids)

    def _bad_entries(self, bad: np.ndarray, why: str) -> StoreDamaged:
        first = int(bad[0])
        return StoreDamaged(
            f"damaged store index: {bad.size} entries (first: #{first} {self._ids[first]!r}, "
            f"offset {int(self._offsets[first])}, length {int(self._lengths[first])}): {why}",
            self.path,
            array="index",
            rows=f"{first}",
        )

    # -- backend primitives ----------------------------------------------------------------
    @abc.abstractmethod
    def _read_attrs(self) -> dict[str, Any]:
        """Root attributes as plain JSON values."""

    @abc.abstractmethod
    def _read_index(self, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """First ``n`` entries of ids, offsets (int64), lengths (int64)."""

    @abc.abstractmethod
    def _read_positions(self, start: int, stop: int) -> np.ndarray:
        """Raw rows ``start:stop`` of ``positions`` (storage dtype)."""

    @abc.abstractmethod
    def _read_pooled(self, rows: np.ndarray) -> np.ndarray:
        """Raw rows of ``pooled`` at sorted unique indices ``rows``."""

    @abc.abstractmethod
    def _block_rows(self) -> int:
        """Rows of ``positions`` per stored chunk (or shard): the unit one read decodes."""

    @abc.abstractmethod
    def _array_rows(self, name: str) -> int:
        """Rows (first dimension) of stored array ``name``; InputError when it is absent."""

    def chunk_problems(self) -> list[str]:
        """Read every stored chunk of every array: one line per damaged chunk (array, rows)."""
        return []

    def chunk_identity_known(self) -> bool:
        """True when reads check that each ``positions`` chunk is the one written there
        (Zarr stores with ``chunk_crcs``, HDF5 files with ``chunk_checksums``); False for
        stores without that record."""
        return False

    def check_chunk_identity(self) -> None:
        """Cheap check (a few bytes per chunk) that every chunk committed rows use is the one
        written there, before a writer trusts them; StoreDamaged for the first that is not.
        A no-op for stores without the record."""

    def content_hashes(self) -> dict[str, str] | None:
        """id -> content hash (:func:`layout.content_hash`) of every entry that has one; None
        for a store written before hashes existed (no ``hashes`` array)."""
        return None

    def rows_used(self, start: int, stop: int) -> bool:
        """True when a committed sequence has rows in ``positions[start:stop]`` (O(log N))."""
        spans = getattr(self, "_spans", None)
        if spans is None:
            order = np.argsort(self._offsets, kind="stable")
            spans = self._spans = (self._offsets[order], (self._offsets + self._lengths)[order])
        offsets, ends = spans
        i = int(np.searchsorted(ends, start, side="right"))
        return i < offsets.size and int(offsets[i]) < stop

    @abc.abstractmethod
    def close(self) -> None:
        """Release file handles."""

    # -- public API ------------------------------------------------------------------------
    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def identity(self) -> dict[str, Any]:
        """Backbone identity dict (name, config, weight_hash, random_init)."""
        return dict(self.attrs["backbone"])

    @property
    def d_model(self) -> int:
        return int(self.attrs["d_model"])

    @property
    def n_positions(self) -> int:
        return int(self.attrs[layout.N_POSITIONS])

    def ids(self) -> list[str]:
        """Committed sequence ids in storage order."""
        return list(self._ids)

    def __contains__(self, sid: object) -> bool:
        return sid in self._row

    def __len__(self) -> int:
        return len(self._ids)

    def _index_of(self, sid: str) -> int:
        try:
            return self._row[sid]
        except KeyError:
            raise InputError(f"sequence {sid!r} is not in the store", self.path) from None

    def length(self, sid: str) -> int:
        """Number of stored positions of sequence ``sid``."""
        return int(self._lengths[self._index_of(sid)])

    def lengths(self) -> np.ndarray:
        """(N,) int64 lengths in storage order."""
        return self._lengths.copy()

    def offsets(self) -> np.ndarray:
        """(N,) int64 offsets into ``positions`` in storage order."""
        return self._offsets.copy()

    def rows_of(self, sids: Sequence[str]) -> np.ndarray:
        """(len(sids),) int64 storage rows (index entries) of ``sids``; InputError if absent."""
        return np.fromiter((self._index_of(s) for s in sids), dtype=np.int64, count=len(sids))

    @property
    def block_rows(self) -> int:
        """Rows of ``positions`` per read block (a stored chunk or shard; 1 for pooled-only)."""
        return 1 if self.pooled_only else max(1, int(self._block_rows()))

    def rows_end(self) -> int:
        """One past the last row of ``positions`` any committed sequence uses."""
        end = getattr(self, "_rows_end", None)
        if end is None:
            end = int((self._offsets + self._lengths).max()) if len(self._ids) else 0
            self._rows_end: int | None = end
        return end

    def n_blocks(self) -> int:
        """Number of read blocks covering the committed rows of ``positions``."""
        return -(-self.rows_end() // self.block_rows)

    def read_block(self, k: int, out: np.ndarray | None = None) -> np.ndarray:
        """Raw (storage dtype) rows ``k*R : min((k+1)*R, rows_end())`` of ``positions``.

        ``R`` = :attr:`block_rows`, so the read covers whole stored chunks and decodes each
        once. Thread-safe for concurrent calls with distinct or equal ``k`` (the training
        reader decodes blocks in a thread pool); decode with :func:`layout.decode`.
        ``out``: a writable array of exactly that shape and the raw dtype to fill and return
        (a backend decodes a whole stored chunk straight into it when it can: no temporary).
        """
        self._require_positions()
        rows, end = self.block_rows, self.rows_end()
        start = int(k) * rows
        if not 0 <= start < end:
            raise InputError(f"block {k} is outside the {self.n_blocks()} blocks", self.path)
        stop = min(start + rows, end)
        block = self._read_block(int(k), start, stop, out)
        if out is None or block is out:
            return block
        np.copyto(out, block, casting="no")
        return out

    def _read_block(
        self, k: int, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows ``start:stop`` = block ``k`` of ``positions`` (backends may read chunks raw,
        and decode into ``out`` when given; otherwise the caller copies)."""
        return self._read_positions(start, stop)

    def _require_positions(self) -> None:
        if self.pooled_only:
            raise ConfigError(
                f"{self.path}: store was written with --pooled-only and holds no per-position "
                "embeddings"
            )

    def get(self, sid: str) -> np.ndarray:
        """Per-position embeddings of one sequence: (L, D) float32."""
        self._require_positions()
        i = self._index_of(sid)
        start = int(self._offsets[i])
        return layout.decode(self._read_positions(start, start + int(self._lengths[i])), self.dtype)

    def get_many(self, sids: Sequence[str]) -> list[np.ndarray]:
        """Per-position embeddings of several sequences, in the order asked."""
        out: dict[str, np.ndarray] = {}
        for chunk in self.iter_chunks(list(dict.fromkeys(sids))):
            out.update(zip(chunk.ids, chunk.embeddings, strict=True))
        return [out[s] for s in sids]

    def get_pooled(self, sids: Sequence[str]) -> np.ndarray:
        """Pooled embeddings: (len(sids), D) float32, rows in the order asked."""
        idx = np.fromiter((self._index_of(s) for s in sids), dtype=np.int64, count=len(sids))
        if idx.size == 0:
            return np.zeros((0, self.d_model), dtype=np.float32)
        uniq, inverse = np.unique(idx, return_inverse=True)
        return layout.decode(self._read_pooled(uniq), self.dtype)[inverse]

    def iter_chunks(
        self,
        sids: Iterable[str] | None = None,
        *,
        max_positions: int = 1 << 18,
        max_sequences: int = 4096,
        positions: bool = True,
    ) -> Iterator[StoreChunk]:
        """Stream sequences (all, or ``sids``) in storage order, one contiguous read per chunk.

        A chunk spans at most ``max_positions`` rows (a longer sequence forms a chunk alone)
        and at most ``max_sequences`` sequences; memory stays bounded whatever the store size.
        ``positions=False`` (or a pooled-only store) yields pooled rows only.
        """
        if positions:
            self._require_positions()
        if sids is None:
            order = np.arange(len(self._ids), dtype=np.int64)
        else:
            order = np.unique(np.fromiter((self._index_of(s) for s in sids), dtype=np.int64))
        for start, stop in self._chunk_bounds(order, max_positions, max_sequences):
            yield self._read_chunk(order[start:stop], positions)

    def _chunk_bounds(
        self, order: np.ndarray, max_positions: int, max_sequences: int
    ) -> Iterator[tuple[int, int]]:
        """Cut sorted store rows ``order`` into ``order[start:stop]`` runs read in one go.

        A run spans at most ``max_positions`` rows of ``positions`` from its first sequence's
        offset (a longer sequence forms a run alone) and at most ``max_sequences`` sequences.
        """
        start = 0
        while start < order.size:
            stop = start + 1
            first = int(self._offsets[order[start]])
            while stop < order.size and stop - start < max_sequences:
                j = order[stop]
                if int(self._offsets[j] + self._lengths[j]) - first > max_positions:
                    break
                stop += 1
            yield start, stop
            start = stop

    def _read_chunk(self, rows: np.ndarray, positions: bool) -> StoreChunk:
        ids = tuple(self._ids[int(i)] for i in rows)
        lengths = tuple(int(self._lengths[i]) for i in rows)
        pooled = layout.decode(self._read_pooled(rows), self.dtype)
        embeddings: tuple[np.ndarray, ...] = ()
        if positions:
            first = int(self._offsets[rows[0]])
            last = int(self._offsets[rows[-1]] + self._lengths[rows[-1]])
            block = layout.decode(self._read_positions(first, last), self.dtype)
            embeddings = tuple(
                block[int(self._offsets[i]) - first : int(self._offsets[i]) - first + n]
                for i, n in zip(rows, lengths, strict=True)
            )
        return StoreChunk(ids=ids, lengths=lengths, embeddings=embeddings, pooled=pooled)

    def iter_raw(self, max_positions: int = 1 << 20) -> Iterator[RawBlock]:
        """Storage-order blocks of raw (encoded) data: ids, lengths, positions or None, pooled.

        Used to merge stores without decoding; positions rows of a block are contiguous.
        """
        n = len(self._ids)
        for start, stop in self._chunk_bounds(np.arange(n, dtype=np.int64), max_positions, n):
            rows = np.arange(start, stop, dtype=np.int64)
            first = int(self._offsets[start])
            last = int(self._offsets[stop - 1] + self._lengths[stop - 1])
            pos = None if self.pooled_only else self._read_positions(first, last)
            yield self._ids[start:stop], self._lengths[start:stop], pos, self._read_pooled(rows)


RawBlock = tuple[list[str], np.ndarray, "np.ndarray | None", np.ndarray]
"""ids, lengths (n,), positions (sum(lengths), D) or None, pooled (n, D): encoded data."""


def select_block(block: RawBlock, keep: Sequence[bool]) -> RawBlock:
    """The sequences of a raw block whose ``keep`` flag is set (positions sliced to match)."""
    ids, lengths, positions, pooled = block
    if all(keep):
        return block
    mask = np.asarray(keep, dtype=bool)
    lens = np.asarray(lengths, dtype=np.int64)
    if positions is not None:
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        parts = [positions[s : s + n] for s, n, k in zip(starts, lens, mask, strict=True) if k]
        positions = np.concatenate(parts) if parts else positions[:0]
    kept = [sid for sid, k in zip(ids, mask, strict=True) if k]
    return kept, lens[mask], positions, pooled[mask]


class StoreWriter(_StoreAttrs, abc.ABC):
    """Appends sequences to a store; nothing is visible to readers before ``commit()``.

    Planned writes (``embed``): ``reserve(rows)`` returns the first row of a chunk-aligned
    region of ``positions`` (``chunk_rows`` per chunk); ``write_region`` writes whole chunks,
    then ``commit_batch`` commits each batch whose rows they hold.
    """

    chunk_rows: int = 1

    def set_content_hashes(self, hashes: dict[str, str]) -> None:
        """id -> content hash of the sequences this run may write (stored with each commit)."""

    @abc.abstractmethod
    def reserve(self, rows: int) -> int:
        """Allocate a chunk-aligned region of at least ``rows`` rows; returns its first row."""

    @abc.abstractmethod
    def write_region(self, start: int, region: np.ndarray) -> None:
        """Write whole chunks ``region`` (k * chunk_rows, D) at chunk-aligned row ``start``
        (thread-safe; disjoint regions may be written concurrently)."""

    @abc.abstractmethod
    def commit_batch(
        self,
        key: str,
        ids: Sequence[str],
        offsets: np.ndarray,
        lengths: np.ndarray,
        pooled: np.ndarray,
    ) -> None:
        """Commit batch ``key`` whose rows are written: ids, absolute offsets, lengths and
        encoded pooled rows (thread-safe; batches commit in any order)."""

    @abc.abstractmethod
    def __contains__(self, sid: object) -> bool:
        """True when ``sid`` is committed (or written and pending commit) in this writer."""

    @abc.abstractmethod
    def write_raw(
        self,
        ids: Sequence[str],
        lengths: Sequence[int] | np.ndarray,
        positions: np.ndarray | None,
        pooled: np.ndarray,
    ) -> None:
        """Append already-encoded data: positions (sum(lengths), D) or None, pooled (n, D)."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Atomically make every written sequence visible (the crash-consistency point)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Commit, finalise (trim / assemble) and release the store."""

    @abc.abstractmethod
    def abandon(self) -> None:
        """Release without finalising after an error: committed data stays, ready to resume."""

    def write(
        self,
        ids: Sequence[str],
        positions: Sequence[np.ndarray],
        pooled: np.ndarray,
    ) -> None:
        """Append float32 data: ``positions[i]`` (L_i, D), ``pooled`` (n, D); encodes it."""
        lengths = [int(p.shape[0]) for p in positions]
        block = None
        if not self.pooled_only:
            block = layout.encode(np.concatenate(list(positions), axis=0), self.dtype)
        self.write_raw(ids, lengths, block, layout.encode(pooled, self.dtype))

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()
