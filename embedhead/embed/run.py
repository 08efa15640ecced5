"""The ``embed`` stage: run the frozen backbone once per unique sequence into a store.

Shapes: sequences (text) -> token ids (B, Lmax) int64, right-padded -> backbone -> (B, Lmax, D)
float32 -> per sequence (L_i, D) rows (pads never written) and a pooled (D,) masked mean,
encoded to the store dtype by a writer thread while the next batch is computed.

Planning is deterministic: unique sequences are read in input order in windows (bounded memory),
sorted by length (longest first, then id) and packed into batches of at most ``batch_tokens``
padded tokens. A batch whose ids are all in the store already is skipped, so a rerun after a
crash recomputes exactly the batches that were not committed, with the same batch composition:
the result equals an uninterrupted run bit for bit. Distributed ranks take every
``world_size``-th batch of that same plan. This module and ``predict`` (through
:func:`embed_sequences`) are the only users of the backbone.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from embedhead.backbone import load_backbone
from embedhead.backbone.tokenizer import TOKENIZER_INFO, tokenize
from embedhead.dataset import sequence_id, source_records
from embedhead.embed.config import DEFAULT_BATCH_TOKENS as DEFAULT_BATCH_TOKENS
from embedhead.embed.config import PRECISIONS as PRECISIONS
from embedhead.embed.config import EmbedConfig
from embedhead.embed.distributed import DistContext, dist_context
from embedhead.embed.plan import (
    Region,
    Shape,
    Unique,
    check_lengths,
    group_items,
    plan_batches,
    plan_regions,
    plan_shapes,
)
from embedhead.errors import ConfigError, IncompatibleError, InputError
from embedhead.store import (
    backend_of,
    check_compatible,
    layout,
    merge_parts,
    open_store,
    open_writer,
    part_paths,
)
from embedhead.store.access import open_zarr_writer
from embedhead.store.base import StoreWriter
from embedhead.store.zarr_backend import is_url, store_exists

SLOW_ENV = "EMBEDHEAD_TEST_BATCH_SLEEP"
"""Test hook: seconds to sleep after each backbone call (lets tests kill a run mid-way)."""


@dataclass(frozen=True)
class EmbedStats:
    """What one embedding pass did (one rank)."""

    n_ids: int
    n_unique: int
    n_embedded: int
    n_written: int
    n_skipped: int
    backbone_calls: int
    nucleotides: int
    seconds: float


@dataclass(frozen=True)
class EmbedSummary:
    """Result of :func:`embed_dataset` (``stats`` of this rank; store totals after merging)."""

    store: str
    stats: EmbedStats
    rank: int
    world_size: int
    store_sequences: int

    def describe(self) -> str:
        s = self.stats
        rate = s.nucleotides / s.seconds if s.seconds > 0 else 0.0
        return (
            f"{self.store}: {s.n_ids} ids ({s.n_unique} unique sequences); embedded "
            f"{s.n_embedded} in {s.backbone_calls} backbone calls, wrote {s.n_written}, "
            f"{s.n_skipped} already stored; {s.nucleotides} nt in {s.seconds:.1f} s "
            f"({rate:,.0f} nt/s); store holds {self.store_sequences} sequences"
        )


# -- the writer pool -------------------------------------------------------------------------
WRITER_THREADS = max(1, min(4, os.cpu_count() or 1))
"""Threads encoding and writing batch regions (blosc/zstd and file I/O release the GIL)."""

COMMIT_SECONDS = 2.0
"""A write unit still filling its chunk is written and its batches committed at least this often."""

_Record = tuple[str, list[str], np.ndarray, np.ndarray, np.ndarray]
"""(commit key, ids, absolute offsets, lengths, pooled rows) of one batch."""


@dataclass(frozen=True)
class _Task:
    """One backbone batch handed to a writer lane."""

    unit: int  # first row of the batch's write unit
    out: Any  # backbone rows (B, Lmax, D) on the device
    lengths: Any  # (B,) int64 tensor: rows of each batch position
    region: Region  # the batch's rows (picks into ``out``)
    key: str  # commit key of the batch
    offsets: np.ndarray  # absolute first rows of ``region.ids``
    rows: bool  # write position rows (False: pooled-only store)
    flush: bool  # write the unit's rows so far and commit its batches now
    closes: bool  # the unit is complete after this batch


class _Unit:
    """A write unit a lane is filling: rows not yet written as whole chunks, and records."""

    __slots__ = ("done", "records", "rows")

    def __init__(self) -> None:
        self.done = 0  # rows of the unit written as full chunks (chunk-aligned)
        self.rows: list[np.ndarray] = []  # rows after ``done``, in order
        self.records: list[_Record] = []  # batches written but not committed


class _WriterPool:
    """Threads that pool, gather, write and commit each batch, overlapping the backbone.

    Each thread has its own queue of at most 2 batches: a backbone that outruns the disk waits
    (back-pressure) instead of piling rows up in memory. A thread computes a batch's pooled
    means and gathers its rows (cast to the store dtype on the device, then copied to the
    host, the one cast and the one copy), so the producer only tokenizes and runs the
    backbone and never waits for the device. All batches of one write unit go to one lane
    (``put(task, lane)``): the lane keeps the unit's rows not yet written as full chunks,
    writes them (padded to the chunk boundary) when told to flush, then commits the batches
    they hold; the padded last chunk is rewritten when the unit grows (atomically: it may hold
    committed rows), full chunks are written once, and a unit's older version is never
    written after a newer one (one lane). Units and batches otherwise commit in any order.
    """

    def __init__(self, writer: StoreWriter, threads: int = WRITER_THREADS) -> None:
        self._writer = writer
        self._queues: list[queue.Queue[_Task | None]] = [
            queue.Queue(maxsize=2) for _ in range(threads)
        ]
        self._error: BaseException | None = None
        self._busy = [0] * threads  # tasks queued or in progress, per lane
        self._turn = 0  # where the next tie-break among equally busy lanes starts
        self._counts = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._work, args=(i,), name=f"embedhead-writer-{i}", daemon=True
            )
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def lane(self) -> int:
        """The lane of a new write unit: the least busy one (queued + in progress), ties in
        turn. Units of equal size would otherwise all land on one lane when a lane is chosen by
        position (e.g. 8-chunk units over 4 or 2 lanes)."""
        n = len(self._queues)
        with self._counts:
            turn = self._turn
            self._turn = (turn + 1) % n
            return min(((turn + i) % n for i in range(n)), key=lambda k: self._busy[k])

    def _work(self, lane: int) -> None:
        tasks = self._queues[lane]
        units: dict[int, _Unit] = {}
        dtype = str(self._writer.attrs["dtype"])
        while True:
            task = tasks.get()
            if task is None:
                return
            try:
                self._do(task, units, dtype)
            finally:
                with self._counts:
                    self._busy[lane] -= 1

    def _do(self, task: _Task, units: dict[int, _Unit], dtype: str) -> None:
        """Pool, gather and (on flush) write and commit one batch of a lane's units."""
        if self._error is not None:
            return  # drain so the producer never blocks on dead consumers
        try:
            unit = units.setdefault(task.unit, _Unit())
            pooled = _gather_pooled(_pool(task.out, task.lengths), task.region, dtype)
            if task.rows:
                unit.rows.append(_gather_rows(task.out, task.region, dtype))
            ids = list(task.region.ids)
            lengths = np.asarray(task.region.lengths, dtype=np.int64)
            unit.records.append((task.key, ids, task.offsets, lengths, pooled))
            if task.flush:
                if unit.rows:
                    self._write(task.unit, unit)
                for done in unit.records:  # rows first, then the commit records
                    self._writer.commit_batch(*done)
                unit.records.clear()
            if task.closes:
                del units[task.unit]
        except BaseException as exc:
            self._error = exc

    def _write(self, start: int, unit: _Unit) -> None:
        """Write the unit's rows after ``unit.done`` padded to whole chunks; keep the tail."""
        chunk_rows = self._writer.chunk_rows
        held = sum(part.shape[0] for part in unit.rows)
        block = _padded(unit.rows, chunk_rows)
        self._writer.write_region(start + unit.done, block)
        full = held // chunk_rows * chunk_rows
        unit.rows = [block[full:held].copy()] if held > full else []
        unit.done += full

    def put(self, task: _Task, lane: int) -> None:
        self._raise()
        lane %= len(self._queues)
        with self._counts:
            self._busy[lane] += 1
        self._queues[lane].put(task)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        for tasks in self._queues:
            tasks.put(None)
        for thread in self._threads:
            thread.join()
        self._raise()


