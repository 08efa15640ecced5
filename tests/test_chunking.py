"""Chunking: aligned column windows, exact coordinates and exact re-scored windows."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.alignments.records import AlignedRow, AlignmentBlock
from embedhead.alignments.scoring import HOXD70, score_alignment
from embedhead.prepare.chunking import (
    chunk_pair,
    count_letters,
    project_pair,
    select_pair,
    slice_rows,
    window_bounds,
)

_COMP = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def revcomp(s: str) -> str:
    return s.translate(_COMP)[::-1]


def row_from_genome(
    genome: str, fstart: int, size: int, strand: str, columns: list[bool], db: str
) -> AlignedRow:
    """A row whose letters are genome[fstart:fstart+size] (revcomp on '-'), gaps where False."""
    piece = genome[fstart : fstart + size]
    if strand == "-":
        piece = revcomp(piece)
    letters = iter(piece)
    text = "".join(next(letters) if c else "-" for c in columns)
    start = fstart if strand == "+" else len(genome) - (fstart + size)
    return AlignedRow(f"{db}.chr1", db, "chr1", start, size, strand, len(genome), text)


def window_letters(row: AlignedRow, genome: str) -> str:
    fs, fe = row.forward_start, row.forward_end
    assert fs is not None and fe is not None
    piece = genome[fs:fe]
    return revcomp(piece) if row.strand == "-" else piece


@st.composite
def aligned_pairs(draw: st.DrawFn) -> tuple[AlignedRow, AlignedRow, str, str]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    n_cols = draw(st.integers(1, 400))
    gap_rate = draw(st.sampled_from([0.0, 0.1, 0.4]))
    # columns: 0 both letters, 1 gap in row1, 2 gap in row2, 3 gap in both (as when a pair is
    # taken out of a multiple alignment)
    kinds = [0 if rng.random() >= gap_rate else rng.choice([1, 2, 3]) for _ in range(n_cols)]
    if all(k == 3 for k in kinds):
        kinds[0] = 0
    cols1 = [k not in (1, 3) for k in kinds]
    cols2 = [k not in (2, 3) for k in kinds]
    size1, size2 = sum(cols1), sum(cols2)
    g1 = "".join(rng.choice("ACGTacgtN") for _ in range(size1 + rng.randint(0, 50)))
    g2 = "".join(rng.choice("ACGTacgtN") for _ in range(size2 + rng.randint(0, 50)))
    s1, s2 = draw(st.sampled_from("+-")), draw(st.sampled_from("+-"))
    r1 = row_from_genome(g1, rng.randint(0, len(g1) - size1), size1, s1, cols1, "ref")
    r2 = row_from_genome(g2, rng.randint(0, len(g2) - size2), size2, s2, cols2, "qry")
    return r1, r2, g1, g2


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 20000), st.integers(1, 6000))
def test_window_bounds_cover_all_columns_in_balanced_windows(n, chunk):
    bounds = window_bounds(n, chunk)
    assert [c for lo, hi in bounds for c in range(lo, hi)] == list(range(n))
    sizes = [hi - lo for lo, hi in bounds]
    assert all(0 < s <= chunk for s in sizes)
    if sizes:
        assert max(sizes) - min(sizes) <= 1
        assert len(bounds) == -(-n // chunk)


@settings(max_examples=80, deadline=None)
@given(aligned_pairs(), st.integers(1, 120))
def test_windows_preserve_columns_and_coordinates(pair, chunk):
    r1, r2, g1, g2 = pair
    q1, q2 = project_pair(r1, r2)
    both_gap = sum(a == b == "-" for a, b in zip(r1.text, r2.text, strict=True))
    assert len(q1.text) == len(q2.text) == len(r1.text) - both_gap
    pieces = list(slice_rows(q1, q2, window_bounds(len(q1.text), chunk)))
    assert "".join(p1.text for p1, _ in pieces) == q1.text
    assert "".join(p2.text for _, p2 in pieces) == q2.text
    assert "".join(p1.text for p1, _ in pieces).replace("-", "") == r1.text.replace("-", "")
    assert "".join(p2.text for _, p2 in pieces).replace("-", "") == r2.text.replace("-", "")
    for p1, p2 in pieces:
        assert len(p1.text) == len(p2.text) <= chunk
        for piece, genome in ((p1, g1), (p2, g2)):
            assert piece.size == count_letters(piece.text)
            assert piece.text.replace("-", "") == window_letters(piece, genome)


@settings(max_examples=80, deadline=None)
@given(aligned_pairs(), st.integers(1, 120))
def test_window_scores_are_exact_and_sum_to_block_score_minus_cut_gaps(pair, chunk):
    r1, r2, _, _ = pair
    result = chunk_pair(r1, r2, HOXD70, chunk_size=chunk, min_length=1)
    bounds = window_bounds(len(project_pair(r1, r2)[0].text), chunk)
    for w in result.windows:
        assert w.score == score_alignment(w.row1.text, w.row2.text, HOXD70)
    if result.n_dropped == 0:
        q1, q2 = project_pair(r1, r2)
        gap = [a == "-" or b == "-" for a, b in zip(q1.text, q2.text, strict=True)]
        cuts_in_gap_runs = sum(gap[lo - 1] and gap[lo] for lo, _ in bounds[1:])
        total = sum(w.score for w in result.windows)
        block = score_alignment(r1.text, r2.text, HOXD70)
        assert total == block - HOXD70.gap_open * cuts_in_gap_runs


def test_min_length_drops_short_windows_and_counts_them():
    r1 = AlignedRow("a.c", "a", "c", 0, 30, "+", 100, "A" * 30 + "-" * 10)
    r2 = AlignedRow("b.c", "b", "c", 0, 40, "+", 100, "C" * 40)
    result = chunk_pair(r1, r2, HOXD70, chunk_size=20, min_length=5)
    # windows: cols 0-20 (20/20 letters) and 20-40 (10/20 letters)
    assert [w.row1.size for w in result.windows] == [20, 10]
    result = chunk_pair(r1, r2, HOXD70, chunk_size=20, min_length=15)
    assert [w.index for w in result.windows] == [0]
    assert result.n_dropped == 1


def test_project_pair_drops_only_all_gap_columns():
    r1 = AlignedRow("a.c", "a", "c", 5, 4, "+", 100, "AC--G-T")
    r2 = AlignedRow("b.c", "b", "c", 9, 3, "-", 100, "A---GC-")
    p1, p2 = project_pair(r1, r2)
    assert (p1.text, p2.text) == ("ACG-T", "A-GC-")
    assert (p1.start, p1.size, p2.start, p2.size) == (5, 4, 9, 3)


def _block(*rows: tuple[str, str]) -> AlignmentBlock:
    aligned = tuple(
        AlignedRow(src, src.split(".")[0], src.split(".", 1)[1], 0, count_letters(t), "+", 99, t)
        for src, t in rows
    )
    return AlignmentBlock(aligned, None, "x.maf", 1, 0)


def test_select_pair_by_name_and_defaults():
    block = _block(("hg38.chr1", "ACGT"), ("panTro6.chr1", "ACGA"), ("galGal6.chr2", "AC-T"))
    ref, qry = select_pair(block) or (None, None)
    assert (ref.db, qry.db) == ("hg38", "panTro6")
    ref, qry = select_pair(block, "hg38", "galGal6") or (None, None)
    assert (ref.db, qry.db) == ("hg38", "galGal6")
    ref, qry = select_pair(block, "galGal6") or (None, None)
    assert (ref.db, qry.db) == ("galGal6", "hg38")
    assert select_pair(block, "hg38", "danRer10") is None
    assert select_pair(block, "mm10") is None
    assert select_pair(_block(("hg38.chr1", "ACGT"))) is None


def test_all_gap_pair_counts_as_one_dropped_window():
    """Two all-gap rows project to nothing: the pair used to vanish from every count."""
    r1 = AlignedRow("a.c", "a", "c", 5, 0, "+", 100, "----")
    r2 = AlignedRow("b.c", "b", "c", 9, 0, "+", 100, "-.--")
    result = chunk_pair(r1, r2, HOXD70, chunk_size=20, min_length=1)
    assert result.windows == () and result.n_dropped == 1
