"""Deterministic batch planning for the embed stage (no torch, no I/O).

In: (id, sequence) items. ``group_items`` groups them by (truncated) content into
:class:`Unique` (one sequence, every id naming it); ``check_lengths`` refuses over-long
sequences by name; ``plan_batches`` sorts windows of uniques by length (longest first, then
id) and packs them into batches whose padded size ``n * longest`` stays within
``batch_tokens``. The plan depends only on the input, never on what a store already holds,
so a resumed or distributed run computes every batch with the same composition.

Layout (format 2 stores): ``plan_shapes`` packs (length, ids) pairs exactly like
``plan_batches`` packs sequences, so every batch is known before any sequence is read, and
``plan_regions`` gives each batch still to write a chunk-aligned region of whole chunks:
``Region.offsets`` (one per written id, relative to the run's reserved base) and ``rows``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from embedhead.dataset import sequence_id
from embedhead.errors import ConfigError, InputError

WINDOW_NUCLEOTIDES = 1 << 26


@dataclass(frozen=True)
class Unique:
    """One unique (possibly truncated) sequence and every id that names it."""

    seq: str
    ids: tuple[str, ...]


T = TypeVar("T")
Shape = tuple[int, tuple[str, ...]]
"""(length, ids) of one unique sequence: what the layout needs, without the sequence."""


def _pack(
    items: Iterable[T], batch_tokens: int, window_nucleotides: int, shape: Callable[[T], Shape]
) -> Iterator[list[T]]:
    window: list[T] = []
    size = 0

    def flush() -> Iterator[list[T]]:
        window.sort(key=lambda u: (-shape(u)[0], shape(u)[1][0]))
        batch: list[T] = []
        for item in window:
            longest = shape(batch[0])[0] if batch else shape(item)[0]
            if batch and (len(batch) + 1) * longest > batch_tokens:
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    for item in items:
        window.append(item)
        size += shape(item)[0]
        if size >= window_nucleotides:
            yield from flush()
            window, size = [], 0
    if window:
        yield from flush()


def plan_batches(
    uniques: Iterable[Unique], batch_tokens: int, window_nucleotides: int = WINDOW_NUCLEOTIDES
) -> Iterator[list[Unique]]:
    """Deterministic length-sorted batches: padded size (n * longest) <= batch_tokens."""
    return _pack(uniques, batch_tokens, window_nucleotides, lambda u: (len(u.seq), u.ids))


def plan_shapes(
    shapes: Iterable[Shape], batch_tokens: int, window_nucleotides: int = WINDOW_NUCLEOTIDES
) -> list[list[Shape]]:
    """The batches of :func:`plan_batches` from (length, ids) alone (same order, same packing)."""
    return list(_pack(shapes, batch_tokens, window_nucleotides, lambda s: s))


@dataclass(frozen=True)
class Region:
    """Where one batch's rows go: ``picks[i]`` is the batch position of the unique written
    under ``ids[i]`` (an id of a unique already stored is left out) at relative ``offsets[i]``.

    Batches smaller than a chunk share a *write unit* (consecutive batches of one rank, packed
    back to back until the unit spans at least a chunk); ``rows`` of the unit's last region
    include the padding to the next chunk boundary, and ``closes`` marks it.
    """

    batch: int
    start: int
    rows: int
    picks: tuple[int, ...]
    ids: tuple[str, ...]
    offsets: tuple[int, ...]
    lengths: tuple[int, ...]
    closes: bool = True


def plan_regions(
    batches: Iterable[list[Shape]],
    done: Callable[[str], bool],
    chunk_rows: int,
    pooled_only: bool = False,
    keep: Callable[[int], bool] = lambda index: True,
    count: Callable[[int], bool] = lambda index: True,
    writer_of: Callable[[int], int] = lambda index: 0,
) -> tuple[list[Region], int, int]:
    """Regions of the kept batches still to write, relative to a reserved base.

    Write units (see :class:`Region`) start on chunk boundaries and span whole chunks, and a
    unit holds batches of one writer (``writer_of(batch index)``, e.g. the torchrun rank), so
    no two writers ever share a chunk. Returns (regions, rows to reserve, ids already stored
    in ``count``-ed batches). Deterministic in its inputs: every rank computes the same layout.
    """
    regions: list[Region] = []
    units: dict[int, tuple[int, int, int]] = {}  # writer -> (last region, unit start, claim end)
    cursor = skipped = 0

    def align(rows: int) -> int:
        return -(-rows // chunk_rows) * chunk_rows

    def close(writer: int) -> None:
        last, _, _ = units.pop(writer)
        region = regions[last]
        padded = align(region.start + region.rows) - region.start
        regions[last] = dataclasses.replace(region, rows=padded, closes=True)

    for index, batch in enumerate(batches):
        if not keep(index):
            continue
        picks: list[int] = []
        ids: list[str] = []
        lengths: list[int] = []
        for pos, (length, names) in enumerate(batch):
            for sid in names:
                if done(sid):
                    skipped += count(index)
                else:
                    picks.append(pos)
                    ids.append(sid)
                    lengths.append(length)
        if not ids:
            continue
        rows = 0 if pooled_only else sum(lengths)
        writer = writer_of(index)
        if writer in units:
            last, unit_start, claim = units[writer]
            start = regions[last].start + regions[last].rows
            if start + rows > claim and claim != cursor:  # another unit was claimed after it
                close(writer)
        if writer in units:
            if start + rows > claim:  # the newest claim grows in place
                claim = cursor = align(start + rows)
        else:
            unit_start = start = cursor
            claim = cursor = cursor + align(rows)
        offsets: list[int] = []
        end = start
        for n in lengths:
            offsets.append(end)
            end += 0 if pooled_only else n
        regions.append(
            Region(index, start, rows, tuple(picks), tuple(ids), tuple(offsets),
                   tuple(lengths), closes=False)
        )  # fmt: skip
        units[writer] = (len(regions) - 1, unit_start, claim)
        if end - unit_start >= chunk_rows or pooled_only:
            close(writer)
    for writer in list(units):
        close(writer)
    return regions, cursor, skipped


def group_items(items: Iterable[tuple[str, str]], max_length: int | None) -> list[Unique]:
    """Group (id, sequence) items by (truncated) sequence content, in first-seen order."""
    groups: dict[str, tuple[str, list[str]]] = {}
    seen_ids: dict[str, str] = {}
    for sid, seq in items:
        if max_length is not None:
            seq = seq[:max_length]
        if not seq:
            raise InputError(f"sequence {sid!r} is empty: nothing to embed")
        key = sequence_id(seq)
        if seen_ids.setdefault(sid, key) != key:
            raise InputError(f"id {sid!r} names two different sequences")
        entry = groups.setdefault(key, (seq, []))
        if sid not in entry[1]:
            entry[1].append(sid)
    return [Unique(seq, tuple(ids)) for seq, ids in groups.values()]


def check_lengths(
    named_lengths: Iterable[tuple[str, int]], max_seq_len: int, max_length: int | None
) -> None:
    """ConfigError naming the sequences longer than the backbone accepts (unless truncating)."""
    if max_length is not None:
        if max_length > max_seq_len:
            raise ConfigError(
                f"--max-length {max_length} exceeds the backbone's max_seq_len {max_seq_len}"
            )
        return
    too_long = [(sid, n) for sid, n in named_lengths if n > max_seq_len]
    if too_long:
        shown = ", ".join(f"{sid} ({n} nt)" for sid, n in too_long[:5])
        more = f" and {len(too_long) - 5} more" if len(too_long) > 5 else ""
        raise ConfigError(
            f"{len(too_long)} sequence(s) longer than the backbone's max_seq_len {max_seq_len}: "
            f"{shown}{more}; pass --max-length {max_seq_len} to truncate them"
        )
