"""Alignment scoring schemes and exact, vectorised scores of pairwise alignment text.

A :class:`ScoringScheme` is a 4x4 substitution matrix over A, C, G, T (in that order) plus an
affine gap cost. :func:`score_alignment` computes, for two aligned texts of equal length L::

    score = sum(matrix[a][b] over columns where both rows hold a letter)
            - sum(gap_open + gap_extend * k over every gap run of k columns)

Rules (the UCSC chain/net convention, checked against kent's netToAxt/chainToAxt output):

- case is ignored; ``N`` and any letter other than ACGT scores 0 against anything;
- ``-`` and ``.`` are gaps; a column with a gap in exactly one row is a gap column, and a run of
  consecutive gap columns is one gap even when the gap switches from one row to the other;
- a column where BOTH rows are gaps (this happens when a pair is projected out of a multiple
  alignment) is not a column of the pairwise alignment: it is dropped before scoring, so it
  neither costs anything nor breaks a gap run. (Pure pairwise files, AXT or pairwise MAF,
  never have such columns.)

Internally the texts become ``uint8`` arrays of shape (L,), coded through a 256-entry lookup
(A0 C1 G2 T3, other letter 4, gap 5) and scored with one table lookup per column: no Python
loop over columns.

:func:`identity` is the fraction of identical ACGT letters among the columns where both rows
hold a letter (case ignored; ``N`` never matches, not even ``N``); NaN when there is no such
column.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from embedhead.alignments.openers import open_text
from embedhead.errors import ConfigError, InputError

BASES = "ACGT"
Row = tuple[int, int, int, int]
Matrix = tuple[Row, Row, Row, Row]

_OTHER = 4
_GAP = 5


@dataclass(frozen=True)
class ScoringScheme:
    """A substitution matrix (rows/columns A, C, G, T) and an affine gap cost.

    A gap run of ``k`` columns costs ``gap_open + gap_extend * k``.
    """

    name: str
    matrix: Matrix
    gap_open: int
    gap_extend: int

    def __post_init__(self) -> None:
        if len(self.matrix) != 4 or any(len(row) != 4 for row in self.matrix):
            raise ConfigError(f"scoring scheme {self.name!r}: the matrix must be 4x4 (A C G T)")
        if self.gap_open < 0 or self.gap_extend < 0:
            raise ConfigError(
                f"scoring scheme {self.name!r}: gap costs are penalties and must be >= 0"
            )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description (for dataset.json)."""
        return {
            "name": self.name,
            "matrix": [list(row) for row in self.matrix],
            "gap_open": self.gap_open,
            "gap_extend": self.gap_extend,
        }


def _matrix(*rows: Row) -> Matrix:
    return (rows[0], rows[1], rows[2], rows[3])


def matrix_from_values(values: Sequence[int]) -> Matrix:
    """A matrix from 16 integers in row order (A C G T rows, A C G T columns)."""
    if len(values) != 16:
        raise ValueError(f"a 4x4 matrix needs 16 values, got {len(values)}")
    v = [int(x) for x in values]
    return (
        (v[0], v[1], v[2], v[3]),
        (v[4], v[5], v[6], v[7]),
        (v[8], v[9], v[10], v[11]),
        (v[12], v[13], v[14], v[15]),
    )


HOXD70 = ScoringScheme(
    "HOXD70",
    _matrix(
        (91, -114, -31, -123),
        (-114, 100, -125, -31),
        (-31, -125, 100, -114),
        (-123, -31, -114, 91),
    ),
    gap_open=400,
    gap_extend=30,
)
"""UCSC's default chain/net scheme (the score of net AXT/MAF blocks)."""

HOXD55 = ScoringScheme(
    "HoxD55",
    _matrix(
        (91, -90, -25, -100),
        (-90, 100, -100, -25),
        (-25, -100, 100, -90),
        (-100, -25, -90, 91),
    ),
    gap_open=400,
    gap_extend=30,
)
"""lastz matrix UCSC used for distant species (e.g. hg38 vs galGal6, xenTro10, danRer10)."""

