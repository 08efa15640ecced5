"""Splits: seeded, close to the fractions, never sharing a block, chrom (chrom mode) or sequence."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.dataset import PairRecord
from embedhead.errors import ConfigError
from embedhead.prepare.splits import assign_splits, parse_fractions


def rec(k: int, block: str, chrom: str = "chr1", seq1: str = "", seq2: str = "") -> PairRecord:
    return PairRecord(
        pair_id=f"p{k}",
        label=1,
        seq1=seq1 or f"a{k}",
        seq2=seq2 or f"b{k}",
        len1=10,
        len2=10,
        score=1.0,
        norm_score=0.1,
        identity=1.0,
        db1="hg38",
        chrom1=chrom,
        start1=k,
        end1=k + 10,
        strand1="+",
        db2="mm10",
        chrom2="chr9",
        start2=k,
        end2=k + 10,
        strand2="+",
        block_id=block,
        split="train",
    )


@st.composite
def record_sets(draw: st.DrawFn) -> list[PairRecord]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(1, 120))
    n_blocks = draw(st.integers(1, n))
    n_seqs = draw(st.sampled_from([5, 50, 10_000]))  # few sequences: many shared between blocks
    return [
        rec(
            k,
            f"f:{rng.randrange(n_blocks)}",
            rng.choice(["chr1", "chr2", "chr3", "chrX"]),
            f"s{rng.randrange(n_seqs)}",
            f"t{rng.randrange(n_seqs)}",
        )
        for k in range(n)
    ]


def _owner_split(records, splits, key):
    owners: dict[str, set[str]] = {}
    for r, s in zip(records, splits, strict=True):
        for k in key(r):
            owners.setdefault(k, set()).add(s)
    return owners


@settings(max_examples=60, deadline=None)
@given(record_sets(), st.sampled_from(["block", "chrom", "random"]), st.integers(0, 5))
def test_splits_never_share_a_block_or_a_sequence(records, by, seed):
    splits = assign_splits(records, by, (0.7, 0.15, 0.15), seed)
    assert set(splits) <= {"train", "val", "test"}
    for owners in (
        _owner_split(records, splits, lambda r: [r.block_id]),
        _owner_split(records, splits, lambda r: [r.seq1, r.seq2]),
    ):
        assert all(len(s) == 1 for s in owners.values())
    if by == "chrom":
        owners = _owner_split(records, splits, lambda r: [r.chrom1])
        assert all(len(s) == 1 for s in owners.values())


def test_block_split_lands_close_to_the_fractions():
    records = [rec(k, f"f:{k // 3}") for k in range(3000)]  # 1000 blocks of 3 chunks
    counts = Counter(assign_splits(records, "block", (0.7, 0.15, 0.15), seed=0))
    assert abs(counts["train"] - 2100) <= 3
    assert abs(counts["val"] - 450) <= 3
    assert abs(counts["test"] - 450) <= 3


def test_random_split_draws_groups_with_the_fractions_as_probabilities():
    records = [rec(k, f"f:{k}") for k in range(4000)]
    counts = Counter(assign_splits(records, "random", (0.5, 0.25, 0.25), seed=1))
    assert 1850 < counts["train"] < 2150 and 880 < counts["val"] < 1120


def test_zero_fraction_gets_nothing():
    records = [rec(k, f"f:{k}") for k in range(200)]
    for by in ("block", "random"):
        assert "test" not in assign_splits(records, by, (0.8, 0.2, 0.0), seed=2)


def test_seeded():
    records = [rec(k, f"f:{k}") for k in range(300)]
    a = assign_splits(records, "block", seed=1)
    assert a == assign_splits(records, "block", seed=1)
    assert a != assign_splits(records, "block", seed=2)


def test_chunks_of_one_block_stay_together_and_shared_sequences_merge_blocks():
    records = [rec(k, "f:0") for k in range(5)] + [rec(k, f"f:{k}") for k in range(5, 100)]
    records.append(rec(100, "f:100", seq1="a7"))  # shares a sequence with block f:7
    splits = assign_splits(records, "block", seed=3)
    assert len(set(splits[:5])) == 1
    assert splits[100] == splits[7]


def test_parse_fractions():
    assert parse_fractions("0.7,0.15,0.15") == pytest.approx((0.7, 0.15, 0.15))
    assert parse_fractions("70,15,15") == pytest.approx((0.7, 0.15, 0.15))
    assert parse_fractions("8:1:1") == pytest.approx((0.8, 0.1, 0.1))
    for bad in ("0.7,0.3", "a,b,c", "0,0.5,0.5", "-1,1,1"):
        with pytest.raises(ConfigError):
            parse_fractions(bad)
    with pytest.raises(ConfigError, match="split-by"):
        assign_splits([rec(0, "b")], "file")
