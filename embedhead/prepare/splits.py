"""Seeded train/val/test assignment of positive pairs, grouped so nothing leaks across splits.

In: a sequence of positive :class:`~embedhead.dataset.PairRecord`. Out: one split name per
record (same order).

Grouping: records are first grouped by ``block_id`` (``--split-by block`` and ``random``) or by
the reference side's ``db``/``chrom`` (``--split-by chrom``; records without a chrom fall back
to their block). Groups that share a block or any sequence id are then merged, so no block,
none of its chunks and no sequence is ever in two splits. Groups whose windows *overlap* on
the genome are merged as well: two windows whose intervals on one side (same db and chrom,
forward, strand-normalised coordinates, half-open) overlap -- reference with reference, query
with query, or either with either when both sides are the same assembly -- land in one group,
so a nested block (kent's dog net has a 68-nt block inside a 711-nt one) or a window of a
duplicated region never sits in one split while the region holding it sits in another.
Overlaps are found by one sweep over the intervals sorted by start per (db, chrom):
O(n log n). Windows without coordinates (thesis CSV rows, AXT minus rows without
``--chrom-sizes``) are grouped by block and sequence only.

Assignment: ``block`` and ``chrom`` shuffle the groups (seeded), order them largest first and
give each to the split furthest below its target count (fractions times the number of pairs),
which lands close to the requested fractions; ``random`` draws each group's split
independently with the fractions as probabilities (no balancing).

Negatives are built afterwards *within* each split from that split's positives (see
:mod:`embedhead.prepare.negatives`), so they inherit the split and cannot leak either.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from embedhead.dataset import SPLITS, PairRecord
from embedhead.errors import ConfigError

SPLIT_MODES = ("block", "chrom", "random")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


def parse_fractions(text: str) -> tuple[float, float, float]:
    """Parse ``"0.7,0.15,0.15"`` (or ``70,15,15``: normalised) into three fractions."""
    try:
        values = [float(v) for v in text.replace(":", ",").replace("/", ",").split(",")]
    except ValueError as exc:
        raise ConfigError(
            f"split fractions must be three numbers like 0.7,0.15,0.15: {text!r}"
        ) from exc
    if len(values) != 3:
        raise ConfigError(f"split fractions need three values (train,val,test), got {text!r}")
    return check_fractions((values[0], values[1], values[2]))


def check_fractions(values: tuple[float, float, float]) -> tuple[float, float, float]:
    """Validate (non-negative, finite, train > 0) and normalise to sum 1."""
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"split fractions must be finite and >= 0, not {values}")
    total = sum(values)
    if total <= 0 or values[0] <= 0:
        raise ConfigError(f"the train fraction must be > 0, not {values}")
    return (values[0] / total, values[1] / total, values[2] / total)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent.setdefault(x, x)
        root = x
        while parent != root:
            root = parent
            parent = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def group_key(rec: PairRecord, by: str) -> str:
    """The grouping key of one record for ``--split-by``."""
    if by == "chrom" and rec.chrom1:
        return f"chrom\t{rec.db1}\t{rec.chrom1}"
    return f"block\t{rec.block_id}"


def overlapping_pairs(records: Sequence[PairRecord]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` that link every cluster of genomically overlapping records.

    Both sides of every record with a chrom and coordinates are pooled per (db, chrom) and
    swept in start order; each interval that starts before the running end of its cluster is
    linked to the cluster's first member (so a union over the pairs joins exactly the
    transitively overlapping records). Half-open intervals: touching ones do not overlap.
    """
    by_chrom: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for i, rec in enumerate(records):
        for db, chrom, start, end in (
            (rec.db1, rec.chrom1, rec.start1, rec.end1),
            (rec.db2, rec.chrom2, rec.start2, rec.end2),
        ):
            if chrom and start is not None and end is not None and end > start:
                by_chrom.setdefault((db, chrom), []).append((start, end, i))
    links: list[tuple[int, int]] = []
    for intervals in by_chrom.values():
        intervals.sort()
        first, reach = -1, -1
        for start, end, i in intervals:
            if first >= 0 and start < reach:
                if i != first:
                    links.append((first, i))
                reach = max(reach, end)
            else:
                first, reach = i, end
    return links


def group_records(records: Sequence[PairRecord], by: str) -> list[list[int]]:
    """Indices of records grouped by key, merged when groups share a block or a sequence, or
    when their windows overlap on the genome (:func:`overlapping_pairs`)."""
    uf = _UnionFind()
    keys = [group_key(r, by) for r in records]
    for key, rec in zip(keys, records, strict=True):
        uf.union(key, f"block\t{rec.block_id}")
        uf.union(key, "seq\t" + rec.seq1)
        uf.union(key, "seq\t" + rec.seq2)
    for i, j in overlapping_pairs(records):
        uf.union(keys[i], keys[j])
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(uf.find(key), []).append(i)
    return list(groups.values())


def assign_splits(
    records: Sequence[PairRecord],
    by: str = "block",
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> list[str]:
    """Split name (``train``/``val``/``test``) for each record; see the module docstring."""
    if by not in SPLIT_MODES:
        raise ConfigError(f"unknown --split-by {by!r} (choose from {', '.join(SPLIT_MODES)})")
    fractions = check_fractions(fractions)
    groups = group_records(records, by)
    rng = random.Random(f"splits:{by}:{seed}")
    rng.shuffle(groups)
    out = [""] * len(records)
    if by == "random":
        cumulative = [sum(fractions[: k + 1]) for k in range(3)]
        for members in groups:
            draw = rng.random()
            k = next((k for k, c in enumerate(cumulative) if draw < c), 0)
            for i in members:
                out[i] = SPLITS[k]
        return out
    groups.sort(key=len, reverse=True)
    total = len(records)
    filled = [0, 0, 0]
    for members in groups:
        deficits = [fractions[k] * total - filled[k] for k in range(3)]
        k = max(range(3), key=lambda s: deficits[s])
        filled[k] += len(members)
        for i in members:
            out[i] = SPLITS[k]
    return out
