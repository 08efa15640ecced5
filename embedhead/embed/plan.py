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
    under ``ids[i]`` (an id of a unique already stored is left out) at relative ``offsets[i]``."""

    batch: int
    start: int
    rows: int
    picks: tuple[int, ...]
    ids: tuple[str, ...]
    offsets: tuple[int, ...]
    lengths: tuple[int, ...]


def plan_regions(
    batches: Iterable[list[Shape]],
    done: Callable[[str], bool],
    chunk_rows: int,
    pooled_only: bool = False,
    keep: Callable[[int], bool] = lambda index: True,
    count: Callable[[int], bool] = lambda index: True,
) -> tuple[list[Region], int, int]:
    """Regions of the kept batches still to write, chunk-aligned, relative to a reserved base.

    Returns (regions, rows to reserve, ids already stored in ``count``-ed batches).
    Deterministic in its inputs, so every torchrun rank computes the same layout.
    """
    regions: list[Region] = []
    cursor = skipped = 0
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
        offsets: list[int] = []
        end = cursor
        for n in lengths:
            offsets.append(end)
            end += 0 if pooled_only else n
        rows = -(-(end - cursor) // chunk_rows) * chunk_rows
        regions.append(
            Region(index, cursor, rows, tuple(picks), tuple(ids), tuple(offsets), tuple(lengths))
        )
        cursor += rows
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