# -- embedding ------------------------------------------------------------------------------
_TORCH_DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32"}


def _forward(model: Any, seqs: Sequence[str]) -> tuple[Any, Any]:
    """(B, Lmax, D) device rows of the backbone and the (B,) int64 lengths (host)."""

    ids, lengths = tokenize(list(seqs))
    with torch.inference_mode():
        return model(ids), lengths


def _pool(out: Any, lengths: Any) -> Any:
    """(B, D) float32 masked means of the (B, Lmax, D) rows over each sequence's positions."""
    with torch.inference_mode():
        lengths_dev = lengths.to(out.device)
        mask = torch.arange(out.shape[1], device=out.device)[None, :] < lengths_dev[:, None]
        # masked sum as one batched matmul (B, 1, L) @ (B, L, D): no (B, L, D) temporary
        summed = torch.bmm(mask.to(torch.float32)[:, None, :], out.float()).squeeze(1)
        return summed / lengths_dev[:, None].clamp(min=1)


def _to_host(tensor: Any, dtype: str) -> np.ndarray:
    """Cast on the device to the store dtype, then copy (bfloat16 -> its uint16 bits)."""
    return _host(tensor.to(getattr(torch, _TORCH_DTYPES[dtype])), dtype)


def _host(cast: Any, dtype: str) -> np.ndarray:
    """A tensor already in the store dtype -> host numpy array (bfloat16 -> uint16 bits)."""
    if dtype == "bfloat16":
        return cast.view(torch.int16).cpu().numpy().view(np.uint16)
    return cast.cpu().numpy()


