"""Deterministic batch planning for the embed stage (no torch, no I/O).

In: (id, sequence) items. ``group_items`` groups them by (truncated) content into
:class:`Unique` (one sequence, every id naming it); ``check_lengths`` refuses over-long
sequences by name; ``plan_batches`` sorts windows of uniques by length (longest first, then
id) and packs them into batches whose padded size ``n * longest`` stays within
``batch_tokens``. The plan depends only on the input, never on what a store already holds,
so a resumed or distributed run computes every batch with the same composition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from embedhead.dataset import sequence_id
from embedhead.errors import ConfigError, InputError

WINDOW_NUCLEOTIDES = 1 << 26


@dataclass(frozen=True)
class Unique:
    """One unique (possibly truncated) sequence and every id that names it."""

    seq: str
    ids: tuple[str, ...]


def _windows(uniques: Iterable[Unique], window_nucleotides: int) -> Iterator[list[Unique]]:
    window: list[Unique] = []
    size = 0
    for item in uniques:
        window.append(item)
        size += len(item.seq)
        if size >= window_nucleotides:
            yield window
            window, size = [], 0
    if window:
        yield window


def plan_batches(
    uniques: Iterable[Unique], batch_tokens: int, window_nucleotides: int = WINDOW_NUCLEOTIDES
) -> Iterator[list[Unique]]:
    """Deterministic length-sorted batches: padded size (n * longest) <= batch_tokens."""
    for window in _windows(uniques, window_nucleotides):
        window.sort(key=lambda u: (-len(u.seq), u.ids[0]))
        batch: list[Unique] = []
        for item in window:
            longest = len(batch[0].seq) if batch else len(item.seq)
            if batch and (len(batch) + 1) * longest > batch_tokens:
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch


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
