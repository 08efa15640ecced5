"""Detect the format of an alignment file from its content (never from its name).

The first line that is neither blank nor a ``#`` comment decides (a ``##maf`` header decides at
once):

- ``a ...`` (a MAF block line), ``s ...`` or ``track ...`` -> ``"maf"``;
- 9 whitespace-separated fields ``N tchrom tstart tend qchrom qstart qend +/- score`` with
  integer N and coordinates -> ``"axt"``;
- a CSV header ``id,score,seq1,seq2`` (case and spaces ignored), or a CSV row of 4 fields
  (quoted or not) with a numeric (or empty) second field and a third of letters and gaps ->
  ``"csv"`` (the seed thesis's pair table).

Anything else raises InputError naming the file and the line that could not be recognised.
"""

from __future__ import annotations

import csv
import os
from typing import Literal

from embedhead.alignments.openers import open_text
from embedhead.errors import InputError
from embedhead.fileio import allow_long_csv_fields

Format = Literal["maf", "axt", "csv"]
FORMATS: tuple[Format, ...] = ("maf", "axt", "csv")
CSV_HEADER = ("id", "score", "seq1", "seq2")


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def is_axt_header(fields: list[str]) -> bool:
    """True for the 9 fields of an AXT block header."""
    return (
        len(fields) == 9
        and all(_is_int(fields[i]) for i in (0, 2, 3, 5, 6))
        and fields[7] in ("+", "-")
        and _is_number(fields[8])
    )


def is_csv_header(line: str) -> bool:
    """True for the thesis CSV header ``id,score,seq1,seq2``."""
    return tuple(f.strip().strip('"').lower() for f in line.split(",")) == CSV_HEADER


def _classify(line: str) -> Format | None:
    fields = line.split()
    if fields[0] in ("a", "s", "track"):
        return "maf"
    if is_axt_header(fields):
        return "axt"
    if is_csv_header(line):
        return "csv"
    allow_long_csv_fields()
    parts = next(csv.reader([line]), [])
    if (
        len(parts) == 4
        and (parts[1].strip() == "" or _is_number(parts[1]))
        and _is_sequence(parts[2])
    ):
        return "csv"
    return None


def _is_sequence(field: str) -> bool:
    """Letters, possibly with ``-``/``.`` gaps (the test ``csvpairs`` applies to a sequence)."""
    seq = field.strip()
    has_letter = any(c.isalpha() for c in seq)
    return has_letter and all(c.isalpha() or c in "-." for c in seq)


def detect_format(path: str | os.PathLike[str]) -> Format:
    """``"maf"``, ``"axt"`` or ``"csv"``, judged from the first meaningful line of ``path``."""
    name = str(path)
    with open_text(name) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("##maf"):
                return "maf"
            if line.startswith("#"):
                continue
            fmt = _classify(line)
            if fmt is None:
                raise InputError(
                    f"unrecognised alignment format: line starts with {line[:40]!r} "
                    "(expected a MAF 'a' line, an AXT header or a CSV 'id,score,seq1,seq2')",
                    name,
                    lineno,
                )
            return fmt
    raise InputError("no alignment content (only blank or comment lines)", name)
