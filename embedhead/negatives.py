"""Negative (label 0) pairs built from positive pairs of one split.

In: a sequence of positive :class:`~embedhead.dataset.PairRecord` (one split).
Out: negative records pairing the first sequence of positive ``i`` with the second sequence of
positive ``j``; score, norm_score and identity are NaN, coordinates are those of the two source
sequences, the block id is ``<block i>|<block j>``.

Methods (both seeded, both deterministic for a given seed and input order):

- ``swap`` (the thesis method): shuffle the positives, pair each with the next one in the
  shuffled order (cyclically).
- ``shuffle``: a uniformly drawn derangement of the positives.

A candidate is refused when its two sources come from the same block or from blocks that
overlap (same db and chrom, overlapping forward coordinates on either side), when it pairs a
sequence with itself or with one of its true partners (any positive pair, either orientation),
or when it repeats an earlier negative. Refused candidates are re-drawn (``swap``: the next
positives in the shuffled order; ``shuffle``: a random exchange with another position that
keeps both valid) a bounded number of times, then skipped: the count can fall short of
``ratio * n`` when almost everything overlaps (e.g. a single block).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from embedhead.dataset import PairRecord
from embedhead.errors import ConfigError

NEGATIVE_METHODS = ("swap", "shuffle")
MAX_TRIES = 50


def _sides(rec: PairRecord) -> tuple[tuple[str, str, int | None, int | None], ...]:
    return (
        (rec.db1, rec.chrom1, rec.start1, rec.end1),
        (rec.db2, rec.chrom2, rec.start2, rec.end2),
    )


def _overlap(
    a: tuple[str, str, int | None, int | None], b: tuple[str, str, int | None, int | None]
) -> bool:
    if not a[1] or a[0] != b[0] or a[1] != b[1]:
        return False
    if a[2] is None or a[3] is None or b[2] is None or b[3] is None:
        return False
    return a[2] < b[3] and b[2] < a[3]


def sources_conflict(a: PairRecord, b: PairRecord) -> bool:
    """True when two positives share a block or overlap on the same db/chrom (either side)."""
    if a.block_id == b.block_id:
        return True
    return any(_overlap(x, y) for x in _sides(a) for y in _sides(b))


class _Builder:
    """Checks candidates and collects accepted negatives."""

    def __init__(self, positives: Sequence[PairRecord], split: str, id_prefix: str) -> None:
        self.pos = positives
        self.split = split
        self.id_prefix = id_prefix
        self.partners: set[tuple[str, str]] = set()
        for p in positives:
            self.partners.add((p.seq1, p.seq2))
            self.partners.add((p.seq2, p.seq1))
        self.seen: set[tuple[str, str]] = set()
        self.out: list[PairRecord] = []

    def ok(self, i: int, j: int) -> bool:
        if i == j:
            return False
        a, b = self.pos[i], self.pos[j]
        key = (a.seq1, b.seq2)
        if a.seq1 == b.seq2 or key in self.partners or key in self.seen:
            return False
        return not sources_conflict(a, b)

    def add(self, i: int, j: int) -> None:
        a, b = self.pos[i], self.pos[j]
        self.seen.add((a.seq1, b.seq2))
        self.out.append(
            PairRecord(
                pair_id=f"{self.id_prefix}{len(self.out)}",
                label=0,
                seq1=a.seq1,
                seq2=b.seq2,
                len1=a.len1,
                len2=b.len2,
                score=math.nan,
                norm_score=math.nan,
                identity=math.nan,
                db1=a.db1,
                chrom1=a.chrom1,
                start1=a.start1,
                end1=a.end1,
                strand1=a.strand1,
                db2=b.db2,
                chrom2=b.chrom2,
                start2=b.start2,
                end2=b.end2,
                strand2=b.strand2,
                block_id=f"{a.block_id}|{b.block_id}",
                split=self.split,
            )
        )


def _swap_round(b: _Builder, rng: random.Random, target: int) -> None:
    n = len(b.pos)
    order = list(range(n))
    rng.shuffle(order)
    for k in range(n):
        if len(b.out) >= target:
            return
        i = order[k]
        for step in range(1, min(n, MAX_TRIES + 1)):
            j = order[(k + step) % n]
            if b.ok(i, j):
                b.add(i, j)
                break


def _derangement(n: int, rng: random.Random) -> list[int]:
    perm = list(range(n))
    while True:
        rng.shuffle(perm)
        if all(p != i for i, p in enumerate(perm)):
            return perm


def _shuffle_round(b: _Builder, rng: random.Random, target: int) -> None:
    n = len(b.pos)
    perm = _derangement(n, rng)
    for i in range(n):
        if b.ok(i, perm[i]):
            continue
        for _ in range(MAX_TRIES):
            k = rng.randrange(n)
            if b.ok(i, perm[k]) and b.ok(k, perm[i]):
                perm[i], perm[k] = perm[k], perm[i]
                break
    for i in range(n):
        if len(b.out) >= target:
            return
        if b.ok(i, perm[i]):
            b.add(i, perm[i])


def make_negatives(
    positives: Sequence[PairRecord],
    method: str = "swap",
    ratio: float = 1.0,
    seed: int | str = 0,
    split: str | None = None,
    id_prefix: str = "neg",
) -> list[PairRecord]:
    """About ``round(ratio * len(positives))`` negatives drawn from ``positives``.

    ``split`` labels the negatives (default: the split of the first positive); pair ids are
    ``<id_prefix><k>``. Raises ConfigError for an unknown method or a negative ratio.
    """
    if method not in NEGATIVE_METHODS:
        raise ConfigError(
            f"unknown negatives method {method!r} (choose from {', '.join(NEGATIVE_METHODS)})"
        )
    if not math.isfinite(ratio) or ratio < 0:
        raise ConfigError(f"negative ratio must be a number >= 0, not {ratio}")
    n = len(positives)
    target = round(ratio * n)
    if n < 2 or target == 0:
        return []
    label = split if split is not None else positives[0].split
    builder = _Builder(positives, label, id_prefix)
    rng = random.Random(f"negatives:{method}:{seed}")
    round_fn = _swap_round if method == "swap" else _shuffle_round
    max_rounds = math.ceil(ratio) + 3
    for _ in range(max_rounds):
        if len(builder.out) >= target:
            break
        round_fn(builder, rng, target)
    return builder.out