HUMAN_CHIMP_V2 = ScoringScheme(
    "human_chimp.v2",
    _matrix(
        (90, -330, -236, -356),
        (-330, 100, -318, -236),
        (-236, -318, 100, -330),
        (-356, -236, -330, 90),
    ),
    gap_open=600,
    gap_extend=150,
)
"""lastz matrix UCSC used for close primates (hg38 vs panTro6)."""

PRESETS: dict[str, ScoringScheme] = {
    "hoxd70": HOXD70,
    "hoxd55": HOXD55,
    "humanchimpv2": HUMAN_CHIMP_V2,
}


def _preset_key(name: str) -> str:
    return re.sub(r"[\s._-]", "", name.lower())


def get_scheme(name_or_path: str | os.PathLike[str]) -> ScoringScheme:
    """A preset by name (case-insensitive: ``hoxd70``, ``HoxD55``, ``human_chimp.v2``) or a file.

    The file format is described in :func:`load_scheme_file`. Raises ConfigError for an unknown
    name that is not a file either, InputError (file and line) for a malformed file.
    """
    key = _preset_key(str(name_or_path))
    if key in PRESETS:
        return PRESETS[key]
    path = Path(name_or_path)
    if path.is_file():
        return load_scheme_file(path)
    known = ", ".join(s.name for s in PRESETS.values())
    raise ConfigError(
        f"unknown scoring scheme {str(name_or_path)!r}: use one of {known} or a matrix file"
    )


_KEYS_OPEN = {"o", "gap_open", "gap_open_penalty"}
_KEYS_EXTEND = {"e", "gap_extend", "gap_extend_penalty"}
# lastz scoring-file settings that do not change the score of a given alignment.
_KEYS_IGNORED = {"bad_score", "fill_score", "x_drop", "y_drop", "hsp_threshold"}
_KEYS_IGNORED |= {"gapped_threshold", "step", "seed", "t", "k", "l", "y", "m"}
_ASSIGN = re.compile(r"([A-Za-z_]+)\s*=\s*(\S+)")


def load_scheme_file(path: str | os.PathLike[str]) -> ScoringScheme:
    """Read a scoring scheme from a small text file (a lastz scoring file is accepted).

    Format (``#`` starts a comment; blank lines ignored)::

        # my scheme
        gap_open = 400        # also: O=400 E=30 on one line, or gap_open_penalty = 400
        gap_extend = 30
            A    C    G    T
        A  91 -114  -31 -123
        C -114 100 -125  -31
        G -31 -125  100 -114
        T -123 -31 -114   91

    The header row names the columns (the four letters A C G T, any order) and each of the
    four rows starts with its letter. Both gap costs are required. The scheme's name is the file
    name. Every error is an InputError naming the file and line.
    """

    name = str(path)
    gap_open: int | None = None
    gap_extend: int | None = None
    columns: list[int] | None = None
    rows: dict[int, list[int]] = {}
    with open_text(name) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if "=" in line:
                settings = _ASSIGN.findall(line)
                if not settings:
                    raise InputError(
                        f"malformed setting {line!r} (expected key = value)", name, lineno
                    )
                for key, value in settings:
                    k = key.lower()
                    if k in _KEYS_IGNORED:
                        continue
                    if k not in _KEYS_OPEN and k not in _KEYS_EXTEND:
                        raise InputError(f"unknown setting {key!r}", name, lineno)
                    number = _parse_int(value, name, lineno)
                    if k in _KEYS_OPEN:
                        gap_open = number
                    else:
                        gap_extend = number
                continue
            fields = line.split()
            if columns is None:
                letters = [f.upper() for f in fields]
                if sorted(letters) != sorted(BASES):
                    raise InputError(
                        f"matrix header must name the columns A C G T, got {line!r}", name, lineno
                    )
                columns = [BASES.index(c) for c in letters]
                continue
            letter = fields[0].upper()
            if letter not in BASES or len(fields) != 5:
                raise InputError(
                    f"matrix row must be a letter A/C/G/T and 4 integers, got {line!r}",
                    name,
                    lineno,
                )
            idx = BASES.index(letter)
            if idx in rows:
                raise InputError(f"matrix row {letter} given twice", name, lineno)
            values = [_parse_int(v, name, lineno) for v in fields[1:]]
            ordered = [0, 0, 0, 0]
            for col, value in zip(columns, values, strict=True):
                ordered[col] = value
            rows[idx] = ordered
    if columns is None or len(rows) != 4:
        missing = "".join(b for i, b in enumerate(BASES) if i not in rows)
        raise InputError(f"incomplete matrix (missing header or rows {missing})", name)
    if gap_open is None or gap_extend is None:
        raise InputError("gap_open and gap_extend (or O= and E=) are required", name)
    mat = matrix_from_values([v for i in range(4) for v in rows[i]])
    try:
        return ScoringScheme(Path(name).name, mat, gap_open, gap_extend)
    except ConfigError as exc:
        raise InputError(str(exc), name) from exc


