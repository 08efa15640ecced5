"""Seeded train/val/test assignment of positive pairs, grouped so nothing leaks across splits.

In: a sequence of positive :class:`~embedhead.dataset.PairRecord`. Out: one split name per
record (same order).

Grouping: records are first grouped by ``block_id`` (``--split-by block`` and ``random``) or by
the reference side's ``db``/``chrom`` (``--split-by chrom``; records without a chrom fall back
to their block). Groups that share a block or any sequence id are then merged, so no block,
none of its chunks and no sequence is ever in two splits.

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


def group_records(records: Sequence[PairRecord], by: str) -> list[list[int]]:
    """Indices of records grouped by key, merged when groups share a block or a sequence."""
    uf = _UnionFind()
    keys = [group_key(r, by) for r in records]
    for key, rec in zip(keys, records, strict=True):
        uf.union(key, f"block\t{rec.block_id}")
        uf.union(key, "seq\t" + rec.seq1)
        uf.union(key, "seq\t" + rec.seq2)
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
