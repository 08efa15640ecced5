"""Streaming, validating parser of UCSC MAF (multiple alignment format).

``parse_maf(path)`` yields one :class:`AlignmentBlock` per ``a`` paragraph, reading the file
line by line (memory does not grow with the number of blocks). Accepted, as met in real files:

- optional ``##maf`` header lines (absent, or repeated), ``track`` lines, ``#`` comments and
  trailers (``##eof maf``, ``#eof``), all skipped;
- ``a`` lines with ``key=value`` pairs; ``score=`` may be negative or absent (score None);
- ``s src start size strand srcSize text`` rows; ``src`` is split on its FIRST dot into
  ``db`` and ``chrom`` (no dot: db = src, chrom = "");
- ``i``, ``e``, ``q`` lines inside a block are skipped (they carry no sequence row);
- a blank or whitespace-only line ends a block (so does a new ``a`` line or the end of file);
- fields separated by runs of spaces/tabs; lines of any length; trailing whitespace.

Validation (each violation raises InputError with the file and the 1-based line of the
offending row): 7 fields per ``s`` row, integer ``start``/``size``/``srcSize`` (>= 0), strand
``+``/``-``, ``size`` equal to the letters of ``text`` (``-`` and ``.`` are gaps: in humor and
mafFrags output ``.`` marks unaligned columns and the sizes only agree when it is not counted),
``start + size <= srcSize``, and all rows of a block of the same length.

``keep_dbs`` (a set of database names) keeps only the rows of those databases in the blocks
yielded: the other rows are validated all the same but never built (``prepare`` with both
``--reference`` and ``--query`` needs two rows of a 100-way block). Blocks are yielded, and
counted in ``index``, exactly as without it, possibly with no rows left.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator

from embedhead.alignments.openers import ByteCounter, iter_lines
from embedhead.alignments.records import AlignedRow, AlignmentBlock
from embedhead.errors import InputError

__all__ = ["parse_maf", "split_src", "ungapped_length"]

_SKIPPED_LINE_TYPES = frozenset({"i", "e", "q"})


def ungapped_length(text: str) -> int:
    """Number of letters of an aligned text (``-`` and ``.`` are gaps). ``.`` is rare: a
    memchr-fast test spares counting it (~1.5 us per 800 columns)."""
    return len(text) - text.count("-") - (text.count(".") if "." in text else 0)


def split_src(src: str) -> tuple[str, str]:
    """``db.chrom`` split on the first dot; a name without a dot is all db, chrom ""."""
    db, _, chrom = src.partition(".")
    return db, chrom


def _int_field(value: str, what: str, path: str, line: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"{what} is not an integer: {value!r}", path, line) from None
    if number < 0:
        raise InputError(f"{what} is negative: {number}", path, line)
    return number


def _parse_score(fields: list[str], path: str, line: int) -> float | None:
    score: float | None = None
    for item in fields[1:]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"malformed 'a' line field {item!r} (expected key=value)", path, line)
        if key == "score":
            try:
                score = float(value)
            except ValueError:
                raise InputError(f"score is not a number: {value!r}", path, line) from None
    return score


def _parse_row(fields: list[str], path: str, line: int) -> AlignedRow:
    if len(fields) != 7:
        raise InputError(
            f"'s' line has {len(fields)} fields, expected 7 (s src start size strand srcSize text)",
            path,
            line,
        )
    _, src, start_s, size_s, strand, src_size_s, text = fields
    start = _int_field(start_s, "start", path, line)
    size = _int_field(size_s, "size", path, line)
    src_size = _int_field(src_size_s, "srcSize", path, line)
    if strand not in ("+", "-"):
        raise InputError(f"strand must be '+' or '-', got {strand!r}", path, line)
    letters = ungapped_length(text)
    if letters != size:
        raise InputError(
            f"size field {size} disagrees with the {letters} letters of the text of {src}",
            path,
            line,
        )
    if start + size > src_size:
        raise InputError(
            f"start + size = {start + size} exceeds srcSize {src_size} for {src}", path, line
        )
    db, chrom = split_src(src)
    return AlignedRow(src, db, chrom, start, size, strand, src_size, text, line)


def _check_row(fields: list[str], path: str, line: int) -> tuple[int, int, int]:
    """Validate an ``s`` row's fields (see :func:`_parse_row`): (start, size, srcSize).

    The common case costs three ``int()`` calls and two counts; any doubt goes to
    :func:`_parse_row`, which raises the precise error.
    """
    if len(fields) == 7:
        try:
            start, size, src_size = int(fields[2]), int(fields[3]), int(fields[5])
        except ValueError:
            pass
        else:
            text = fields[6]
            if (
                start >= 0
                and size >= 0
                and src_size >= 0
                and start + size <= src_size
                and fields[4] in ("+", "-")
                and ungapped_length(text) == size
            ):
                return start, size, src_size
    _parse_row(fields, path, line)  # raises
    raise AssertionError("unreachable")  # pragma: no cover


def parse_maf(
    path: str | os.PathLike[str],
    *,
    keep_dbs: Collection[str] | None = None,
    counter: ByteCounter | None = None,
) -> Iterator[AlignmentBlock]:
    """Yield the validated blocks of a MAF file (plain, gzip or bzip2), streaming.

    Blocks without any ``s`` row are skipped. ``AlignmentBlock.line`` is the ``a`` line;
    ``index`` counts the blocks yielded. ``keep_dbs``: see the module docstring; ``counter``
    counts the bytes read from the file. Raises InputError (file, line) on malformed input.
    """
    name = str(path)
    index = 0
    rows: list[AlignedRow] = []
    n_rows = 0  # rows of the block, kept or not
    width = 0  # columns of the block's first row
    score: float | None = None
    block_line = 0  # 0: not inside a block
    keep = None if keep_dbs is None else frozenset(keep_dbs)
    for lineno, raw in enumerate(iter_lines(name, counter), start=1):
        fields = raw.split()
        if not fields:
            if block_line and n_rows:
                yield AlignmentBlock(tuple(rows), score, name, block_line, index)
                index += 1
            block_line = 0
            rows = []
            n_rows = 0
            continue
        kind = fields[0]
        if kind == "s":
            if not block_line:
                raise InputError("'s' line outside an alignment block ('a' line)", name, lineno)
            start, size, src_size = _check_row(fields, name, lineno)
            text = fields[6]
            if n_rows and len(text) != width:
                raise InputError(
                    f"row of {len(text)} columns in a block of {width} "
                    f"columns (block at line {block_line})",
                    name,
                    lineno,
                )
            if not n_rows:
                width = len(text)
            n_rows += 1
            src = fields[1]
            db, _, chrom = src.partition(".")
            if keep is None or db in keep:
                rows.append(
                    AlignedRow(src, db, chrom, start, size, fields[4], src_size, text, lineno)
                )
        elif kind == "a":
            if block_line and n_rows:
                yield AlignmentBlock(tuple(rows), score, name, block_line, index)
                index += 1
            rows = []
            n_rows = 0
            score = _parse_score(fields, name, lineno)
            block_line = lineno
        elif (
            kind in _SKIPPED_LINE_TYPES
            or kind.startswith("#")
            or (kind == "track" and not block_line)
        ):
            continue
        else:
            raise InputError(f"unexpected MAF line starting with {kind[:20]!r}", name, lineno)
    if block_line and n_rows:
        yield AlignmentBlock(tuple(rows), score, name, block_line, index)
