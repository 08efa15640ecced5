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

import datetime as _dt
import os
import queue
import threading
import time
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
    Unique,
    check_lengths,
    group_items,
    plan_batches,
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
from embedhead.store.base import StoreWriter

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


# -- the writer thread ----------------------------------------------------------------------
class _WriterThread:
    """Writes (ids, positions, pooled) batches and commits, overlapping the backbone."""

    def __init__(self, writer: StoreWriter, commit_seconds: float = 2.0) -> None:
        self._writer = writer
        self._queue: queue.Queue[tuple[list[str], list[np.ndarray], np.ndarray] | None] = (
            queue.Queue(maxsize=4)
        )
        self._error: BaseException | None = None
        self._commit_seconds = commit_seconds
        self._thread = threading.Thread(target=self._run, name="embedhead-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = time.monotonic()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                self._writer.write(*item)
                if self._queue.empty() or time.monotonic() - last > self._commit_seconds:
                    self._writer.commit()
                    last = time.monotonic()
            self._writer.commit()
        except BaseException as exc:
            self._error = exc
            while True:  # drain so the producer never blocks on a dead consumer
                try:
                    if self._queue.get(timeout=0.1) is None:
                        break
                except queue.Empty:
                    if not self._thread.is_alive():
                        break

    def put(self, ids: list[str], positions: list[np.ndarray], pooled: np.ndarray) -> None:
        self._raise()
        self._queue.put((ids, positions, pooled))

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()


# -- embedding ------------------------------------------------------------------------------
def _forward(
    model: Any, seqs: Sequence[str]
) -> tuple[list[np.ndarray], np.ndarray]:  # pragma: no cover - thin torch glue

    ids, lengths = tokenize(list(seqs))
    with torch.inference_mode():
        out = model(ids)  # (B, Lmax, D) float32
        lengths_dev = lengths.to(out.device)
        mask = torch.arange(out.shape[1], device=out.device)[None, :] < lengths_dev[:, None]
        pooled = (out * mask[..., None]).sum(dim=1) / lengths_dev[:, None].clamp(min=1)
        out_np = out.float().cpu().numpy()
        pooled_np = pooled.float().cpu().numpy()
    rows = [out_np[i, : int(n)] for i, n in enumerate(lengths.tolist())]
    return rows, pooled_np


def _run(
    batches: Iterable[list[Unique]],
    writer: StoreWriter,
    model: Any,
    *,
    done: Callable[[str], bool],
    rank: int,
    world_size: int,
    total_nt: int,
    progress: bool,
    n_ids: int,
    n_unique: int,
) -> EmbedStats:

    sleep = float(os.environ.get(SLOW_ENV, "0") or 0)
    start = time.perf_counter()
    calls = embedded = written = skipped = nucleotides = 0
    bar = tqdm(
        total=total_nt,
        unit="nt",
        unit_scale=True,
        disable=not progress,
        desc="embed" if world_size == 1 else f"embed rank {rank}",
        position=rank if world_size > 1 else None,
        dynamic_ncols=True,
    )
    thread = _WriterThread(writer)
    try:
        for index, batch in enumerate(batches):
            if index % world_size != rank:
                continue
            batch_nt = sum(len(u.seq) for u in batch)
            # commits hold whole batches, so after a crash a batch is all done or all missing
            # and is recomputed with the same composition; when appending new names, only the
            # sequences still missing something go through the backbone
            todo = [(u, m) for u in batch if (m := [sid for sid in u.ids if not done(sid)])]
            skipped += sum(len(u.ids) for u in batch) - sum(len(m) for _, m in todo)
            if not todo:
                bar.update(batch_nt)
                continue
            rows, pooled = _forward(model, [u.seq for u, _ in todo])
            calls += 1
            embedded += len(todo)
            nucleotides += sum(len(u.seq) for u, _ in todo)
            out_ids: list[str] = []
            out_rows: list[np.ndarray] = []
            pick: list[int] = []
            for i, (_, missing) in enumerate(todo):
                for sid in missing:
                    out_ids.append(sid)
                    out_rows.append(rows[i])
                    pick.append(i)
            thread.put(out_ids, out_rows, pooled[pick])
            written += len(out_ids)
            bar.update(batch_nt)
            if sleep:
                time.sleep(sleep)
        thread.finish()
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
    rank: int = 0,
    world_size: int = 1,
) -> EmbedStats:
    """Embed (id, normalised sequence) items not yet in ``writer`` and write them.

    Groups items by content (the backbone runs once per unique sequence), checks lengths
    against ``model.config.max_seq_len`` (or truncates to ``max_length``), plans batches and
    streams them through the writer thread. Holds the items in memory: meant for modest inputs
    (``predict``); :func:`embed_dataset` streams big ones.
    """
    uniques = group_items(items, max_length)
    check_lengths(
        ((u.ids[0], len(u.seq)) for u in uniques), int(model.config.max_seq_len), max_length
    )
    n_ids = sum(len(u.ids) for u in uniques)
    return _run(
        plan_batches(uniques, batch_tokens),
        writer,
        model,
        done=done if done is not None else writer.__contains__,
        rank=rank,
        world_size=world_size,
        total_nt=sum(len(u.seq) for u in uniques) // max(1, world_size),
        progress=progress,
        n_ids=n_ids,
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
    store_path: Path, source: Path, census: _Census, attrs: dict[str, Any]
) -> None:
    """InputError when an id already in the store names a sequence of another length.

    The store keys sequences by id, so an id re-used for another sequence (possible with a
    hand-made FASTA; dataset ids are content hashes) would otherwise keep its old embedding.
    """

    if not store_path.exists():
        return
    with open_store(store_path) as store:
        check_compatible(store.attrs, attrs, store_path)  # other options: IncompatibleError
        if not len(store):
            return
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
    backend_of(store_path)
    source = Path(source)
    store_path = Path(store_path)
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

    def run(writer: StoreWriter, done: Callable[[str], bool]) -> EmbedStats:
        batches = plan_batches(
            _stream_uniques(source, census, config.max_length),
            config.batch_tokens,
            config.window_nucleotides,
        )
        return _run(
            batches,
            writer,
            model,
            done=done,
            rank=ctx.rank,
            world_size=ctx.world_size,
            total_nt=census.total_nt // ctx.world_size,
            progress=config.progress,
            n_ids=census.n_ids,
            n_unique=len(census.ids_by_key),
        )

    if ctx.world_size == 1:
        if backend_of(store_path) == "zarr" and part_paths(store_path):
            merge_parts(store_path)  # leftovers of an interrupted distributed run
        with open_writer(store_path, attrs) as writer:
            stats = run(writer, writer.__contains__)
    else:
        stats = _run_distributed(ctx, store_path, attrs, run)
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
    store_path: Path,
    attrs: dict[str, Any],
    run: Callable[[StoreWriter, Callable[[str], bool]], EmbedStats],
) -> EmbedStats:

    ctx.init()
    try:
        if store_path.exists():  # every rank refuses an incompatible store before any barrier
            with open_store(store_path) as store:
                check_compatible(store.attrs, attrs, store_path)
        if ctx.rank == 0:
            merge_parts(store_path)  # leftovers of an interrupted run
        ctx.barrier()
        stored: set[str] = set()
        if store_path.exists():
            with open_store(store_path) as store:
                stored = set(store.ids())
        with open_writer(store_path, attrs, part=ctx.rank) as writer:
            stats = run(writer, lambda sid: sid in stored or sid in writer)
        ctx.barrier()
        if ctx.rank == 0:
            merge_parts(store_path)
        ctx.barrier()
    finally:
        ctx.shutdown()
    return stats
