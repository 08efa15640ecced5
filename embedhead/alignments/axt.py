"""Streaming, validating parser of AXT pairwise alignments (netToAxt, chainToAxt, blastz, lastz).

Each AXT block is three lines and a blank line::

    N tchrom tstart tend qchrom qstart qend strand score
    <target text>
    <query text>

Coordinates are 1-based and inclusive. The target is always on ``+``; the query is on
``strand`` and, on ``-``, its coordinates count on the reverse complement (as MAF's). Each block
becomes an :class:`AlignmentBlock` of two rows (target first) with 0-based ``start =
tstart - 1`` / ``qstart - 1`` on the row's own strand, like MAF rows. AXT names no databases:
they are the parameters ``target_db`` / ``query_db`` (``src`` is ``db.chrom``). AXT gives no
chromosome sizes either: pass ``chrom_sizes`` (keys ``db.chrom`` or ``chrom``) to fill
``src_size``, needed for the forward coordinates of ``-`` rows (given sizes must then name every
chromosome of a ``-`` row); otherwise ``src_size`` is None. A bare ``chrom`` key may be the
query assembly's (a UCSC chrom.sizes of it, e.g. ``canFam1.chrom.sizes``, whose ``chr1`` is not
the target's): the target row, always ``+``, takes a bare size only when it fits in it.

``#`` comment lines (lastz and blastz headers) are skipped; :func:`header_scoring` reads the
substitution matrix and gap costs such a header states.

Validation (InputError with file and line): 9 header fields with integer coordinates and a
numeric score, strand ``+``/``-``, both text lines present, texts of equal length, and
``end - start + 1`` equal to the letters of each text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from embedhead.alignments.maf import ungapped_length
from embedhead.alignments.openers import ByteCounter, iter_lines, open_text
from embedhead.alignments.records import AlignedRow, AlignmentBlock
from embedhead.alignments.scoring import BASES, ScoringScheme, matrix_from_values
from embedhead.errors import InputError

__all__ = ["header_scoring", "parse_axt"]


def _int(value: str, what: str, path: str, line: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputError(f"AXT header: {what} is not an integer: {value!r}", path, line) from None


def _score(value: str, path: str, line: int) -> float:
    try:
        return float(value)
    except ValueError:
        raise InputError(f"AXT header: score is not a number: {value!r}", path, line) from None


def _src_size(
    chrom_sizes: Mapping[str, int] | None, db: str, chrom: str, bare: bool = True
) -> int | None:
    """Size of ``db.chrom``; a bare ``chrom`` key is used only when ``bare`` (the query side)."""
    if chrom_sizes is None:
        return None
    size = chrom_sizes.get(f"{db}.{chrom}")
    if size is None and bare:
        size = chrom_sizes.get(chrom)
    return None if size is None else int(size)


def _row(
    db: str,
    chrom: str,
    start1: int,
    end1: int,
    strand: str,
    text: str,
    src_size: int | None,
    what: str,
    path: str,
    header_line: int,
    text_line: int,
) -> AlignedRow:
    if start1 < 1:
        raise InputError(f"AXT header: {what} start {start1} is not 1-based", path, header_line)
    size = end1 - start1 + 1
    letters = ungapped_length(text)
    if size != letters:
        raise InputError(
            f"{what} coordinates {start1}-{end1} span {size} bases but its text has "
            f"{letters} letters",
            path,
            text_line,
        )
    start = start1 - 1
    if src_size is not None and start + size > src_size:
        raise InputError(
            f"{what} end {end1} exceeds the size {src_size} of {db}.{chrom}", path, header_line
        )
    return AlignedRow(f"{db}.{chrom}", db, chrom, start, size, strand, src_size, text, text_line)


class _Header(NamedTuple):
    tchrom: str
    tstart: int
    tend: int
    qchrom: str
    qstart: int
    qend: int
    strand: str
    score: float


def _parse_header(fields: list[str], path: str, line: int) -> _Header:
    if len(fields) != 9:
        raise InputError(
            f"AXT header has {len(fields)} fields, expected 9 "
            "(N tchrom tstart tend qchrom qstart qend strand score)",
            path,
            line,
        )
    _int(fields[0], "block number", path, line)
    strand = fields[7]
    if strand not in ("+", "-"):
        raise InputError(f"AXT header: strand must be '+' or '-', got {strand!r}", path, line)
    return _Header(
        fields[1],
        _int(fields[2], "target start", path, line),
        _int(fields[3], "target end", path, line),
        fields[4],
        _int(fields[5], "query start", path, line),
        _int(fields[6], "query end", path, line),
        strand,
        _score(fields[8], path, line),
    )


def _next_text(
    lines: Iterator[tuple[int, str]], what: str, path: str, header_line: int
) -> tuple[int, str]:
    nxt = next(lines, None)
    if nxt is None:
        missing_line = header_line + (1 if what == "target" else 2)
        raise InputError(
            f"file ends before the {what} text of the block at line {header_line}",
            path,
            missing_line,
        )
    text_line, raw = nxt
    text = raw.strip()
    if not text or len(text.split()) != 1:
        raise InputError(
            f"expected the {what} text of the block at line {header_line}", path, text_line
        )
    return text_line, text


def parse_axt(
    path: str | os.PathLike[str],
    chrom_sizes: Mapping[str, int] | None = None,
    *,
    target_db: str = "target",
    query_db: str = "query",
    counter: ByteCounter | None = None,
) -> Iterator[AlignmentBlock]:
    """Yield the validated blocks of an AXT file (plain, gzip or bzip2), streaming.

    ``AlignmentBlock.line`` is the header line; rows record their text lines. ``counter``
    counts the bytes read from the file.
    """
    name = str(path)
    index = 0
    lines = enumerate(iter_lines(name, counter), start=1)
    for lineno, raw in lines:
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        h = _parse_header(fields, name, lineno)
        t_line, t_text = _next_text(lines, "target", name, lineno)
        q_line, q_text = _next_text(lines, "query", name, lineno)
        if len(t_text) != len(q_text):
            raise InputError(
                f"query text has {len(q_text)} columns, target text {len(t_text)}",
                name,
                q_line,
            )
        # A bare chrom key may well be the query assembly's (its chrom.sizes; names like chr1
        # clash): the target (always '+', whose size only validates) takes it only if it fits.
        t_size = _src_size(chrom_sizes, target_db, h.tchrom, bare=False)
        t_bare = _src_size(chrom_sizes, target_db, h.tchrom)
        if t_size is None and t_bare is not None and h.tend <= t_bare:
            t_size = t_bare
        q_size = _src_size(chrom_sizes, query_db, h.qchrom)
        if chrom_sizes is not None and h.strand == "-" and q_size is None:
            raise InputError(
                f"query chromosome {h.qchrom!r} (or {query_db}.{h.qchrom}) is not in the"
                " chromosome sizes, which its minus-strand coordinates need",
                name,
                lineno,
            )
        target = _row(
            target_db, h.tchrom, h.tstart, h.tend, "+", t_text, t_size, "target",
            name, lineno, t_line,
        )  # fmt: skip
        query = _row(
            query_db, h.qchrom, h.qstart, h.qend, h.strand, q_text, q_size, "query",
            name, lineno, q_line,
        )  # fmt: skip
        yield AlignmentBlock((target, query), h.score, name, lineno, index)
        index += 1


_LASTZ_GAP = re.compile(r"^#\s*(gap_open_penalty|gap_extend_penalty)\s*=\s*(-?\d+)\s*$")
_BLASTZ_MATRIX = re.compile(r"^##matrix=\S+\s+16\s+([-\d,]+)\s*$")
_BLASTZ_GAPS = re.compile(r"^##gapPenalties=\S+\s+O=(\d+)\s+E=(\d+)\s*$")


def header_scoring(path: str | os.PathLike[str]) -> ScoringScheme | None:
    """The scoring scheme stated by a lastz or blastz AXT header, or None if it states none.

    lastz writes ``# gap_open_penalty = 400``, ``# gap_extend_penalty = 30`` and the matrix as
    ``#  A C G T`` then four ``#  X v v v v`` rows; blastz writes ``##matrix=blastz 16 v,...``
    (A C G T order, row by row) and ``##gapPenalties=blastz O=400 E=30``. Only the comment lines
    before the first block are read. A header with a matrix but no gap costs gives None.
    """
    name = str(path)
    gap_open: int | None = None
    gap_extend: int | None = None
    values: list[int] | None = None
    columns: list[int] | None = None
    rows: dict[int, list[int]] = {}
    with open_text(name) as fh:
        for raw in fh:
            line = raw.rstrip()
            if not line:
                continue
            if not line.startswith("#"):
                break
            if m := _LASTZ_GAP.match(line):
                if m.group(1) == "gap_open_penalty":
                    gap_open = int(m.group(2))
                else:
                    gap_extend = int(m.group(2))
            elif m := _BLASTZ_GAPS.match(line):
                gap_open, gap_extend = int(m.group(1)), int(m.group(2))
            elif m := _BLASTZ_MATRIX.match(line):
                parts = m.group(1).split(",")
                if len(parts) == 16:
                    values = [int(v) for v in parts]
            else:
                fields = line.lstrip("#").split()
                upper = [f.upper() for f in fields]
                if len(fields) == 4 and sorted(upper) == sorted(BASES) and columns is None:
                    columns = [BASES.index(c) for c in upper]
                elif columns is not None and len(fields) == 5 and upper[0] in BASES:
                    try:
                        numbers = [int(v) for v in fields[1:]]
                    except ValueError:
                        continue
                    ordered = [0, 0, 0, 0]
                    for col, value in zip(columns, numbers, strict=True):
                        ordered[col] = value
                    rows[BASES.index(upper[0])] = ordered
    if values is None and len(rows) == 4:
        values = [v for i in range(4) for v in rows[i]]
    if values is None or gap_open is None or gap_extend is None:
        return None
    mat = matrix_from_values(values)
    return ScoringScheme(f"{os.path.basename(name)} header", mat, gap_open, gap_extend)
