"""Head datasets: the pairs of one dataset split joined with their embeddings from a store.

Shapes (B = batch size, D = ``store.d_model``, L = longest sequence of the batch)::

    thesis head: x1, x2 (B, L, D) float32 with pads zeroed; m1, m2 (B, L) bool (True = real)
    pooled head: x1, x2 (B, D) float32; m1 = m2 = None
    targets (B,) float32: the label (classification) or ``norm_score`` (regression)

Two ways to feed the thesis head, giving identical batches:

* in memory (:class:`InMemorySequences`): every needed sequence is read once into one flat
  ``(T, D)`` tensor (on CPU or GPU) with offsets; batches are gathered with one index op (row
  copies on the CPU). A real store is read whole stored chunk by whole stored chunk, each needed
  chunk once, decoded by a thread pool straight into that tensor (:class:`BlockReader`);
* streamed (:class:`ChunkedSequences`): :meth:`PairSource.batches` knows every batch it will
  serve, so their reads are planned up front (:class:`PlannedReads`): whole stored chunks of
  ``positions`` are read and decoded by a thread pool when a batch needs rows not yet held;
  from each chunk read, the rows of every sequence a *later* batch needs are kept too, and
  kept rows are dropped after their last use or, when the budget is full, farthest next use
  first. The budget of kept rows (storage dtype) defaults to what two shuffle buckets of
  batches read (:func:`plan_budget`, at most :data:`BLOCK_CACHE_BYTES`), so memory follows
  batch size and sequence lengths, not the dataset size. The chunks the next batch reads are
  read ahead while the caller trains on this one. For a CPU model batches are assembled in
  float32 (each piece widened as it is copied in); for an accelerator in the storage dtype,
  widened to float32 on the device by the training thread (half the bytes cross the bus).
  A background thread builds the next :data:`PREFETCH_BATCHES` batches while
  the caller trains on this one when that helps (:func:`background_depth`: on an accelerator,
  or when torch leaves a CPU core free) (:func:`in_background`: one producer, a bounded
  queue; the same batches in the same order, so results are bit-identical with or without
  it). Single batches (:meth:`PairSource.batch`) use an LRU
  cache of whole raw chunks instead. Stores without chunk access (test stand-ins) fall back
  to per-sequence reads (:class:`StreamedSequences`), also built in the background.

Epoch order (:meth:`PairSource.epoch_order`, used by training): shuffled batches drawn from
*shuffle buckets* of neighbouring pairs. Pairs are sorted by where their sequences sit in the
store (the smaller storage row of the two; ties broken at random), cut into buckets of
:data:`BUCKET_BATCHES` batches, shuffled inside each bucket, and the buckets are visited in a
random order; the ``N % batch_size`` leftover pairs (a random few) form the final short batch.
Every batch is a random draw of neighbours, every epoch a new order, and a streamed epoch reads
each stored chunk about once; a random partner's chunk read also serves the later batches of
the sequences stored beside it (planned reads), so random-partner negatives cost extra chunk
reads only when the budget is much smaller than the rows a bucket reads. Seeded and
deterministic (a ``torch.Generator``), the same for both loaders, so in-memory and streamed
training give identical results. A split smaller than one bucket is simply fully shuffled.

Regression uses only pairs whose ``norm_score`` is finite: negatives (and any positive without a
score) have NaN scores and are left out of every split.
"""

from __future__ import annotations

import heapq
import os
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch

from embedhead.dataset import PAIRS_FILE, Dataset, PairRecord
from embedhead.errors import ConfigError, IncompatibleError, InputError
from embedhead.heads.config import LOADERS as LOADERS

READ_BLOCK = 4096  # sequences per bulk store read while loading into memory (stand-in stores)
BUCKET_BATCHES = 8  # batches per shuffle bucket of neighbouring pairs (epoch order)
PREFETCH_BATCHES = 2  # batches built ahead while streaming (see background_depth)
BLOCK_CACHE_BYTES = 256 << 20  # most rows (or raw chunks) a streamed reader keeps
BUDGET_BUCKETS = 2  # shuffle buckets of rows a planned streamed read keeps by default
READ_THREADS = max(1, min(8, os.cpu_count() or 1))  # threads fetching + decoding chunks
SERIAL_ELEMENTS = 32768  # torch's grain size: smaller copies run in the calling thread
MAX_LISTED_MISSING = 5
STORE_OPTIONS = (
    "backbone_key",
    "dtype",
    "precision",
    "max_length",
    "pooled_only",
)  # kept in run.json


@runtime_checkable
class StoreReader(Protocol):
    """The part of ``embedhead.store.EmbeddingStore`` the heads use."""

    @property
    def identity(self) -> dict[str, Any]: ...

    @property
    def d_model(self) -> int: ...

    def __contains__(self, seq_id: object) -> bool: ...

    def length(self, seq_id: str) -> int: ...

    def get(self, seq_id: str) -> np.ndarray: ...

    def get_pooled(self, ids: Sequence[str]) -> np.ndarray: ...


def read_many(store: StoreReader, ids: Sequence[str]) -> list[np.ndarray]:
    """Per-position embeddings of ``ids`` as (L_i, D) float32 arrays, via ``get_many`` if any.

    Used for bulk loading (``get_many`` reads in storage order, contiguous runs at once).
    """
    get_many = getattr(store, "get_many", None)
    arrays = list(get_many(list(ids))) if get_many is not None else [store.get(i) for i in ids]
    return [np.asarray(a, dtype=np.float32) for a in arrays]


@dataclass(frozen=True)
class SplitPairs:
    """The pairs of one split: indices into a shared list of sequence ids, and targets."""

    name: str
    pair_ids: tuple[str, ...]
    left: np.ndarray  # (N,) int64 index of seq1 in the shared id list
    right: np.ndarray  # (N,) int64 index of seq2
    targets: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64
    locality: np.ndarray | None = None  # (N,) int64 storage position key (None: table order)

    def __len__(self) -> int:
        return len(self.pair_ids)

    def subset(self, index: np.ndarray) -> SplitPairs:
        """The pairs at ``index`` (order kept as given)."""
        return SplitPairs(
            self.name,
            tuple(self.pair_ids[i] for i in index),
            self.left[index],
            self.right[index],
            self.targets[index],
            self.labels[index],
            None if self.locality is None else self.locality[index],
        )


