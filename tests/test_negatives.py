"""Negatives: never a true partner, never the same or an overlapping block; seeded."""

from __future__ import annotations

import itertools
import math
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.dataset import PairRecord
from embedhead.errors import ConfigError
from embedhead.prepare.negatives import (
    STRATUM_MAX,
    block_extents,
    blocks_conflict,
    dinucleotide_counts,
    dinucleotide_shuffle,
    dishuffle_negatives,
    kmer_profile,
    lengths_close,
    make_negatives,
    profile_distance,
)


def conflict(positives, a, b):
    """The rule make_negatives uses: a's and b's blocks are the same or their extents overlap."""
    return blocks_conflict(block_extents(positives), a.block_id, b.block_id)


def positive(
    k: int,
    block: str,
    chrom: str = "chr1",
    start: int | None = None,
    seq2: str | None = None,
    len1: int = 100,
    len2: int = 90,
) -> PairRecord:
    s = 1000 * k if start is None else start
    return PairRecord(
        pair_id=f"p{k}",
        label=1,
        seq1=f"a{k}",
        seq2=seq2 or f"b{k}",
        len1=len1,
        len2=len2,
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
        assert not conflict(positives, src1, src2)
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
    assert conflict([a, b, c], a, b) and conflict([a, b, c], b, c)
    assert not conflict([a, b, c], a, c)
    negs = make_negatives([a, b], "shuffle", 1.0)
    assert negs == []


def test_bad_parameters():
    positives = [positive(k, f"f:{k}") for k in range(4)]
    with pytest.raises(ConfigError, match="unknown negatives method"):
        make_negatives(positives, "mix")
    with pytest.raises(ConfigError, match="ratio"):
        make_negatives(positives, "swap", -1.0)
    for bad in (-0.1, 1.0, math.nan):
        with pytest.raises(ConfigError, match="length-match"):
            make_negatives(positives, "swap", length_match=bad)


# ----------------------------------------------------------------------------- length matching


@st.composite
def sized_positive_sets(draw: st.DrawFn) -> list[PairRecord]:
    """Positives with varied, aligned-like lengths (len1 within ~15 % of len2), some shared
    second sequences, few blocks and many overlaps; lengths cluster so that some have close
    partners and some are isolated."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(0, 60))
    n_blocks = draw(st.integers(1, max(1, n)))
    centres = [rng.randrange(50, 5000) for _ in range(draw(st.integers(1, 6)))]
    len2_of: dict[str, int] = {}
    out = []
    for k in range(n):
        block = f"f:{rng.randrange(n_blocks)}"
        start = rng.randrange(0, 3000) if rng.random() < 0.5 else None
        seq2 = f"b{rng.randrange(n)}" if rng.random() < 0.2 else f"b{k}"
        len2 = len2_of.setdefault(seq2, max(1, round(rng.choice(centres) * rng.uniform(0.8, 1.2))))
        len1 = max(1, round(len2 * rng.uniform(0.85, 1.15)))
        out.append(positive(k, block, rng.choice(["chr1", "chr2"]), start, seq2, len1, len2))
    return out


@settings(max_examples=60, deadline=None)
@given(
    sized_positive_sets(),
    st.sampled_from(["swap", "shuffle"]),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.sampled_from([0.02, 0.1, 0.3]),
)
def test_length_matched_negatives_keep_every_guarantee(positives, method, ratio, tol):
    negs = make_negatives(positives, method, ratio, seed=4, length_match=tol)
    true_pairs = {(p.seq1, p.seq2) for p in positives} | {(p.seq2, p.seq1) for p in positives}
    by_seq1, _ = _source_of(positives)
    assert len(negs) <= round(ratio * len(positives))
    assert len({(n.seq1, n.seq2) for n in negs}) == len(negs)
    for n in negs:
        assert n.label == 0 and n.seq1 != n.seq2 and (n.seq1, n.seq2) not in true_pairs
        src1 = by_seq1[n.seq1]
        block2 = n.block_id.split("|")[1]
        src2 = next(
            p
            for p in positives
            if p.seq2 == n.seq2
            and p.block_id == block2
            and (p.start2, p.end2) == (n.start2, n.end2)
        )
        assert not conflict(positives, src1, src2)
        # the replaced second sequence is within the tolerance of the true partner's length,
        # so the negative's length ratio is its source positive's within a factor 1 +- tol
        assert abs(n.len2 - src1.len2) <= tol * max(n.len2, src1.len2)
        assert (n.len1, n.len2) == (src1.len1, src2.len2)
        shift = abs(math.log(n.len1 / n.len2) - math.log(src1.len1 / src1.len2))
        assert shift <= -math.log(1 - tol) + 1e-12
    assert negs == make_negatives(positives, method, ratio, seed=4, length_match=tol)


def spread_positives(n: int, step: int = 7) -> list[PairRecord]:
    """n positives of independent blocks, len2 = 300, 307, ... in a scrambled input order."""
    order = random.Random(1).sample(range(n), n)
    return [
        positive(k, f"f:{k}", len1=300 + step * r + (k % 5) - 2, len2=300 + step * r)
        for k, r in enumerate(order)
    ]


@pytest.mark.parametrize("method", ["swap", "shuffle"])
@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0])
def test_matched_ratio_is_met_when_close_lengths_exist(method, ratio):
    positives = spread_positives(60)
    negs = make_negatives(positives, method, ratio, seed=2, length_match=0.1)
    assert len(negs) == round(ratio * 60)
    by_seq1, _ = _source_of(positives)
    assert all(lengths_close(n.len2, by_seq1[n.seq1].len2, 0.1) for n in negs)
    if ratio == 1.0:  # one-to-one: each sequence in exactly one negative
        assert Counter(n.seq1 for n in negs) == Counter(p.seq1 for p in positives)
        assert Counter(n.seq2 for n in negs) == Counter(p.seq2 for p in positives)


def test_matched_swap_exchanges_second_sequences_with_the_nearest_length():
    positives = spread_positives(40)
    rank = {p.seq2: p.len2 for p in positives}  # len2 = 300 + 7 * rank
    negs = make_negatives(positives, "swap", 1.0, seed=3, length_match=0.1)
    pairs = {(n.seq1[1:], n.seq2[1:]) for n in negs}
    assert len(pairs) == 40
    for a, b in pairs:
        assert (b, a) in pairs  # a swap: i takes j's second sequence and j takes i's
        assert abs(rank[f"b{a}"] - rank[f"b{b}"]) == 7  # with its neighbour in len2 order


def test_matched_shuffle_deranges_within_small_length_strata():
    positives = spread_positives(60)
    by_seq1, _ = _source_of(positives)
    runs = [make_negatives(positives, "shuffle", 1.0, seed=s, length_match=0.1) for s in (1, 2)]
    for negs in runs:
        steps = [abs(n.len2 - by_seq1[n.seq1].len2) // 7 for n in negs]
        assert 0 not in steps and max(steps) <= STRATUM_MAX - 1
        assert len({n.seq1 for n in negs}) == len({n.seq2 for n in negs}) == 60
        assert any(s > 1 for s in steps)  # not just neighbour swaps
    assert [(n.seq1, n.seq2) for n in runs[0]] != [(n.seq1, n.seq2) for n in runs[1]]


@pytest.mark.parametrize("method", ["swap", "shuffle"])
def test_isolated_lengths_are_skipped_not_relaxed(method):
    lengths = [100, 101, 103, 104, 106, 500, 2000]  # 500 and 2000 have no partner within 10 %
    positives = [positive(k, f"f:{k}", len1=n, len2=n) for k, n in enumerate(lengths)]
    negs = make_negatives(positives, method, 1.0, seed=0, length_match=0.1)
    # the five close ones give the 7 negatives (later rounds re-use them); 500 and 2000 none
    assert 0 < len(negs) <= len(positives)
    assert all(n.len1 < 200 and n.len2 < 200 for n in negs)
    unmatched = make_negatives(positives, method, 1.0, seed=0)  # thesis: lengths ignored
    assert {n.len1 for n in unmatched} == {n.len2 for n in unmatched} == set(lengths)


@pytest.mark.parametrize("method", ["swap", "shuffle"])
def test_matching_skips_chunks_of_the_same_block(method):
    # 3 chunks per block with near-equal lengths: the nearest lengths are the own block's
    positives = [
        positive(k, f"f:{k // 3}", len1=1000 + 10 * (k // 3) + k % 3, len2=990 + 10 * (k // 3))
        for k in range(30)
    ]
    negs = make_negatives(positives, method, 1.0, seed=1, length_match=0.05)
    assert len(negs) == 30
    by_seq1, _ = _source_of(positives)
    for n in negs:
        a, b = n.block_id.split("|")
        assert a != b and lengths_close(n.len2, by_seq1[n.seq1].len2, 0.05)


@pytest.mark.parametrize("method", ["swap", "shuffle"])
def test_without_matching_lengths_are_ignored(method):
    same = [positive(k, f"f:{k}") for k in range(40)]
    rng = random.Random(0)
    varied = [
        positive(k, f"f:{k}", len1=rng.randrange(50, 5000), len2=rng.randrange(50, 5000))
        for k in range(40)
    ]

    def ids(ps: list[PairRecord], tol: float) -> list[tuple[str, str]]:
        return [(n.seq1, n.seq2) for n in make_negatives(ps, method, 1.0, 5, length_match=tol)]

    assert ids(same, 0.0) == ids(varied, 0.0)  # the thesis methods never look at lengths
    assert ids(same, 0.1) != ids(varied, 0.1)


@pytest.mark.parametrize("method", ["swap", "shuffle"])
@pytest.mark.parametrize("tol", [0.0, 0.1])
def test_windows_of_overlapping_blocks_are_refused_even_when_windows_do_not_overlap(method, tol):
    # block f:0 and its copy g:0 (another file), each cut into three windows side by side
    positives = [
        positive(3 * c + w, f"{name}:0", start=100 * w)
        for c, name in enumerate(("f", "g"))
        for w in range(3)
    ]
    # windows 0 and 2 do not overlap, but their blocks' extents do: the pair is refused
    assert conflict(positives, positives[0], positives[5])
    assert make_negatives(positives, method, 1.0, length_match=tol) == []
    far = positive(9, "h:0", chrom="chr9")
    negs = make_negatives([*positives, far], method, 1.0, length_match=tol)
    assert negs and all("h:0" in n.block_id for n in negs)


def test_adjacent_pairs_each_positive_with_the_next_in_input_order():
    pos = [positive(k, f"f:{k}") for k in range(7)]
    negs = make_negatives(pos, "adjacent", seed=0)
    assert [(n.seq1, n.seq2) for n in negs] == [(f"a{k}", f"b{(k + 1) % 7}") for k in range(7)]
    # input order, not a seeded draw: another seed gives the same pairs, a reversed input the
    # reversed neighbours
    assert make_negatives(pos, "adjacent", seed=5) == negs
    rev = make_negatives(pos[::-1], "adjacent", seed=0)
    assert [(n.seq1, n.seq2) for n in rev] == [
        (f"a{k}", f"b{(k - 1) % 7}") for k in range(6, -1, -1)
    ]


def test_adjacent_skips_windows_of_the_same_block_to_the_next_pair():
    # windows 0,1 of block A, then B, C: a0's neighbour a1 is its own block, so a0 takes b(B)
    pos = [
        positive(0, "A", start=0),
        positive(1, "A", start=200),
        positive(2, "B"),
        positive(3, "C"),
    ]
    negs = make_negatives(pos, "adjacent", seed=0)
    pairs = [(n.seq1, n.seq2) for n in negs]
    assert pairs == [("a0", "b2"), ("a1", "b2"), ("a2", "b3"), ("a3", "b0")]
    assert all(pos[int(a[1])].block_id != pos[int(b[1])].block_id for a, b in pairs)


@pytest.mark.parametrize("method", ["swap", "shuffle", "adjacent"])
def test_gc_matched_negatives_keep_the_partner_gc(method):
    rng = random.Random(3)
    pos = [positive(k, f"f:{k}", len2=rng.randint(80, 120)) for k in range(80)]
    gc = {p.seq2: rng.uniform(0.3, 0.7) for p in pos}
    by_seq1 = {p.seq1: p for p in pos}
    negs = make_negatives(pos, method, seed=1, gc_match=0.02, gc=gc)
    assert len(negs) >= 60  # most positives find a partner of close GC
    for n in negs:
        assert abs(gc[n.seq2] - gc[by_seq1[n.seq1].seq2]) <= 0.02
    # without matching the same draw pairs GC far apart
    free = make_negatives(pos, method, seed=1)
    assert max(abs(gc[n.seq2] - gc[by_seq1[n.seq1].seq2]) for n in free) > 0.1
    # both tolerances together hold at once
    both = make_negatives(pos, method, seed=1, gc_match=0.05, gc=gc, length_match=0.1)
    for n in both:
        src = by_seq1[n.seq1]
        assert abs(gc[n.seq2] - gc[src.seq2]) <= 0.05 and lengths_close(n.len2, src.len2, 0.1)
    with pytest.raises(ConfigError, match="GC matching needs"):
        make_negatives(pos, method, gc_match=0.02)


# ------------------------------------------------------------------------ k-mer matched negatives


def _dna(rng: random.Random, n: int, gc: float) -> str:
    return "".join(rng.choice("GC") if rng.random() < gc else rng.choice("AT") for _ in range(n))


def _composed_positives(n: int = 120, seed: int = 4):
    """Positives over real sequences of varied GC and lengths 300-400; the second sequence is
    a mutated copy of the first (so a positive's 3-mer profiles are close)."""
    rng = random.Random(seed)
    pos, texts = [], {}
    for k in range(n):
        gc = rng.uniform(0.3, 0.7)
        s1 = _dna(rng, rng.randint(300, 400), gc)
        s2 = "".join(_dna(rng, 1, gc) if rng.random() < 0.2 else b for b in s1)
        p = positive(k, f"f:{k}", len1=len(s1), len2=len(s2))
        texts[p.seq1], texts[p.seq2] = s1, s2
        pos.append(p)
    return pos, texts


def test_kmer_profile_and_distance():
    assert kmer_profile("ACGTNACG") == {"ACG": 2 / 3, "CGT": 1 / 3}  # windows with N dropped
    assert kmer_profile("NNNN") == {}
    assert profile_distance(kmer_profile("AAAAA"), kmer_profile("CCCCC")) == 1.0
    assert profile_distance(kmer_profile("ACGACG"), kmer_profile("ACGACG")) == 0.0
    assert profile_distance({"AAA": 0.5, "CCC": 0.5}, {"AAA": 1.0}) == pytest.approx(0.5)


_DISTANCES = """
from tests.test_negatives import _composed_positives
from embedhead.prepare.negatives import kmer_profile, profile_distance
_, texts = _composed_positives(n=40)
prof = [kmer_profile(t) for t in texts.values()]
print(repr([profile_distance(a, b) for a in prof for b in prof]))
"""


def test_profile_distance_is_exact_whatever_the_order_and_hash_seed():
    """The k-mer matching of ``prepare --match kmer`` compares these distances with the
    tolerance and picks the nearest: they must not depend on the argument order or on the
    string hash seed (a plain sum over the key set did: 0.2 vs 0.20000000000000004)."""
    _, texts = _composed_positives(n=40)
    prof = [kmer_profile(t) for t in texts.values()]
    for a, b in itertools.combinations(prof, 2):
        assert profile_distance(a, b) == profile_distance(b, a)
        assert profile_distance(a, b) == 0.5 * math.fsum(
            abs(a.get(w, 0.0) - b.get(w, 0.0)) for w in sorted(a.keys() | b.keys())
        )
    runs = {
        seed: subprocess.run(
            [sys.executable, "-c", _DISTANCES],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert runs["1"] == runs["2"] and runs["1"].startswith("[0.0, ")


@pytest.mark.parametrize("method", ["swap", "shuffle", "adjacent"])
def test_kmer_matched_negatives_keep_the_partner_profile(method):
    pos, texts = _composed_positives()
    prof = {sid: kmer_profile(t) for sid, t in texts.items()}
    by_seq1 = {p.seq1: p for p in pos}
    tol = 0.2
    negs = make_negatives(pos, method, seed=2, kmer_match=tol, kmer=prof, length_match=0.1)
    # swap seeks the nearest profile; shuffle and adjacent only refuse what is too far
    assert len(negs) >= (0.8 if method == "swap" else 0.2) * len(pos)
    gaps = []
    for n in negs:
        src = by_seq1[n.seq1]
        assert profile_distance(prof[n.seq2], prof[src.seq2]) <= tol
        assert lengths_close(n.len2, src.len2, 0.1)
        # so the negative's k-mer distance is the positive's within tol (TV is a metric)
        d_neg = profile_distance(prof[n.seq1], prof[n.seq2])
        d_pos = profile_distance(prof[src.seq1], prof[src.seq2])
        assert abs(d_neg - d_pos) <= tol + 1e-12
        gaps.append(abs(d_neg - d_pos))
    free = make_negatives(pos, method, seed=2, length_match=0.1)
    free_gaps = [
        abs(
            profile_distance(prof[n.seq1], prof[n.seq2])
            - profile_distance(prof[by_seq1[n.seq1].seq1], prof[by_seq1[n.seq1].seq2])
        )
        for n in free
    ]
    assert max(free_gaps) > tol  # without matching the profiles drift apart
    assert sum(gaps) / len(gaps) < 0.5 * sum(free_gaps) / len(free_gaps)


def test_kmer_matched_swap_takes_the_nearest_profile_among_candidates():
    pos, texts = _composed_positives(60, seed=8)
    prof = {sid: kmer_profile(t) for sid, t in texts.items()}
    by_seq1 = {p.seq1: p for p in pos}
    loose = make_negatives(pos, "swap", seed=1, kmer_match=0.99, kmer=prof, length_match=0.1)
    first = make_negatives(pos, "swap", seed=1, length_match=0.1)  # first valid, not nearest

    def mean_gap(negs):
        return sum(profile_distance(prof[n.seq2], prof[by_seq1[n.seq1].seq2]) for n in negs) / len(
            negs
        )

    assert len(loose) == len(first) == 60
    assert mean_gap(loose) < mean_gap(first)


def test_kmer_matching_needs_profiles_and_a_tolerance_in_range():
    pos, _ = _composed_positives(10)
    with pytest.raises(ConfigError, match="k-mer matching needs"):
        make_negatives(pos, "swap", kmer_match=0.2)
    with pytest.raises(ConfigError, match="k-mer tolerance"):
        make_negatives(pos, "swap", kmer_match=1.5, kmer={})


# ---------------------------------------------------------------- dinucleotide-shuffled negatives


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="ACGTN", min_size=0, max_size=300), st.integers(0, 2**32))
def test_dinucleotide_shuffle_keeps_every_dinucleotide_count(seq, seed):
    out = dinucleotide_shuffle(seq, random.Random(seed))
    assert len(out) == len(seq)
    assert dinucleotide_counts(out) == dinucleotide_counts(seq)
    assert Counter(out) == Counter(seq)
    if seq:
        assert out[0] == seq[0] and out[-1] == seq[-1]


def test_dinucleotide_shuffle_differs_from_its_input_and_is_seeded():
    rng = random.Random(0)
    seq = _dna(rng, 500, 0.45)
    a = dinucleotide_shuffle(seq, random.Random(7))
    assert a == dinucleotide_shuffle(seq, random.Random(7))
    assert a != seq and a != dinucleotide_shuffle(seq, random.Random(8))
    same = sum(x == y for x, y in zip(a, seq, strict=True)) / len(seq)
    assert same < 0.5  # the order is gone (about a quarter of the letters agree by chance)


def test_dinucleotide_shuffle_draws_every_sequence_with_those_counts_uniformly():
    seq = "ACGTTACGAT"
    target = dinucleotide_counts(seq)
    middle = seq[1:-1]
    valid = {
        t
        for perm in set(itertools.permutations(middle))
        if dinucleotide_counts(t := seq[0] + "".join(perm) + seq[-1]) == target
    }
    rng = random.Random(3)
    n = 400 * len(valid)
    seen = Counter(dinucleotide_shuffle(seq, rng) for _ in range(n))
    assert set(seen) == valid  # every one reachable, nothing else
    expected = n / len(valid)
    assert all(abs(c - expected) < 0.25 * expected for c in seen.values())


def test_dishuffle_negatives_pair_each_first_sequence_with_a_shuffle_of_its_partner():
    pos, texts = _composed_positives(30)
    made = dishuffle_negatives(pos, texts, 1.0, seed=1, split="val", id_prefix="neg/val/")
    assert len(made.records) == 30 and made.n_skipped == 0
    for n, src in zip(made.records, pos, strict=True):
        shuffled = made.sequences[n.seq2]
        assert n.label == 0 and n.split == "val" and math.isnan(n.score)
        assert n.seq1 == src.seq1 and n.seq2 not in texts
        assert dinucleotide_counts(shuffled) == dinucleotide_counts(texts[src.seq2])
        assert shuffled != texts[src.seq2] and n.len2 == len(shuffled) == src.len2
        assert (n.chrom2, n.start2, n.end2) == (src.chrom2, src.start2, src.end2)
        assert n.block_id == f"{src.block_id}|dishuffle:{src.block_id}"
    assert [n.pair_id for n in made.records] == [f"neg/val/{k}" for k in range(30)]
    again = dishuffle_negatives(pos, texts, 1.0, seed=1, split="val", id_prefix="neg/val/")
    assert again == made
    two = dishuffle_negatives(pos, texts, 2.0, seed=1)
    assert len(two.records) == 60 == len(two.sequences)  # a second, different shuffle each
    assert len(dishuffle_negatives(pos, texts, 0.5, seed=1).records) == 15


def test_dishuffle_skips_sequences_without_another_shuffle():
    pos = [positive(0, "f:0", len2=12), positive(1, "f:1", len2=12)]
    texts = {"a0": "ACGTACGTACGT", "b0": "ACACACACACAC", "a1": "ACGTTGCAACGT", "b1": "ACGGTCAAGTCC"}
    made = dishuffle_negatives(pos, texts, 1.0, seed=0)
    assert made.n_skipped == 1 and [n.seq1 for n in made.records] == ["a1"]
    with pytest.raises(ConfigError, match="dishuffle needs the sequence"):
        dishuffle_negatives(pos, {"a0": "ACGT"}, 1.0)
    with pytest.raises(ConfigError, match="new sequences"):
        make_negatives(pos, "dishuffle")
