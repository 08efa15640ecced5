"""The seed thesis's pair table: CSV rows ``id, score, seq1, seq2`` read as 2-row blocks.

An optional header ``id,score,seq1,seq2`` is skipped. Each data row becomes an
:class:`AlignmentBlock` with two rows: db ``seq1`` / ``seq2``, chrom = the row's id,
``src = "seq1.<id>"``, start 0, size = the letters of the sequence (``-`` and ``.`` are gaps),
strand ``+``, ``src_size`` None; the block's score is the file's (None when the field is empty
or ``nan``; an infinite score is refused).

Sequences of equal length are taken as aligned text as they stand. The thesis stores the two
sequences unaligned, and they usually differ in length: the shorter one is then padded with
trailing ``-`` so the block keeps its equal-length invariant. Such a block is NOT an alignment:
use its file score, never re-score or cut it into column windows.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator

from embedhead.alignments.detect import is_csv_header
from embedhead.alignments.maf import ungapped_length
from embedhead.alignments.openers import ByteCounter, open_text
from embedhead.alignments.records import AlignedRow, AlignmentBlock
from embedhead.errors import InputError
from embedhead.fileio import allow_long_csv_fields

__all__ = ["parse_thesis_csv"]


def _check_sequence(text: str, what: str, path: str, line: int) -> str:
    seq = text.strip()
    if not seq:
        raise InputError(f"{what} is empty", path, line)
    if not all(c.isalpha() or c in "-." for c in seq):
        raise InputError(f"{what} holds characters other than letters and gaps", path, line)
    return seq


def parse_thesis_csv(
    path: str | os.PathLike[str], counter: ByteCounter | None = None
) -> Iterator[AlignmentBlock]:
    """Yield one 2-row block per data row of a thesis CSV (plain, gzip or bzip2), streaming."""
    name = str(path)
    index = 0
    allow_long_csv_fields()
    with open_text(name, counter) as fh:
        reader = csv.reader(fh)
        first = True
        while True:
            start_line = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise InputError(f"malformed CSV: {exc}", name, reader.line_num) from None
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if first:
                first = False
                if is_csv_header(",".join(fields)):
                    continue
            if len(fields) != 4:
                raise InputError(
                    f"CSV row has {len(fields)} fields, expected 4 (id, score, seq1, seq2)",
                    name,
                    line,
                )
            pair_id = fields[0].strip()
            if not pair_id:
                raise InputError("CSV row has an empty id", name, line)
            score_text = fields[1].strip()
            score: float | None = None
            if score_text:
                try:
                    score = float(score_text)
                except ValueError:
                    raise InputError(f"score is not a number: {score_text!r}", name, line) from None
                if math.isinf(score):
                    raise InputError(f"score is not finite: {score_text!r}", name, line)
                if math.isnan(score):
                    score = None  # "nan", as some tools write a missing value: no score
            seq1 = _check_sequence(fields[2], "seq1", name, line)
            seq2 = _check_sequence(fields[3], "seq2", name, line)
            width = max(len(seq1), len(seq2))
            rows = tuple(
                AlignedRow(
                    f"{db}.{pair_id}",
                    db,
                    pair_id,
                    0,
                    ungapped_length(seq),
                    "+",
                    None,
                    seq.ljust(width, "-"),
                    line,
                )
                for db, seq in (("seq1", seq1), ("seq2", seq2))
            )
            yield AlignmentBlock(rows, score, name, start_line, index)
            index += 1