def split_records(dataset: Dataset, split: str, task: str) -> list[PairRecord]:
    """Records of a split usable for ``task``; a clear error when there are none."""
    records = dataset.split(split)
    where = dataset.path / PAIRS_FILE
    if not records:
        raise InputError(f"split {split!r} has no pairs", where)
    if task == "regression":
        records = [r for r in records if np.isfinite(r.norm_score)]
        if not records:
            raise InputError(
                f"split {split!r} has no pairs with a finite norm_score (regression needs scored "
                "positives)",
                where,
            )
    return records


def non_finite_targets(dataset: Dataset, split: str) -> int:
    """Positives of ``split`` whose ``norm_score`` is NaN/inf: regression drops them (negatives,
    unscored by design, are not counted); callers report and record the count."""
    return sum(1 for r in dataset.split(split) if r.label == 1 and not np.isfinite(r.norm_score))


@dataclass(frozen=True)
class PairBatch:
    """One batch; see the module docstring for shapes."""

    x1: torch.Tensor
    x2: torch.Tensor
    m1: torch.Tensor | None
    m2: torch.Tensor | None
    targets: torch.Tensor


class SequenceSource(Protocol):
    """Gives embeddings of sequences by their index in the shared id list."""

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """index (B,) -> x (B, L, D) + mask (B, L), or x (B, D) + None for pooled vectors."""
        ...


@runtime_checkable
class BlockStore(Protocol):
    """Chunk-granular access of ``embedhead.store.EmbeddingStore`` (the fast reader's needs)."""

    @property
    def dtype(self) -> str: ...

    @property
    def block_rows(self) -> int: ...

    def read_block(self, k: int, out: np.ndarray | None = None) -> np.ndarray: ...

    def n_blocks(self) -> int: ...

    def rows_of(self, sids: Sequence[str]) -> np.ndarray: ...

    def offsets(self) -> np.ndarray: ...

    def lengths(self) -> np.ndarray: ...


def block_access(store: StoreReader) -> BlockStore | None:
    """``store`` when it offers whole-chunk reads of per-position embeddings, else None."""
    if isinstance(store, BlockStore) and not bool(getattr(store, "pooled_only", False)):
        return store
    return None


_T = TypeVar("_T")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if callable(affinity) else os.cpu_count() or 1


def background_depth(device: torch.device) -> int:
    """Batches a streamed source builds ahead in a background thread, by default.

    :data:`PREFETCH_BATCHES` when the model runs on an accelerator, or on the CPU when torch's
    intra-op threads leave a core free; 0 (batches built in the training thread) when they
    use every core: there a builder thread only steals time from torch's threads, whose
    parallel ops then wait for the slowest one, and training gets slower than with no
    background thread at all (2 cores, 2 torch threads: in-memory batches built in the
    background made an epoch 1.19-1.30x slower; `benchmarks/bench_store.py --read`).
    """
    if device.type != "cpu" or torch.get_num_threads() < usable_cores():
        return PREFETCH_BATCHES
    return 0


def _ordered_map(
    pool: ThreadPoolExecutor, fn: Callable[[int], _T], items: Iterable[int], ahead: int
) -> Iterator[tuple[int, _T]]:
    """(item, fn(item)) in the order of ``items``, at most ``ahead`` calls in flight."""
    pending: deque[tuple[int, Future[_T]]] = deque()
    for item in items:
        pending.append((item, pool.submit(fn, item)))
        if len(pending) >= ahead:
            first, future = pending.popleft()
            yield first, future.result()
    while pending:
        first, future = pending.popleft()
        yield first, future.result()


