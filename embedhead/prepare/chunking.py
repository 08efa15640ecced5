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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from embedhead.alignments.records import GAP_CHARS, AlignedRow, AlignmentBlock
from embedhead.alignments.scoring import ScoringScheme, identity, score_alignment
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
    return len(text) - sum(text.count(g) for g in GAP_CHARS)


def select_pair(
    block: AlignmentBlock, reference: str | None = None, query: str | None = None
) -> tuple[AlignedRow, AlignedRow] | None:
    """The (reference, query) rows of a block, or None when the block lacks one of them.

    ``reference``/``query`` are database names (the ``db`` of ``db.chrom``); the defaults
    are the first row and the first other row (normally the second).
    """
    rows = block.rows
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
    t1, t2 = row1.text, row2.text
    if len(t1) != len(t2):
        raise ValueError(f"rows of unequal length: {len(t1)} != {len(t2)}")
    b1 = np.frombuffer(t1.encode("latin-1"), dtype=np.uint8)
    b2 = np.frombuffer(t2.encode("latin-1"), dtype=np.uint8)
    both = _is_gap(b1) & _is_gap(b2)
    if not both.any():
        return row1, row2
    keep = ~both
    new1 = b1[keep].tobytes().decode("latin-1")
    new2 = b2[keep].tobytes().decode("latin-1")
    return _with_text(row1, new1, row1.start), _with_text(row2, new2, row2.start)


def _is_gap(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    gap = np.zeros(codes.shape, dtype=bool)
    for g in GAP_CHARS:
        gap |= codes == ord(g)
    return gap


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
    p1, p2 = project_pair(row1, row2)
    bounds = window_bounds(len(p1.text), chunk_size)
    if not bounds:
        return ChunkedPair((), 1)
    floor = max(1, min_length)
    kept: list[PairWindow] = []
    for k, (w1, w2) in enumerate(slice_rows(p1, p2, bounds)):
        if w1.size < floor or w2.size < floor:
            continue
        kept.append(
            PairWindow(
                row1=w1,
                row2=w2,
                index=k,
                n_windows=len(bounds),
                score=score_alignment(w1.text, w2.text, scheme),
                identity=identity(w1.text, w2.text),
            )
        )
    return ChunkedPair(tuple(kept), len(bounds) - len(kept))
