"""Negatives: never a true partner, never the same or an overlapping block; seeded."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.dataset import PairRecord
from embedhead.errors import ConfigError
from embedhead.negatives import make_negatives, sources_conflict


def positive(
    k: int, block: str, chrom: str = "chr1", start: int | None = None, seq2: str | None = None
) -> PairRecord:
    s = 1000 * k if start is None else start
    return PairRecord(
        pair_id=f"p{k}",
        label=1,
        seq1=f"a{k}",
        seq2=seq2 or f"b{k}",
        len1=100,
        len2=90,
        score=1000.0,
        norm_score=10.0,
        identity=0.8,
        db1="hg38",
        chrom1=chrom,
        start1=s,
        end1=s + 100,
        strand1="+",
        db2="galGal6",
        chrom2="chr2",
        start2=5000 * k,
        end2=5000 * k + 90,
        strand2="-",
        block_id=block,
        split="train",
    )


@st.composite
def positive_sets(draw: st.DrawFn) -> list[PairRecord]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(0, 60))
    n_blocks = draw(st.integers(1, max(1, n)))
    out = []
    for k in range(n):
        block = f"f:{rng.randrange(n_blocks)}"
        # few chroms and a narrow coordinate range: many overlaps between blocks
        start = rng.randrange(0, 3000) if rng.random() < 0.5 else None
        seq2 = f"b{rng.randrange(n)}" if rng.random() < 0.2 else None  # shared sequences
        out.append(positive(k, block, rng.choice(["chr1", "chr2"]), start, seq2))
    return out


def _source_of(positives: list[PairRecord]) -> tuple[dict[str, PairRecord], dict[str, list]]:
    by_seq1 = {p.seq1: p for p in positives}
    by_seq2: dict[str, list[PairRecord]] = {}
    for p in positives:
        by_seq2.setdefault(p.seq2, []).append(p)
    return by_seq1, by_seq2


@settings(max_examples=60, deadline=None)
@given(positive_sets(), st.sampled_from(["swap", "shuffle"]), st.sampled_from([0.5, 1.0, 2.0]))
def test_negatives_never_pair_partners_or_same_or_overlapping_blocks(positives, method, ratio):
    negs = make_negatives(positives, method, ratio, seed=3)
    true_pairs = {(p.seq1, p.seq2) for p in positives} | {(p.seq2, p.seq1) for p in positives}
    by_seq1, _ = _source_of(positives)
    assert len(negs) <= round(ratio * len(positives))
    assert len({(n.seq1, n.seq2) for n in negs}) == len(negs)
    for n in negs:
        assert n.label == 0 and math.isnan(n.score) and math.isnan(n.identity)
        assert n.seq1 != n.seq2
        assert (n.seq1, n.seq2) not in true_pairs
        src1 = by_seq1[n.seq1]
        block1, block2 = n.block_id.split("|")
        assert block1 == src1.block_id and block1 != block2
        src2 = next(
            p
            for p in positives
            if p.seq2 == n.seq2
            and p.block_id == block2
            and (p.start2, p.end2) == (n.start2, n.end2)
        )
        assert not sources_conflict(src1, src2)
        assert (n.db1, n.chrom1, n.start1, n.end1) == (
            src1.db1,
            src1.chrom1,
            src1.start1,
            src1.end1,
        )


@pytest.mark.parametrize("method", ["swap", "shuffle"])
@pytest.mark.parametrize(("ratio", "expected"), [(1.0, 50), (2.0, 100), (0.5, 25), (0.0, 0)])
def test_ratio_is_met_when_blocks_are_independent(method, ratio, expected):
    positives = [positive(k, f"f:{k}") for k in range(50)]
    negs = make_negatives(positives, method, ratio, seed=1)
    assert len(negs) == expected
    assert len({n.pair_id for n in negs}) == expected


@pytest.mark.parametrize("method", ["swap", "shuffle"])
def test_one_to_one_negatives_use_each_sequence_once(method):
    positives = [positive(k, f"f:{k}") for k in range(40)]
    negs = make_negatives(positives, method, 1.0, seed=5)
    assert Counter(n.seq1 for n in negs) == Counter(p.seq1 for p in positives)
    assert Counter(n.seq2 for n in negs) == Counter(p.seq2 for p in positives)


def test_swap_pairs_each_with_the_next_in_a_seeded_order():
    positives = [positive(k, f"f:{k}") for k in range(30)]
    negs = make_negatives(positives, "swap", 1.0, seed=9)
    nxt = {n.seq1[1:]: n.seq2[1:] for n in negs}
    # following seq1 -> seq2 links walks one cycle through all 30 positives
    seen, k = set(), "0"
    while k not in seen:
        seen.add(k)
        k = nxt[k]
    assert len(seen) == 30


@pytest.mark.parametrize("method", ["swap", "shuffle"])
def test_seeded_and_reproducible(method):
    positives = [positive(k, f"f:{k}") for k in range(40)]
    a = make_negatives(positives, method, 1.0, seed=1)
    b = make_negatives(positives, method, 1.0, seed=1)
    c = make_negatives(positives, method, 1.0, seed=2)
    assert a == b
    assert [(n.seq1, n.seq2) for n in a] != [(n.seq1, n.seq2) for n in c]


@pytest.mark.parametrize("method", ["swap", "shuffle"])
def test_single_block_gives_no_negatives(method):
    positives = [positive(k, "f:0") for k in range(10)]  # ten chunks of one block
    assert make_negatives(positives, method, 1.0) == []


def test_overlapping_blocks_are_refused():
    a = positive(0, "f:0", start=100)
    b = positive(1, "g:7", start=150)  # another file's block over the same region
    c = positive(2, "f:2", start=200)  # abuts a (a ends at 200): no overlap
    assert sources_conflict(a, b) and sources_conflict(b, c)
    assert not sources_conflict(a, c)
    negs = make_negatives([a, b], "shuffle", 1.0)
    assert negs == []


def test_bad_parameters():
    positives = [positive(k, f"f:{k}") for k in range(4)]
    with pytest.raises(ConfigError, match="unknown negatives method"):
        make_negatives(positives, "mix")
    with pytest.raises(ConfigError, match="ratio"):
        make_negatives(positives, "swap", -1.0)