def _gather_rows(out: Any, region: Region, dtype: str) -> np.ndarray:
    """(region.rows, D) store-dtype host rows of one batch (padding rows are zeros)."""
    with torch.inference_mode():
        # one pass per sequence: copy_ casts to the store dtype on the device; only the
        # padding rows are zeroed (no full zero fill)
        block = torch.empty(
            (region.rows, out.shape[2]), dtype=getattr(torch, dtype), device=out.device
        )
        at = 0
        for i, n in zip(region.picks, region.lengths, strict=True):
            block[at : at + n].copy_(out[i, :n])
            at += n
        if at < region.rows:
            block[at:].zero_()
        return _host(block, dtype)


def _gather_pooled(pooled: Any, region: Region, dtype: str) -> np.ndarray:
    """(len(region.ids), D) store-dtype pooled rows of one batch."""
    with torch.inference_mode():
        picks = torch.as_tensor(region.picks, device=pooled.device)
        return _to_host(pooled.index_select(0, picks), dtype)


def _padded(parts: list[np.ndarray], chunk_rows: int) -> np.ndarray:
    """Rows of a write unit so far, zero-padded to the next chunk boundary."""
    rows = sum(p.shape[0] for p in parts)
    if len(parts) == 1 and rows % chunk_rows == 0:
        return parts[0]  # one batch that fills its chunks: no copy
    out = np.zeros((-(-rows // chunk_rows) * chunk_rows, parts[0].shape[1]), parts[0].dtype)
    np.concatenate(parts, out=out[:rows]) if len(parts) > 1 else np.copyto(out[:rows], parts[0])
    return out


def _run(
    batches: Iterable[list[Unique]],
    regions: Sequence[Region],
    base: int,
    writer: StoreWriter,
    model: Any,
    *,
    rank: int,
    world_size: int,
    skipped: int,
    total_nt: int,
    progress: bool,
    n_ids: int,
    n_unique: int,
) -> EmbedStats:
    """Embed the batches of ``regions`` (this rank's share) and write them into ``base``+."""

    sleep = float(os.environ.get(SLOW_ENV, "0") or 0)
    start = time.perf_counter()
    calls = embedded = written = nucleotides = 0
    mine = {r.batch: r for r in regions if r.batch % world_size == rank}
    bar = tqdm(
        total=total_nt,
        unit="nt",
        unit_scale=True,
        disable=not progress,
        desc="embed" if world_size == 1 else f"embed rank {rank}",
        position=rank if world_size > 1 else None,
        dynamic_ncols=True,
    )
    pooled_only = writer.pooled_only
    run_key = uuid.uuid4().hex[:8]
    pool = _WriterPool(writer)
    unit_start, unit_since, unit_closed, lane = base, time.monotonic(), True, 0
    try:
        for index, batch in enumerate(batches):
            region = mine.get(index)
            if region is None:
                if index % world_size == rank:
                    bar.update(sum(len(u.seq) for u in batch))
                continue
            pairs = zip(region.picks, region.ids, strict=True)
            if any(sid not in batch[p].ids for p, sid in pairs):
                raise RuntimeError(f"batch {index} does not match its planned layout")
            # commits hold whole batches, so after a crash a batch is all done or all missing
            # and is recomputed with the same composition; when appending new names, only the
            # sequences still missing something go through the backbone
            todo = sorted(set(region.picks))
            out, lengths = _forward(model, [batch[p].seq for p in todo])
            calls += 1
            embedded += len(todo)
            nucleotides += sum(len(batch[p].seq) for p in todo)
            at = {p: i for i, p in enumerate(todo)}
            local = dataclasses.replace(region, picks=tuple(at[p] for p in region.picks))
            if unit_closed:  # this batch opens a new write unit
                unit_start, unit_since = base + region.start, time.monotonic()
                lane = pool.lane()
            # a partial unit is written padded to its chunk boundary and its last chunk is
            # rewritten when it grows (same lane): every write is whole chunks, rows before
            # records
            flush = region.closes or time.monotonic() - unit_since > COMMIT_SECONDS
            task = _Task(
                unit=unit_start,
                out=out,
                lengths=lengths,
                region=local,
                key=f"b{index:08d}-{run_key}",
                offsets=base + np.asarray(region.offsets, dtype=np.int64),
                rows=not pooled_only,
                flush=flush,
                closes=region.closes,
            )
            pool.put(task, lane)
            if flush:
                unit_since = time.monotonic()
            unit_closed = region.closes
            written += len(region.ids)
            bar.update(sum(len(u.seq) for u in batch))
            if sleep:
                time.sleep(sleep)
        pool.finish()
    except BaseException:
        bar.close()
        raise
    bar.close()
    return EmbedStats(
        n_ids=n_ids,
        n_unique=n_unique,
        n_embedded=embedded,
        n_written=written,
        n_skipped=skipped,
        backbone_calls=calls,
        nucleotides=nucleotides,
        seconds=time.perf_counter() - start,
    )


def store_attrs(model: Any, config: EmbedConfig) -> dict[str, Any]:
    """Root attributes a store written by ``model`` with ``config`` carries."""

    identity = model.identity
    return {
        "format_version": layout.FORMAT_VERSION,
        "backbone": identity.to_dict(),
        "backbone_key": identity.key,
        "tokenizer": dict(TOKENIZER_INFO),
        "dtype": config.dtype,
        "precision": config.precision,
        "compression": config.compression,
        "storage_dtype": layout.STORAGE_DTYPES[config.dtype],
        "d_model": int(model.config.d_model),
        "pooled_only": bool(config.pooled_only),
        "max_length": config.max_length,
        "command": config.command,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def embed_sequences(
    items: Iterable[tuple[str, str]],
    writer: StoreWriter,
    model: Any,
    *,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    max_length: int | None = None,
    progress: bool = False,
    done: Callable[[str], bool] | None = None,
) -> EmbedStats:
    """Embed (id, normalised sequence) items not yet in ``writer`` and write them.

    Groups items by content (the backbone runs once per unique sequence), checks lengths
    against ``model.config.max_seq_len`` (or truncates to ``max_length``), plans batches and
    their store regions and streams them through the writer pool. Holds the items in memory:
    meant for modest inputs (``predict``); :func:`embed_dataset` streams big ones.
    """
    uniques = group_items(items, max_length)
    check_lengths(
        ((u.ids[0], len(u.seq)) for u in uniques), int(model.config.max_seq_len), max_length
    )
    plan = plan_shapes(((len(u.seq), u.ids) for u in uniques), batch_tokens)
    regions, rows, skipped = plan_regions(
        plan, done or writer.__contains__, writer.chunk_rows, writer.pooled_only
    )
    return _run(
        plan_batches(uniques, batch_tokens),
        regions,
        writer.reserve(rows),
        writer,
        model,
        rank=0,
        world_size=1,
        skipped=skipped,
        total_nt=sum(len(u.seq) for u in uniques),
        progress=progress,
        n_ids=sum(len(u.ids) for u in uniques),
        n_unique=len(uniques),
    )


# -- whole datasets / FASTA files -----------------------------------------------------------
@dataclass(frozen=True)
class _Census:
    """First pass over the input: ids per unique content, and the lengths."""

    ids_by_key: dict[str, list[str]]
    length_by_key: dict[str, int]
    n_ids: int
    total_nt: int


def _census(source: Path, max_length: int | None, max_seq_len: int) -> _Census:
    ids_by_key: dict[str, list[str]] = {}
    length_by_key: dict[str, int] = {}
    key_of_id: dict[str, str] = {}
    lengths: list[tuple[str, int]] = []
    total = 0
    for sid, seq in source_records(source):
        if max_length is not None:
            seq = seq[:max_length]
        key = sequence_id(seq)
        if key_of_id.setdefault(sid, key) != key:
            raise InputError(f"id {sid!r} names two different sequences", source)
        ids = ids_by_key.get(key)
        if ids is None:
            ids_by_key[key] = [sid]
            length_by_key[key] = len(seq)
            total += len(seq)
            if len(seq) > max_seq_len:
                lengths.append((sid, len(seq)))
        elif sid not in ids:
            ids.append(sid)
    check_lengths(lengths, max_seq_len, max_length)
    return _Census(
        ids_by_key=ids_by_key, length_by_key=length_by_key, n_ids=len(key_of_id), total_nt=total
    )


def _check_stored_ids(
    store_path: str | Path, source: Path, census: _Census, attrs: dict[str, Any]
) -> None:
    """InputError when an id already in the store names a sequence of another length.

    The store keys sequences by id, so an id re-used for another sequence (possible with a
    hand-made FASTA; dataset ids are content hashes) would otherwise keep its old embedding.
    """

    if not store_exists(store_path):
        return
    with open_store(store_path) as store:
        check_compatible(store.attrs, attrs, store_path)  # other options: IncompatibleError
        if not len(store):
            return
        hashes = store.content_hashes()  # None: a store written before hashes existed
        for key, ids in census.ids_by_key.items():
            want = census.length_by_key[key]
            for sid in ids:
                if sid in store and store.length(sid) != want:
                    raise InputError(
                        f"id {sid!r} is stored in {store_path} with {store.length(sid)} positions "
                        f"but names a sequence of {want} nt here: the store holds another "
                        "sequence under that name; rename it or use another --store",
                        source,
                    )
                if hashes is not None and sid in hashes and hashes[sid] != key[:16]:
                    raise InputError(
                        f"id {sid!r} is stored in {store_path} for another sequence (content "
                        f"hash {hashes[sid]}, here {key[:16]}): the store holds another "
                        "sequence under that name; rename it or use another --store",
                        source,
                    )


def _hashes_of(census: _Census) -> dict[str, str]:
    """id -> content hash (:func:`layout.content_hash`: the census key is the same SHA-256)."""
    return {sid: key[:16] for key, ids in census.ids_by_key.items() for sid in ids}


def _stream_uniques(source: Path, census: _Census, max_length: int | None) -> Iterator[Unique]:
    emitted: set[str] = set()
    for _sid, seq in source_records(source):
        if max_length is not None:
            seq = seq[:max_length]
        key = sequence_id(seq)
        if key not in emitted:
            emitted.add(key)
            yield Unique(seq, tuple(census.ids_by_key[key]))


def embed_dataset(
    source: str | Path,
    store_path: str | Path,
    backbone_source: str | Path,
    config: EmbedConfig | None = None,
) -> EmbedSummary:
    """Embed every unique sequence of a dataset folder (or FASTA file) not yet in the store.

    Single process: appends to ``store_path`` directly (Zarr) or through a journal (HDF5).
    Under ``torchrun`` (``WORLD_SIZE`` > 1): each rank writes its own shard
    ``STORE.parts/rank-K.zarr``, and rank 0 merges the shards after a barrier.
    """

    config = config or EmbedConfig()
    config.validate()
    backend_of(store_path, write=True)
    source = Path(source)
    store_path = store_path if is_url(store_path) else Path(store_path)  # URL: s3://b/x.zarr
    ctx = dist_context()
    device = ctx.device_for(config.device)
    if config.precision != "float32" and not device.startswith("cuda"):
        raise ConfigError(
            f"--precision {config.precision} is an autocast that runs on CUDA only; "
            "use --precision float32 on the CPU"
        )
    model = load_backbone(backbone_source, device=device, dtype=config.precision)
    if config.expect_backbone_key and model.identity.key != config.expect_backbone_key:
        raise IncompatibleError(
            f"{backbone_source}: backbone {model.identity.name!r} (identity "
            f"{model.identity.key}) is not the one expected (identity "
            f"{config.expect_backbone_key}); nothing was embedded"
        )
    census = _census(source, config.max_length, int(model.config.max_seq_len))
    attrs = store_attrs(model, config)
    _check_stored_ids(store_path, source, census, attrs)

    shapes: list[Shape] = [
        (census.length_by_key[key], tuple(ids)) for key, ids in census.ids_by_key.items()
    ]
    plan = plan_shapes(shapes, config.batch_tokens, config.window_nucleotides)

    def run(writer: StoreWriter, regions: list[Region], base: int, skipped: int) -> EmbedStats:
        batches = plan_batches(
            _stream_uniques(source, census, config.max_length),
            config.batch_tokens,
            config.window_nucleotides,
        )
        return _run(
            batches,
            regions,
            base,
            writer,
            model,
            rank=ctx.rank,
            world_size=ctx.world_size,
            skipped=skipped,
            total_nt=census.total_nt // ctx.world_size,
            progress=config.progress,
            n_ids=census.n_ids,
            n_unique=len(census.ids_by_key),
        )

    if ctx.world_size == 1:
        if backend_of(store_path) == "zarr" and not is_url(store_path) and part_paths(store_path):
            merge_parts(store_path)  # leftovers of an interrupted format-1 distributed run
        with open_writer(store_path, attrs) as writer:
            writer.set_content_hashes(_hashes_of(census))
            regions, rows, skipped = plan_regions(
                plan, writer.__contains__, writer.chunk_rows, config.pooled_only
            )
            stats = run(writer, regions, writer.reserve(rows), skipped)
    else:
        stats = _run_distributed(
            ctx, store_path, attrs, plan, config.pooled_only, run, _hashes_of(census)
        )
    with open_store(store_path) as store:
        n_store = len(store)
    return EmbedSummary(
        store=str(store_path),
        stats=stats,
        rank=ctx.rank,
        world_size=ctx.world_size,
        store_sequences=n_store,
    )


def _run_distributed(
    ctx: DistContext,
    store_path: str | Path,
    attrs: dict[str, Any],
    plan: list[list[Shape]],
    pooled_only: bool,
    run: Callable[[StoreWriter, list[Region], int, int], EmbedStats],
    hashes: dict[str, str],
) -> EmbedStats:
    """Zarr: every rank writes its batches straight into the one store (rank 0 reserves the
    regions and folds the commit records at the end). HDF5 (single writer): every rank keeps
    a Zarr journal ``STORE.parts/rank-K.zarr``; rank 0 assembles the file after a barrier."""

    ctx.init()
    try:
        if store_exists(store_path):  # every rank refuses an incompatible store before a barrier
            with open_store(store_path) as store:
                check_compatible(store.attrs, attrs, store_path)
        mine = lambda index: index % ctx.world_size == ctx.rank  # noqa: E731
        if backend_of(store_path) == "zarr":
            writer = None
            if ctx.rank == 0:
                if not is_url(store_path):
                    merge_parts(store_path)  # leftovers of an interrupted format-1 run
                writer = open_zarr_writer(store_path, attrs)  # creates, locks, folds at close
            ctx.barrier()
            if writer is None:
                writer = open_zarr_writer(store_path, attrs, owner=False)
            writer.set_content_hashes(hashes)  # every rank's commit records carry them
            try:
                regions, rows, skipped = plan_regions(
                    plan,
                    writer.__contains__,
                    writer.chunk_rows,
                    pooled_only,
                    count=mine,
                    writer_of=lambda index: index % ctx.world_size,
                )
                base = ctx.broadcast(writer.reserve(rows) if ctx.rank == 0 else 0)
                writer.adopt(base, rows)
                stats = run(writer, regions, base, skipped)
                if ctx.rank != 0:
                    writer.close()  # records are committed; nothing to fold here
            except BaseException:
                writer.abandon()
                raise
            ctx.barrier()
            if ctx.rank == 0:
                writer.close()
            ctx.barrier()
            return stats
        if ctx.rank == 0:
            merge_parts(store_path)  # leftovers of an interrupted run
        ctx.barrier()
        stored: set[str] = set()
        if store_exists(store_path):
            with open_store(store_path) as store:
                stored = set(store.ids())
        with open_writer(store_path, attrs, part=ctx.rank) as journal:
            journal.set_content_hashes(hashes)
            done = lambda sid: sid in stored or sid in journal  # noqa: E731
            regions, rows, skipped = plan_regions(
                plan, done, journal.chunk_rows, pooled_only, keep=mine, count=mine
            )
            stats = run(journal, regions, journal.reserve(rows), skipped)
        ctx.barrier()
        if ctx.rank == 0:
            merge_parts(store_path)
        ctx.barrier()
    finally:
        ctx.shutdown()
    return stats
