"""Pairwise rows of an alignment block, cut into aligned column windows with exact scores.

In: one :class:`~embedhead.alignments.records.AlignmentBlock` (rows of equal text length L).
Out: :class:`PairWindow` objects, each two :class:`AlignedRow` of the same ``n <= chunk_size``
columns (both pieces stay aligned), with own-strand coordinates recomputed from the letters
before the window, and the window's score recomputed with the chosen scoring scheme (the
block's score is never copied onto its pieces).

Steps: :func:`select_pair` picks the reference and query rows, :func:`project_pair` drops the
columns where both rows are gaps (the pairwise projection of a multi-species block),
:func:`window_bounds` splits the columns into balanced windows, :func:`chunk_pair` slices,
re-scores and filters by minimum length.

All functions are pure. Texts are Python strings; the projection works on uint8 arrays of
shape (L,) (one byte per column) to avoid a Python loop over columns.

Lazy path (what ``prepare`` streams through): :func:`plan_windows` gives the
:class:`WindowSpan` of each window (column range, own-strand start and letters of both rows)
without cutting or scoring anything; a block no longer than ``chunk_size`` columns costs no
array work at all. :func:`cut_window` then cuts only the windows that are kept, and
:func:`score_window` scores them (exactly :func:`score_alignment` / :func:`identity` of the
window texts, from one histogram of column codes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from embedhead.alignments.records import AlignedRow, AlignmentBlock
from embedhead.alignments.scoring import (
    ScoringScheme,
    both_gap_mask,
    column_codes,
    score_and_identity,
)
from embedhead.prepare.config import DEFAULT_CHUNK_SIZE as DEFAULT_CHUNK_SIZE


@dataclass(frozen=True, slots=True)
class PairWindow:
    """One aligned window of a pairwise alignment (``index`` of ``n_windows`` in its block)."""

    row1: AlignedRow
    row2: AlignedRow
    index: int
    n_windows: int
    score: int
    identity: float


def count_letters(text: str) -> int:
    """Number of non-gap characters of an aligned text."""
    return len(text) - text.count("-") - (text.count(".") if "." in text else 0)  # GAP_CHARS


def select_pair(
    block: AlignmentBlock, reference: str | None = None, query: str | None = None
) -> tuple[AlignedRow, AlignedRow] | None:
    """The (reference, query) rows of a block, or None when the block lacks one of them.

    ``reference``/``query`` are database names (the ``db`` of ``db.chrom``); the defaults
    are the first row and the first other row (normally the second).
    """
    rows = block.rows
    if (
        reference is not None
        and query is not None
        and len(rows) == 2
        and rows[0].db == reference
        and rows[1].db == query
    ):
        return rows[0], rows[1]  # the usual pairwise block (or one cut down by keep_dbs)
    if reference is None:
        ref_index = 0 if rows else -1
    else:
        ref_index = next((i for i, r in enumerate(rows) if r.db == reference), -1)
    if ref_index < 0:
        return None
    others = (r for i, r in enumerate(rows) if i != ref_index)
    if query is None:
        found = next(others, None)
    else:
        found = next((r for r in others if r.db == query), None)
    if found is None:
        return None
    return rows[ref_index], found


def project_pair(row1: AlignedRow, row2: AlignedRow) -> tuple[AlignedRow, AlignedRow]:
    """Drop the columns where both rows hold a gap (coordinates and sizes are unchanged)."""
    if len(row1.text) != len(row2.text):
        raise ValueError(f"rows of unequal length: {len(row1.text)} != {len(row2.text)}")
    keep = both_gap_mask(column_codes(row1.text, row2.text))
    if keep is None:
        return row1, row2
    b1 = np.frombuffer(row1.text.encode("latin-1"), dtype=np.uint8)
    b2 = np.frombuffer(row2.text.encode("latin-1"), dtype=np.uint8)
    new1 = b1[keep].tobytes().decode("latin-1")
    new2 = b2[keep].tobytes().decode("latin-1")
    return _with_text(row1, new1, row1.start), _with_text(row2, new2, row2.start)


def window_bounds(n_columns: int, chunk_size: int) -> list[tuple[int, int]]:
    """Balanced column windows ``[start, end)`` of at most ``chunk_size`` columns each.

    ``ceil(n / chunk_size)`` windows whose lengths differ by at most one column, so a block of
    5,001 columns gives two windows of ~2,500 instead of 5,000 + a 1-column stub.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk size must be positive, not {chunk_size}")
    if n_columns <= 0:
        return []
    n_windows = -(-n_columns // chunk_size)
    base, extra = divmod(n_columns, n_windows)
    bounds: list[tuple[int, int]] = []
    start = 0
    for k in range(n_windows):
        end = start + base + (1 if k < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def _with_text(row: AlignedRow, text: str, start: int) -> AlignedRow:
    return AlignedRow(
        src=row.src,
        db=row.db,
        chrom=row.chrom,
        start=start,
        size=count_letters(text),
        strand=row.strand,
        src_size=row.src_size,
        text=text,
        line=row.line,
    )


def slice_rows(
    row1: AlignedRow, row2: AlignedRow, bounds: list[tuple[int, int]]
) -> Iterator[tuple[AlignedRow, AlignedRow]]:
    """The two rows cut at the given column windows, each with its own-strand start."""
    offset1, offset2 = row1.start, row2.start
    for lo, hi in bounds:
        piece1 = _with_text(row1, row1.text[lo:hi], offset1)
        piece2 = _with_text(row2, row2.text[lo:hi], offset2)
        offset1 += piece1.size
        offset2 += piece2.size
        yield piece1, piece2


@dataclass(frozen=True, slots=True)
class WindowSpan:
    """One window of a projected pair, before anything is cut: columns ``[lo, hi)`` of the
    projection, and each row's own-strand ``start`` and number of letters in the window."""

    index: int
    n_windows: int
    lo: int
    hi: int
    start1: int
    size1: int
    start2: int
    size2: int


def forward_interval(row: AlignedRow, start: int, size: int) -> tuple[int, int] | None:
    """Forward-strand ``[start, end)`` of ``size`` letters at own-strand ``start`` of ``row``'s
    strand (None when a ``-`` row has no source size), as :attr:`AlignedRow.forward_start`."""
    if row.strand == "+":
        return start, start + size
    if row.src_size is None:
        return None
    fs = row.src_size - (start + size)
    return fs, fs + size


def plan_windows(row1: AlignedRow, row2: AlignedRow, chunk_size: int) -> list[WindowSpan]:
    """The windows :func:`chunk_pair` would cut, as spans (nothing cut, nothing scored).

    Empty when no column is left after the projection (both rows all gaps).
    """
    t1, t2 = row1.text, row2.text
    if len(t1) != len(t2):
        raise ValueError(f"rows of unequal length: {len(t1)} != {len(t2)}")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be positive, not {chunk_size}")
    size1, size2 = count_letters(t1), count_letters(t2)
    if len(t1) <= chunk_size:
        # projection drops only both-gap columns: one window holding every letter
        if size1 == 0 and size2 == 0:
            return []
        return [WindowSpan(0, 1, 0, -1, row1.start, size1, row2.start, size2)]
    codes = column_codes(t1, t2)
    keep = both_gap_mask(codes)
    if keep is not None:
        codes = codes[keep]
    bounds = window_bounds(int(codes.size), chunk_size)
    if not bounds:
        return []
    if len(bounds) == 1:
        lo, hi = bounds[0]
        return [WindowSpan(0, 1, lo, hi, row1.start, size1, row2.start, size2)]
    # letters before each bound: codes >= 30 have a gap in row 1, codes % 6 == 5 in row 2
    gap1 = np.cumsum(codes >= 30)
    gap2 = np.cumsum(codes % 6 == 5)
    spans: list[WindowSpan] = []
    off1, off2 = row1.start, row2.start
    n = len(bounds)
    for k, (lo, hi) in enumerate(bounds):
        g1 = int(gap1[hi - 1]) - (int(gap1[lo - 1]) if lo else 0)
        g2 = int(gap2[hi - 1]) - (int(gap2[lo - 1]) if lo else 0)
        s1, s2 = (hi - lo) - g1, (hi - lo) - g2
        spans.append(WindowSpan(k, n, lo, hi, off1, s1, off2, s2))
        off1 += s1
        off2 += s2
    return spans


def cut_window(
    row1: AlignedRow, row2: AlignedRow, span: WindowSpan
) -> tuple[AlignedRow, AlignedRow]:
    """The two rows of ``span`` (projected texts, own-strand starts, sizes), as
    :func:`slice_rows` of :func:`project_pair` gives them."""
    p1, p2 = project_pair(row1, row2)
    t1, t2 = p1.text, p2.text
    if span.hi >= 0:  # hi < 0: the whole projected pair is the window
        t1, t2 = t1[span.lo : span.hi], t2[span.lo : span.hi]
    return (
        AlignedRow(row1.src, row1.db, row1.chrom, span.start1, span.size1, row1.strand,
                   row1.src_size, t1, row1.line),
        AlignedRow(row2.src, row2.db, row2.chrom, span.start2, span.size2, row2.strand,
                   row2.src_size, t2, row2.line),
    )  # fmt: skip


def score_window(
    piece1: AlignedRow, piece2: AlignedRow, span: WindowSpan, scheme: ScoringScheme
) -> PairWindow:
    """The :class:`PairWindow` of two cut rows, re-scored exactly under ``scheme``."""
    score, ident = score_and_identity(piece1.text, piece2.text, scheme)
    return PairWindow(piece1, piece2, span.index, span.n_windows, score, ident)


@dataclass(frozen=True, slots=True)
class ChunkedPair:
    """The kept windows of one pair of rows, and how many windows ``min_length`` dropped."""

    windows: tuple[PairWindow, ...]
    n_dropped: int


def chunk_pair(
    row1: AlignedRow,
    row2: AlignedRow,
    scheme: ScoringScheme,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    min_length: int = 1,
) -> ChunkedPair:
    """Project, cut into windows and re-score; keep the windows whose two sequences both reach
    ``min_length`` letters (windows with an empty side are always dropped). A pair with no
    column left after projection (both rows all gaps) counts as one dropped window."""
    spans = plan_windows(row1, row2, chunk_size)
    if not spans:
        return ChunkedPair((), 1)
    floor = max(1, min_length)
    kept = [
        score_window(*cut_window(row1, row2, span), span, scheme)
        for span in spans
        if span.size1 >= floor and span.size2 >= floor
    ]
    return ChunkedPair(tuple(kept), len(spans) - len(kept))