class BlockReader:
    """Whole stored chunks ("blocks") of a store's ``positions``, read in a thread pool.

    ``fetch(blocks)`` returns raw (storage dtype) blocks, keeping the most recently used ones
    up to ``cache_bytes`` (thread-safe); ``segments(offset, length)`` says which block rows make
    up a sequence. Decoding to float32 happens when rows are copied out (:meth:`copy_into`).
    """

    def __init__(
        self,
        store: BlockStore,
        *,
        cache_bytes: int = BLOCK_CACHE_BYTES,
        threads: int = READ_THREADS,
    ) -> None:
        self.store = store
        self.rows = int(store.block_rows)
        self.dtype = str(store.dtype)
        self.cache_bytes = int(cache_bytes)
        self.threads = max(1, int(threads))
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="embedhead-read")
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._pending: dict[int, Future[np.ndarray]] = {}
        self._cached = 0
        self._lock = threading.Lock()
        self.blocks_read = 0  # blocks fetched from the store so far (for benchmarks)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._cache.clear()

    def blocks_of(self, offset: int, length: int) -> range:
        """Blocks holding rows ``offset : offset + length``."""
        return range(offset // self.rows, (offset + max(length, 1) - 1) // self.rows + 1)

    def map(self, fn: Callable[[int], None], blocks: Iterable[int]) -> Iterator[None]:
        """Run ``fn(k)`` for every block in the pool (bounded: a few calls in flight)."""
        yield from (r for _, r in _ordered_map(self._pool, fn, blocks, 2 * self.threads))

    def read(self, k: int) -> np.ndarray:
        """Raw block ``k``, read now in the calling thread (not cached)."""
        return self._read(k)

    def read_into(self, k: int, out: np.ndarray) -> None:
        """Raw block ``k`` decoded into ``out`` (its exact shape), in the calling thread."""
        self._read(k, out)

    def _read(self, k: int, out: np.ndarray | None = None) -> np.ndarray:
        try:
            raw = np.asarray(self.store.read_block(k, out))
        except InputError:
            raise
        except Exception as exc:  # a codec or I/O error of a damaged chunk
            where = getattr(self.store, "path", None)
            raise InputError(
                f"cannot read stored chunk {k} of positions (damaged store? "
                f"{type(exc).__name__}: {exc})",
                where,
            ) from exc
        with self._lock:
            self.blocks_read += 1
        return raw

    def submit(self, k: int) -> Future[np.ndarray]:
        """Read raw block ``k`` in the pool (not cached); the caller keeps the future."""
        return self._pool.submit(self._read, k)

    def prefetch(self, blocks: Iterable[int]) -> None:
        """Start reading ``blocks`` that are neither cached nor already being read."""
        with self._lock:
            for k in set(blocks):
                if k not in self._cache and k not in self._pending:
                    self._pending[k] = self._pool.submit(self._read, k)

    def fetch(self, blocks: Iterable[int]) -> dict[int, np.ndarray]:
        """Raw blocks by number; missing ones are read concurrently and cached (LRU)."""
        self.prefetch(blocks := sorted(set(blocks)))
        got: dict[int, np.ndarray] = {}
        with self._lock:
            for k in blocks:
                raw = self._cache.get(k)
                if raw is not None:
                    self._cache.move_to_end(k)
                    got[k] = raw
            futures = {k: self._pending[k] for k in blocks if k not in got}
        try:
            fresh = {k: future.result() for k, future in futures.items()}
        finally:
            with self._lock:
                for k in futures:
                    self._pending.pop(k, None)
        got.update(fresh)
        with self._lock:
            for k, raw in fresh.items():
                if k not in self._cache:
                    self._cache[k] = raw
                    self._cached += raw.nbytes
            while self._cached > self.cache_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached -= old.nbytes
        return got

    def copy_into(
        self, out: np.ndarray, offset: int, length: int, blocks: dict[int, np.ndarray]
    ) -> None:
        """Decode rows ``offset : offset + length`` of ``positions`` into ``out[:length]``."""
        rows = self.rows
        for k in self.blocks_of(offset, length):
            lo, hi = max(offset, k * rows), min(offset + length, (k + 1) * rows)
            raw = blocks[k][lo - k * rows : hi - k * rows]
            _decode_into(out[lo - offset : hi - offset], raw, self.dtype)


def _decode_into(out: np.ndarray, raw: np.ndarray, dtype: str) -> None:
    """``out[:] = layout.decode(raw, dtype)`` in one pass, no temporary: torch cast copies
    (float16 -> float32 runs ~8x faster than numpy's); bfloat16 bit patterns (uint16) are
    viewed as torch.bfloat16, whose widening to float32 is exact. Copied in pieces below
    :data:`SERIAL_ELEMENTS`, so torch never starts its intra-op thread team here: this runs in
    reader threads, where such teams contend badly. Called once per sequence piece, so kept
    lean (a few microseconds besides the copy)."""
    if not raw.flags.c_contiguous:
        raw = np.ascontiguousarray(raw)
    src = torch.from_numpy(raw)
    if dtype == "bfloat16":
        src = src.view(torch.bfloat16)
    dst = torch.from_numpy(out)
    n = len(out)
    step = max(1, SERIAL_ELEMENTS // max(1, out.size // n)) if n else 1
    if n <= step:
        dst.copy_(src)
        return
    for start in range(0, n, step):
        dst[start : start + step].copy_(src[start : start + step])


_NEVER = 1 << 62  # "no further use" for the planned reader's eviction


class PlannedReads:
    """The rows of the sequences a known run of steps (batches) needs, read chunk by chunk.

    ``steps[t]`` (sequence numbers) is what step ``t`` needs; :meth:`take` returns those
    sequences' raw rows (storage dtype) as pieces, one per stored chunk the sequence lies in
    (``{sequence: [(l, D), ...]}``, in row order). The unit kept is a *segment*: the rows of one
    sequence inside one chunk. What a step needs and is not resident is read as whole stored
    chunks (thread pool, each chunk once); every other segment of those chunks that a later
    step needs is kept too ("harvested"), nearest next use first, while ``budget`` bytes of
    rows allow. A segment is dropped after its last use; when room is needed, the resident
    segment whose next use is farthest away goes first (Belady's rule, exact because the whole
    run is planned), never one the current step needs. So one random partner's chunk read also
    serves its neighbours' later batches, a budget as large as the rows read makes every chunk
    be read once, and the budget holds only rows that some later step reads. Memory:
    ``budget`` (or one step's rows when larger) plus the raw chunks of two steps: those of step
    ``t + 1`` are read ahead in the pool as soon as :meth:`take` returns step ``t`` (read-ahead:
    streamed / in-memory train epoch 1.23x -> 1.15x in benchmarks/bench_store.py's setting).
    Driven by one thread.
    """

    def __init__(
        self,
        reader: BlockReader,
        offsets: np.ndarray,
        lengths: np.ndarray,
        steps: Sequence[np.ndarray],
        budget: int,
        row_bytes: int,
    ) -> None:
        """offsets, lengths (U,): rows of each sequence in ``positions``."""
        self.reader = reader
        self.steps = [np.unique(np.asarray(q, dtype=np.int64)) for q in steps]
        self.budget = int(budget)
        self._uses: dict[int, deque[int]] = {}
        for t, qs in enumerate(self.steps):
            for q in qs.tolist():
                self._uses.setdefault(q, deque()).append(t)
        # segments of the planned sequences: (sequence, block, rows lo:hi inside the block)
        planned = np.array(sorted(self._uses), dtype=np.int64)
        rows = reader.rows
        off = np.asarray(offsets, dtype=np.int64)[planned]
        end = off + np.asarray(lengths, dtype=np.int64)[planned]
        first, last = off // rows, (np.maximum(end, off + 1) - 1) // rows
        count = last - first + 1
        start = np.cumsum(count) - count
        block = np.repeat(first, count) + np.arange(int(count.sum())) - np.repeat(start, count)
        lo = np.maximum(np.repeat(off, count), block * rows) - block * rows
        hi = np.minimum(np.repeat(end, count), (block + 1) * rows) - block * rows
        self._seg_q: list[int] = np.repeat(planned, count).tolist()
        self._seg_k: list[int] = block.tolist()
        self._seg_lo: list[int] = lo.tolist()
        self._seg_hi: list[int] = hi.tolist()
        self._seg_bytes: list[int] = ((hi - lo) * int(row_bytes)).tolist()
        self._segs = {
            q: range(a, a + n)
            for q, a, n in zip(planned.tolist(), start.tolist(), count.tolist(), strict=True)
        }
        self._in_block: dict[int, list[int]] = {}
        for g, k in enumerate(self._seg_k):
            self._in_block.setdefault(k, []).append(g)
        self._resident: dict[int, np.ndarray] = {}
        self._heap: list[tuple[int, int]] = []  # (-next use, segment); stale entries skipped
        self.used = 0  # bytes of resident rows
        self.peak = 0  # most bytes of rows resident at once (for tests and benchmarks)
        self._ahead: dict[int, Future[np.ndarray]] = {}  # chunks the next step reads
        self._read_ahead(0)

    def _next_use(self, g: int) -> int:
        uses = self._uses[self._seg_q[g]]
        return uses[0] if uses else _NEVER

    def _keep(self, g: int, raw: np.ndarray) -> None:
        self._resident[g] = np.array(raw[self._seg_lo[g] : self._seg_hi[g]])
        self.used += self._seg_bytes[g]
        heapq.heappush(self._heap, (-self._next_use(g), g))

    def _drop(self, g: int) -> None:
        del self._resident[g]
        self.used -= self._seg_bytes[g]

    def _evict_beyond(self, step: int, room: int) -> None:
        """Drop the farthest-used segments needed after ``step`` until ``room`` bytes fit."""
        while self.used + room > self.budget and self._heap:
            far, g = self._heap[0]
            if g not in self._resident or -far != self._next_use(g):
                heapq.heappop(self._heap)  # stale entry
                continue
            if -far <= step:
                return
            heapq.heappop(self._heap)
            self._drop(g)

    def take(self, t: int) -> dict[int, list[np.ndarray]]:
        """Raw row pieces of the sequences of step ``t`` (steps are taken in order 0, 1, ...)."""
        need = self.steps[t].tolist()
        missing = self._missing(t)
        if missing:
            blocks = sorted({self._seg_k[g] for g in missing})
            futures = [
                self._ahead.pop(k) if k in self._ahead else self.reader.submit(k) for k in blocks
            ]
            raw = {k: f.result() for k, f in zip(blocks, futures, strict=True)}
            for g in missing:
                self._keep(g, raw[self._seg_k[g]])
            self._evict_beyond(t, 0)
            harvest = [
                g
                for k in blocks
                for g in self._in_block[k]
                if g not in self._resident and self._uses[self._seg_q[g]]
            ]
            for g in sorted(harvest, key=self._next_use):
                self._evict_beyond(self._next_use(g), self._seg_bytes[g])
                if self.used + self._seg_bytes[g] > self.budget:
                    break  # the rest are needed even later
                self._keep(g, raw[self._seg_k[g]])
        self.peak = max(self.peak, self.used)
        got = {q: [self._resident[g] for g in self._segs[q]] for q in need}
        for q in need:
            uses = self._uses[q]
            uses.popleft()
            for g in self._segs[q]:
                if uses:
                    heapq.heappush(self._heap, (-uses[0], g))
                else:
                    self._drop(g)  # no later step needs it
        self._read_ahead(t + 1)
        return got

    def _missing(self, t: int) -> list[int]:
        """Segments step ``t`` needs that are not resident."""
        return [g for q in self.steps[t].tolist() for g in self._segs[q] if g not in self._resident]

    def _read_ahead(self, t: int) -> None:
        """Start reading the chunks step ``t`` will read, so they decode in the pool while the
        caller works on step ``t - 1``. Exact: nothing changes what is resident between the
        end of one :meth:`take` and the start of the next."""
        if t < len(self.steps):
            for k in sorted({self._seg_k[g] for g in self._missing(t)}):
                if k not in self._ahead:
                    self._ahead[k] = self.reader.submit(k)

    def close(self) -> None:
        """Drop every resident segment (and chunks read ahead for a step never taken)."""
        for future in self._ahead.values():
            future.cancel()
        self._ahead.clear()
        self._resident.clear()
        self._heap.clear()
        self.used = 0


_END = object()


def in_background(items: Iterator[_T], depth: int) -> Iterator[_T]:
    """The items of ``items``, produced by one background thread at most ``depth`` ahead.

    Same items in the same order (one producer, a FIFO queue of ``depth`` slots), so results
    do not change; an exception of the producer is raised here; leaving early (break, error)
    stops the producer and closes ``items``.
    """
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, _END))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))

    thread = threading.Thread(target=produce, name="embedhead-batches", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                assert isinstance(item, BaseException)
                raise item
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
        close = getattr(items, "close", None)
        if callable(close):
            close()


class InMemorySequences:
    """All sequences in one flat (T, D) tensor with offsets; gathers a padded batch at once.

    The flat tensor keeps the store's dtype (float16 / bfloat16 rows take half the memory of
    float32); a batch is gathered in that dtype and widened to float32 on the device (exact, so
    batches are bit-identical to float32 storage and to the streamed loader).
    """

    def __init__(
        self,
        flat: np.ndarray,
        lengths: np.ndarray,
        device: torch.device,
        *,
        dtype: str | None = None,
        offsets: np.ndarray | None = None,
    ) -> None:
        """flat (T, D) float32 or float16, or bfloat16 bit patterns (uint16) with
        ``dtype="bfloat16"``: sequence i is rows offsets[i] : offsets[i] + lengths[i]
        (``offsets`` default: the sequences back to back in order)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if offsets is None:
            offsets = np.zeros(len(lengths), dtype=np.int64)
            np.cumsum(lengths[:-1], out=offsets[1:])
        offsets = np.asarray(offsets, dtype=np.int64)
        if len(offsets) != len(lengths) or np.any(offsets + lengths > len(flat)):
            raise ValueError("offsets + lengths must lie inside flat")
        flat = np.ascontiguousarray(flat)
        if flat.dtype not in (np.float16, np.uint16):
            flat = flat.astype(np.float32, copy=False)
        if flat.dtype == np.uint16 and dtype != "bfloat16":
            raise ValueError("uint16 rows are bfloat16 bit patterns: pass dtype='bfloat16'")
        self._rows = flat  # numpy view of the rows (CPU gathers; uint16 for bfloat16)
        self.flat = rows_tensor(flat).to(device)
        self.lengths = torch.from_numpy(lengths).to(device)
        self.offsets = torch.from_numpy(offsets).to(device)
        self.device = device

    @classmethod
    def from_store(
        cls, store: StoreReader, ids: Sequence[str], d_model: int, device: torch.device
    ) -> InMemorySequences:
        """Read ``ids`` straight into one preallocated (T, D) array.

        A store with whole-chunk access is read block by block in storage order (each needed
        stored chunk read and decoded once, in a thread pool) into an array of its storage
        dtype, the sequences in storage order (a chunk wholly of needed rows decodes straight
        into it); others in bulk ``get_many`` calls (float32), in the order of ``ids``.
        """
        blocked = block_access(store)
        if blocked is not None:
            flat, offsets = _load_blocks(blocked, ids, d_model)
            lengths = _stored_lengths(blocked, ids)
            return cls(flat, lengths, device, dtype=str(blocked.dtype), offsets=offsets)
        lengths = np.array([int(store.length(i)) for i in ids], dtype=np.int64)
        flat = np.empty((int(lengths.sum()), d_model), dtype=np.float32)
        row = 0
        for start in range(0, len(ids), READ_BLOCK):
            for array in read_many(store, ids[start : start + READ_BLOCK]):
                flat[row : row + array.shape[0]] = array
                row += array.shape[0]
        if row != flat.shape[0]:
            raise InputError("store lengths disagree with its embeddings (corrupt store?)")
        return cls(flat, lengths, device)

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """index (B,) -> x (B, L, D) float32 with pads zeroed, mask (B, L)."""
        if self.device.type == "cpu":  # row copies beat an index op + where on the CPU
            return self._gather_rows(np.asarray(index, dtype=np.int64))
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device)
        lengths = self.lengths[idx]  # (B,)
        width = int(lengths.max().item())
        pos = torch.arange(width, device=self.device)  # (L,)
        mask = pos.unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)
        rows = self.offsets[idx].unsqueeze(1) + torch.where(mask, pos.unsqueeze(0), 0)
        x = torch.where(mask.unsqueeze(-1), self.flat[rows], 0.0)  # (B, L, D)
        return x.to(torch.float32), mask

    def _gather_rows(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The same batch as :meth:`gather`, built by one slice copy per row (CPU tensors)."""
        lengths = self.lengths.numpy()[index]
        offsets = self.offsets.numpy()[index]
        flat = self._rows
        width = int(lengths.max())
        x = np.zeros((len(index), width, flat.shape[1]), dtype=flat.dtype)
        for row, (off, n) in enumerate(zip(offsets.tolist(), lengths.tolist(), strict=True)):
            x[row, :n] = flat[off : off + n]  # numpy: no intra-op thread pool to wait for
        mask = np.arange(width)[None, :] < lengths[:, None]
        return widen_rows(rows_tensor(x), self.device), torch.from_numpy(mask)


def raw_dtype(dtype: str) -> np.dtype[Any]:
    """numpy dtype of stored rows of ``dtype`` (bfloat16 bit patterns are uint16)."""
    return np.dtype(np.uint16 if dtype == "bfloat16" else dtype)


def rows_tensor(rows: np.ndarray) -> torch.Tensor:
    """A torch view of stored rows (numpy, :func:`raw_dtype`): uint16 is bfloat16 bits."""
    tensor = torch.from_numpy(rows)
    return tensor.view(torch.bfloat16) if rows.dtype == np.uint16 else tensor


def widen_rows(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Rows of any float dtype -> float32 on ``device`` (exact for float16 / bfloat16).

    Moved first, then cast: on a GPU half the bytes cross the bus; on the CPU an explicit
    ``copy_`` into a fresh float32 tensor runs several times faster than ``x.to(float32)``.
    """
    x = x.to(device=device)
    if x.dtype == torch.float32:
        return x
    out = torch.empty(x.shape, dtype=torch.float32, device=device)
    return out.copy_(x)


def _stored_lengths(store: BlockStore, ids: Sequence[str]) -> np.ndarray:
    return np.asarray(store.lengths(), dtype=np.int64)[store.rows_of(ids)]


def _load_blocks(
    store: BlockStore, ids: Sequence[str], d_model: int
) -> tuple[np.ndarray, np.ndarray]:
    """flat (T, D) in the storage dtype (bfloat16 as uint16 bit patterns) holding the distinct
    sequences ``ids`` back to back in storage order, and (len(ids),) the row of each in flat.

    Read whole block by whole block in a thread pool, plain copies, no cast. A block whose
    rows all belong to needed sequences is one contiguous run of flat (storage order): it is
    decoded straight into flat (``read_block(k, out=...)``); other blocks (padding, rows of
    sequences not needed, the last partial block) are decoded and their pieces copied.
    """
    where = store.rows_of(ids)
    offsets = np.asarray(store.offsets(), dtype=np.int64)[where]
    lengths = np.asarray(store.lengths(), dtype=np.int64)[where]
    order = np.argsort(offsets, kind="stable")
    dest = np.zeros(len(ids), dtype=np.int64)
    dest[order[1:]] = np.cumsum(lengths[order])[:-1]
    flat = np.empty((int(lengths.sum()), d_model), dtype=raw_dtype(str(store.dtype)))
    reader = BlockReader(store, cache_bytes=0)
    rows, n_blocks = reader.rows, store.n_blocks()
    try:
        per_block: dict[int, list[int]] = {}
        for i in order.tolist():
            for k in reader.blocks_of(int(offsets[i]), int(lengths[i])):
                per_block.setdefault(k, []).append(i)

        def pieces(k: int) -> Iterator[tuple[int, int, int]]:
            """(sequence, first row, end row) of the needed rows inside block ``k``."""
            for i in per_block[k]:
                off, n = int(offsets[i]), int(lengths[i])
                yield i, max(off, k * rows), min(off + n, (k + 1) * rows)

        scratch = threading.local()  # a block buffer per pool thread: fresh ones page-fault

        def fill(k: int) -> None:  # in a pool thread: destinations are disjoint
            spans = list(pieces(k))
            if sum(hi - lo for _, lo, hi in spans) == rows:  # needed rows fill the block
                i, lo, _ = spans[0]
                start = int(dest[i]) + lo - int(offsets[i])
                reader.read_into(k, flat[start : start + rows])
                return
            if k + 1 < n_blocks:  # a whole block of rows (padding or rows not needed)
                if getattr(scratch, "block", None) is None:
                    scratch.block = np.empty((rows, d_model), dtype=flat.dtype)
                raw = scratch.block
                reader.read_into(k, raw)
            else:
                raw = reader.read(k)
            for i, lo, hi in spans:
                out = flat[dest[i] + lo - offsets[i] : dest[i] + hi - offsets[i]]
                np.copyto(out, raw[lo - k * rows : hi - k * rows], casting="no")

        for _ in reader.map(fill, sorted(per_block)):
            pass
    finally:
        reader.close()
    return flat, dest


def plan_budget(step_bytes: np.ndarray, ceiling: int) -> int:
    """Default budget of a planned streamed read: the largest total of row bytes (storage
    dtype) that any :data:`BUDGET_BUCKETS` shuffle buckets of consecutive steps read, at most
    ``ceiling``. It follows batch size and sequence lengths, not the dataset size."""
    sizes = np.asarray(step_bytes, dtype=np.int64)
    if sizes.size == 0:
        return int(ceiling)
    window = min(sizes.size, BUCKET_BATCHES * BUDGET_BUCKETS)
    totals = np.convolve(sizes, np.ones(window, dtype=np.int64), mode="valid")
    return int(min(int(ceiling), int(totals.max())))


class ChunkedSequences:
    """Streams batches from whole stored chunks (see the module docstring); memory bounded.

    :meth:`stream` serves a planned run of batches (what :meth:`PairSource.batches` uses):
    :class:`PlannedReads` over a budget of ``cache_bytes`` of sequence rows, with the batches
    built ``prefetch`` batches ahead by a background thread (None: :func:`background_depth`),
    float32 for a CPU model, else in the storage dtype and widened on the device by the
    consumer (:meth:`widen`). :meth:`gather` serves
    one batch at a time from an LRU cache of whole raw chunks of the same budget.
    """

    def __init__(
        self,
        store: BlockStore,
        ids: Sequence[str],
        d_model: int,
        device: torch.device,
        *,
        cache_bytes: int | None = None,
    ) -> None:
        """``cache_bytes``: raw chunks kept (default: :data:`BLOCK_CACHE_BYTES` at call time)."""
        rows = store.rows_of(ids)
        self.offsets = np.asarray(store.offsets(), dtype=np.int64)[rows]  # (U,)
        self.lengths = np.asarray(store.lengths(), dtype=np.int64)[rows]  # (U,)
        self.cache_bytes = BLOCK_CACHE_BYTES if cache_bytes is None else int(cache_bytes)
        self.sized_by_plan = cache_bytes is None  # stream(): budget from the batches it serves
        self.reader = BlockReader(store, cache_bytes=self.cache_bytes)
        self.d_model = d_model
        self.device = device
        self.prefetch: int | None = None  # None: background_depth(device) when used
        self.last_plan: PlannedReads | None = None  # of the latest stream (for benchmarks)

    def _blocks(self, index: np.ndarray) -> Iterator[int]:
        spans = self.reader.blocks_of
        for i in index:
            yield from spans(int(self.offsets[i]), int(self.lengths[i]))

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """index (B,) -> x (B, L, D) with pads zeroed, mask (B, L)."""
        index = np.asarray(index, dtype=np.int64)
        return self._assemble(index, self.reader.fetch(self._blocks(index)))

    def stream(
        self, groups: Sequence[Sequence[np.ndarray]]
    ) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
        """For each group of index arrays (one batch: left, right), their :meth:`gather` on
        the CPU: float32 for a CPU model, else in the storage dtype (:meth:`widen` finishes
        them: float32 on the device; see :meth:`_from_rows`).

        The sequences of every group are planned up front (:class:`PlannedReads`): each stored
        chunk is read when a group needs rows of it that are not resident, and rows that later
        groups need are kept until their last use, within a budget of rows: ``cache_bytes``
        when given, else :func:`plan_budget` (what :data:`BUDGET_BUCKETS` shuffle buckets of
        these groups read, at most :data:`BLOCK_CACHE_BYTES`).
        """
        steps = [
            np.unique(np.concatenate([np.asarray(i, dtype=np.int64) for i in g])) for g in groups
        ]
        row_bytes = self.d_model * (4 if self.reader.dtype == "float32" else 2)
        budget = self.cache_bytes
        if self.sized_by_plan:
            step_bytes = np.array([int(self.lengths[q].sum()) * row_bytes for q in steps])
            budget = plan_budget(step_bytes, budget)
        plan = PlannedReads(self.reader, self.offsets, self.lengths, steps, budget, row_bytes)
        self.last_plan = plan
        try:
            for t, group in enumerate(groups):
                rows = plan.take(t)
                yield [self._from_rows(np.asarray(i, dtype=np.int64), rows) for i in group]
        finally:
            plan.close()

    def _from_rows(
        self, index: np.ndarray, rows: dict[int, list[np.ndarray]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw pieces -> x (B, L, D), mask (B, L); CPU; pads zero. For a CPU model x is
        float32 already (each piece widened as it is copied in: one pass over the rows instead
        of a copy and then a cast of the whole batch); for an accelerator it stays in the
        storage dtype (bfloat16 as itself), half the bytes to move, widened there."""
        lengths = self.lengths[index]
        width = int(lengths.max())
        mask = torch.from_numpy(np.arange(width)[None, :] < lengths[:, None])
        dtype = torch.float32 if self.device.type == "cpu" else getattr(torch, self.reader.dtype)
        x = torch.empty((len(index), width, self.d_model), dtype=dtype)
        for row, i in enumerate(index.tolist()):
            at = 0
            for piece in rows[i]:
                x[row, at : at + len(piece)].copy_(rows_tensor(piece))  # widened if float32
                at += len(piece)
            if at < width:
                x[row, at:].zero_()  # only the pads are zeroed: no pass over the whole batch
        return x, mask

    def _assemble(
        self, index: np.ndarray, blocks: dict[int, np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = self.lengths[index]
        width = int(lengths.max())
        x = np.zeros((len(index), width, self.d_model), dtype=np.float32)
        for row, i in enumerate(index):
            self.reader.copy_into(x[row], int(self.offsets[i]), int(lengths[row]), blocks)
        mask = np.arange(width)[None, :] < lengths[:, None]
        return torch.from_numpy(x).to(self.device), torch.from_numpy(mask).to(self.device)

    def widen(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of :meth:`stream` (CPU) -> float32 on the device.

        Called by the consumer of the batches (the training thread). On a GPU the half-width
        rows cross the bus and are widened there; for a CPU model :meth:`_from_rows` built
        float32 rows already (each piece widened as it was copied in, one pass instead of a
        copy and a cast of the whole batch: train epoch 1.24x / 1.26x -> 1.18x / 1.19x of in
        memory in two in-process A/Bs of 10 and 15 alternations), so nothing is left to do.
        float16 / bfloat16 -> float32 is exact, so batches are the same as in memory bit for
        bit.
        """
        return widen_rows(x, self.device)


class StreamedSequences:
    """Per-sequence reads from a store without chunk access (opened once, never per sample).

    ``prefetch``: batches :meth:`PairSource.batches` builds ahead in a background thread
    (:func:`background_depth`).
    """

    def __init__(
        self, store: StoreReader, ids: Sequence[str], d_model: int, device: torch.device
    ) -> None:
        self.store = store
        self.ids = list(ids)
        self.d_model = d_model
        self.device = device
        self.prefetch: int | None = None  # None: background_depth(device) when used

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """index (B,) -> x (B, L, D) with pads zeroed, mask (B, L)."""
        unique, inverse = np.unique(np.asarray(index, dtype=np.int64), return_inverse=True)
        arrays = [np.asarray(self.store.get(self.ids[i]), dtype=np.float32) for i in unique]
        lengths = np.array([arrays[j].shape[0] for j in inverse], dtype=np.int64)
        width = int(lengths.max())
        x = np.zeros((len(index), width, self.d_model), dtype=np.float32)
        for row, j in enumerate(inverse):
            x[row, : lengths[row]] = arrays[j]
        mask = np.arange(width)[None, :] < lengths[:, None]
        return torch.from_numpy(x).to(self.device), torch.from_numpy(mask).to(self.device)


class PooledVectors:
    """Pooled vectors (U, D) in memory."""

    def __init__(self, vectors: np.ndarray, device: torch.device) -> None:
        self.vectors = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
        self.device = device

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, None]:
        """index (B,) -> x (B, D), None."""
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device)
        return self.vectors[idx], None


def _widened(
    batches: Iterator[PairBatch],
    widen: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> Iterator[PairBatch]:
    """Streamed batches (raw rows on the CPU) finished in the consumer's thread: x widened to
    float32 on ``device`` by ``widen``, masks and targets moved there."""
    try:
        for b in batches:
            assert b.m1 is not None and b.m2 is not None
            yield PairBatch(
                widen(b.x1),
                widen(b.x2),
                b.m1.to(device),
                b.m2.to(device),
                b.targets.to(device),
            )
    finally:
        close = getattr(batches, "close", None)
        if callable(close):
            close()


@dataclass(frozen=True)
class PairSource:
    """A split's pairs plus where their embeddings come from; yields :class:`PairBatch`."""

    pairs: SplitPairs
    sequences: SequenceSource
    device: torch.device

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, index: np.ndarray) -> PairBatch:
        """The pairs at positions ``index`` (B,) of this split."""
        x1, m1 = self.sequences.gather(self.pairs.left[index])
        x2, m2 = self.sequences.gather(self.pairs.right[index])
        targets = torch.from_numpy(self.pairs.targets[index]).to(self.device)
        return PairBatch(x1, x2, m1, m2, targets)

    def batches(
        self, batch_size: int, order: np.ndarray | None = None, *, prefetch: int | None = None
    ) -> Iterator[PairBatch]:
        """Batches in ``order`` (default: table order).

        A streamed source plans the chunk reads of all these batches up front
        (:meth:`ChunkedSequences.stream`), and a background thread builds the next
        ``prefetch`` batches (default: the source's ``sequences.prefetch``, else
        :func:`background_depth`; 0 = in the caller's thread) while the caller trains on this
        one. Streamed rows for an accelerator come in the storage dtype and are widened to
        float32 on the device in the caller's thread. Batches are the same either way.
        """
        order = np.arange(len(self)) if order is None else np.asarray(order)
        slices = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        if prefetch is None:
            prefetch = getattr(self.sequences, "prefetch", 0)
        depth = background_depth(self.device) if prefetch is None else int(prefetch)
        built = self._build(slices)
        batches = in_background(built, depth) if depth > 0 else built
        widen = getattr(self.sequences, "widen", None)
        return batches if widen is None else _widened(batches, widen, self.device)

    def _build(self, slices: list[np.ndarray]) -> Iterator[PairBatch]:
        stream = getattr(self.sequences, "stream", None)
        if stream is None:
            for index in slices:
                yield self.batch(index)
            return
        groups = [(self.pairs.left[index], self.pairs.right[index]) for index in slices]
        for index, ((x1, m1), (x2, m2)) in zip(slices, stream(groups), strict=True):
            targets = torch.from_numpy(self.pairs.targets[index])
            yield PairBatch(x1, x2, m1, m2, targets)  # raw, on the CPU: see _widened

    def epoch_order(self, generator: torch.Generator, batch_size: int) -> np.ndarray:
        """(N,) a shuffled order of the pairs, in buckets of neighbours (module docstring).

        All but the last ``N % batch_size`` pairs (a random few: the final short batch) are
        ranked by storage position and cut into buckets of ``BUCKET_BATCHES * batch_size``;
        every full batch of the result lies inside one bucket.
        """
        n = len(self)
        perm = torch.randperm(n, generator=generator).numpy()
        key = self.pairs.locality
        size = BUCKET_BATCHES * batch_size
        if key is None or n <= size:
            return perm
        full = n - n % batch_size
        ranked = perm[:full][np.argsort(key[perm[:full]], kind="stable")]
        buckets = [ranked[s : s + size] for s in range(0, full, size)]
        shuffled = [b[torch.randperm(len(b), generator=generator).numpy()] for b in buckets]
        visit = torch.randperm(len(buckets), generator=generator).numpy()
        return np.concatenate([*(shuffled[i] for i in visit), perm[full:]])

    def subset(self, index: np.ndarray) -> PairSource:
        """Same sequences, only the pairs at ``index``."""
        return PairSource(self.pairs.subset(index), self.sequences, self.device)


@dataclass(frozen=True)
class HeadData:
    """Splits loaded once for many trainings: what :func:`embedhead.heads.train.fit` consumes."""

    kind: str
    task: str
    d_model: int
    splits: dict[str, PairSource]
    identity: dict[str, Any] = field(default_factory=dict)
    loader: str = "memory"
    store_options: dict[str, Any] = field(default_factory=dict)
    seq_ids: tuple[str, ...] = ()  # the shared id list that SplitPairs.left/right index

    def __getitem__(self, split: str) -> PairSource:
        if split not in self.splits:
            raise ConfigError(f"split {split!r} was not loaded (have {', '.join(self.splits)})")
        return self.splits[split]


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(device)


def default_memory_budget(device: torch.device) -> int:
    """Bytes of embeddings we are willing to hold: half of free GPU or available host memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 8 << 30
    return int(available // 2)


def check_store_has(store: StoreReader, ids: Sequence[str], where: str | Path | None) -> None:
    """InputError listing a few ids when the store lacks any of ``ids``."""
    missing = [i for i in ids if i not in store]
    if missing:
        shown = ", ".join(missing[:MAX_LISTED_MISSING])
        more = "" if len(missing) <= MAX_LISTED_MISSING else ", ..."
        raise InputError(
            f"store lacks {len(missing)} of the {len(ids)} sequences needed ({shown}{more}); "
            "run `embedhead embed DATASET --backbone ... --store ...` for this dataset",
            where,
        )


def check_identity(trained: dict[str, Any], store: dict[str, Any], where: str | Path) -> None:
    """IncompatibleError when two backbone identities differ.

    Compares ``weight_hash`` and ``config`` when both identities have them (the backbone's name
    may be a local path that moved), the whole dicts otherwise.
    """
    keys = ("weight_hash", "config")
    if all(k in trained and k in store for k in keys):
        same = all(trained[k] == store[k] for k in keys)
    else:
        same = trained == store
    if not same:
        raise IncompatibleError(
            f"{where}: store was built by backbone {_describe(store)}, but the head was trained "
            f"on embeddings of {_describe(trained)}"
        )


def _describe(identity: dict[str, Any]) -> str:
    name = identity.get("name", "?")
    digest = str(identity.get("weight_hash", ""))[:12]
    return f"{name!r} (weights {digest or 'unknown'})"


@dataclass(frozen=True)
class PairSpec:
    """One pair to load: its id, the store ids of both sequences, target and label."""

    pair_id: str
    seq1: str
    seq2: str
    target: float
    label: int


def load_head_data(
    dataset: Dataset,
    store: StoreReader,
    *,
    kind: str,
    task: str,
    splits: Sequence[str] = ("train", "val", "test"),
    loader: str = "auto",
    device: str | torch.device = "cpu",
    memory_budget: int | None = None,
    store_path: str | Path | None = None,
) -> HeadData:
    """Join the pairs of ``splits`` with their embeddings (see module docstring).

    Raises InputError for an empty split or a store lacking sequences, ConfigError for a bad
    ``loader``.
    """
    specs = {
        name: [
            PairSpec(
                r.pair_id,
                r.seq1,
                r.seq2,
                float(r.label if task == "classification" else r.norm_score),
                r.label,
            )
            for r in split_records(dataset, name, task)
        ]
        for name in splits
    }
    return load_pairs(
        store,
        specs,
        kind=kind,
        task=task,
        loader=loader,
        device=device,
        memory_budget=memory_budget,
        store_path=store_path,
    )


def _storage_rank(store: StoreReader, ids: Sequence[str]) -> np.ndarray:
    """(U,) int64 where each shared id sits in the store: its row, or its first-seen index."""
    rows_of = getattr(store, "rows_of", None)
    if callable(rows_of):
        return np.asarray(rows_of(list(ids)), dtype=np.int64)
    return np.arange(len(ids), dtype=np.int64)


def load_pairs(
    store: StoreReader,
    specs: dict[str, list[PairSpec]],
    *,
    kind: str,
    task: str,
    loader: str = "auto",
    device: str | torch.device = "cpu",
    memory_budget: int | None = None,
    store_path: str | Path | None = None,
) -> HeadData:
    """Like :func:`load_head_data` for pairs given directly (``{split name: [PairSpec]}``)."""
    if loader not in LOADERS:
        raise ConfigError(f"loader must be one of {LOADERS}, not {loader!r}")
    dev = resolve_device(device)
    ids: dict[str, int] = {}
    for group in specs.values():
        for spec in group:
            ids.setdefault(spec.seq1, len(ids))
            ids.setdefault(spec.seq2, len(ids))
    id_list = list(ids)
    check_store_has(store, id_list, store_path)
    d_model = int(store.d_model)
    sequences: SequenceSource
    used = "memory"
    if kind == "pooled":
        blocks = [
            np.asarray(store.get_pooled(id_list[i : i + READ_BLOCK]), dtype=np.float32)
            for i in range(0, len(id_list), READ_BLOCK)
        ]
        sequences = PooledVectors(np.concatenate(blocks, axis=0), dev)
    else:
        budget = default_memory_budget(dev) if memory_budget is None else memory_budget
        blocked = block_access(store)  # in memory in its storage dtype, else float32
        width = raw_dtype(str(blocked.dtype)).itemsize if blocked is not None else 4
        needed = sum(int(store.length(i)) for i in id_list) * d_model * width
        if loader == "stream" or (loader == "auto" and needed > budget):
            if blocked is not None:
                sequences = ChunkedSequences(blocked, id_list, d_model, dev)
            else:
                sequences = StreamedSequences(store, id_list, d_model, dev)
            used = "stream"
        else:
            sequences = InMemorySequences.from_store(store, id_list, d_model, dev)
    rank = _storage_rank(store, id_list)
    sources = {}
    for name, group in specs.items():
        pairs = SplitPairs(
            name=name,
            pair_ids=tuple(p.pair_id for p in group),
            left=np.array([ids[p.seq1] for p in group], dtype=np.int64),
            right=np.array([ids[p.seq2] for p in group], dtype=np.int64),
            targets=np.array([p.target for p in group], dtype=np.float32),
            labels=np.array([p.label for p in group], dtype=np.int64),
        )
        pairs = replace(pairs, locality=np.minimum(rank[pairs.left], rank[pairs.right]))
        sources[name] = PairSource(pairs, sequences, dev)
    attrs = getattr(store, "attrs", {})
    options = {k: attrs[k] for k in STORE_OPTIONS if k in attrs}
    return HeadData(
        kind, task, d_model, sources, dict(store.identity), used, options, tuple(id_list)
    )