def _parse_int(value: str, path: str, line: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputError(f"not an integer: {value!r}", path, line) from None


def _build_codes() -> npt.NDArray[np.uint8]:
    codes = np.full(256, _OTHER, dtype=np.uint8)
    for i, base in enumerate(BASES):
        codes[ord(base)] = i
        codes[ord(base.lower())] = i
    codes[ord("-")] = _GAP
    codes[ord(".")] = _GAP
    return codes


_CODES = _build_codes()


@lru_cache(maxsize=32)
def _table(scheme: ScoringScheme) -> npt.NDArray[np.int64]:
    """6x6 column-score table: ACGT block from the matrix, 'other letter' 0, gap 0."""
    table = np.zeros((6, 6), dtype=np.int64)
    table[:4, :4] = np.asarray(scheme.matrix, dtype=np.int64)
    return table


def encode(text: str) -> npt.NDArray[np.uint8]:
    """Codes of an aligned text, shape (L,): A0 C1 G2 T3, other letters 4, gaps 5."""
    raw = np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
    return _CODES[raw]


def _pair_codes(text1: str, text2: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    if len(text1) != len(text2):
        raise ValueError(f"aligned texts differ in length: {len(text1)} != {len(text2)}")
    c1 = encode(text1)
    c2 = encode(text2)
    both_gap = (c1 == _GAP) & (c2 == _GAP)
    if both_gap.any():
        keep = ~both_gap
        c1 = c1[keep]
        c2 = c2[keep]
    return c1, c2


def score_alignment(text1: str, text2: str, scheme: ScoringScheme = HOXD70) -> int:
    """Exact score of two aligned texts of equal length under ``scheme`` (see module doc)."""
    c1, c2 = _pair_codes(text1, text2)
    if c1.size == 0:
        return 0
    gap = (c1 == _GAP) | (c2 == _GAP)
    substitution = int(_table(scheme)[c1, c2].sum())
    n_gap = int(np.count_nonzero(gap))
    if n_gap == 0:
        return substitution
    runs = int(gap[0]) + int(np.count_nonzero(gap[1:] & ~gap[:-1]))
    return substitution - scheme.gap_open * runs - scheme.gap_extend * n_gap


def identity(text1: str, text2: str) -> float:
    """Identical ACGT letters / columns where both rows hold a letter (NaN if none)."""
    c1, c2 = _pair_codes(text1, text2)
    aligned = (c1 != _GAP) & (c2 != _GAP)
    n_aligned = int(np.count_nonzero(aligned))
    if n_aligned == 0:
        return math.nan
    matches = int(np.count_nonzero(aligned & (c1 == c2) & (c1 < _OTHER)))
    return matches / n_aligned
