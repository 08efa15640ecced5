"""Alignment scoring schemes and exact, vectorised scores of pairwise alignment text.

A :class:`ScoringScheme` is a 4x4 substitution matrix over A, C, G, T (in that order) plus an
affine gap cost. :func:`score_alignment` computes, for two aligned texts of equal length L::

    score = sum(matrix[a][b] over columns where both rows hold a letter)
            - sum(gap_open + gap_extend * k over every gap run of k columns)

Rules (the UCSC chain/net convention, checked against kent's netToAxt/chainToAxt output):

- case is ignored; ``N`` and any letter other than ACGT scores 0 against anything (unless the
  scheme has an N row/column, read from a lastz scoring file: then those values);
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
NRow = tuple[int, int, int, int, int]

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
    #: N (and any other non-ACGT letter) in the first row against A, C, G, T, N of the second;
    #: None = 0 everywhere (the UCSC rule). Set by a scoring file with an N row.
    n_row: NRow | None = None
    #: A, C, G, T of the first row against N (or another letter) in the second; None = 0.
    n_column: Row | None = None

    def __post_init__(self) -> None:
        if len(self.matrix) != 4 or any(len(row) != 4 for row in self.matrix):
            raise ConfigError(f"scoring scheme {self.name!r}: the matrix must be 4x4 (A C G T)")
        if (self.n_row is not None and len(self.n_row) != 5) or (
            self.n_column is not None and len(self.n_column) != 4
        ):
            raise ConfigError(
                f"scoring scheme {self.name!r}: the N row needs 5 values (A C G T N) and the N "
                "column 4 (A C G T)"
            )
        if self.gap_open < 0 or self.gap_extend < 0:
            raise ConfigError(
                f"scoring scheme {self.name!r}: gap costs are penalties and must be >= 0"
            )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description (for dataset.json)."""
        out: dict[str, object] = {
            "name": self.name,
            "matrix": [list(row) for row in self.matrix],
            "gap_open": self.gap_open,
            "gap_extend": self.gap_extend,
        }
        if self.n_row is not None:
            out["n_row"] = list(self.n_row)
        if self.n_column is not None:
            out["n_column"] = list(self.n_column)
        return out


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
_ASSIGN = re.compile(r"([A-Za-z_]+)\s*=\s*([^\s,]+)")
_HEADER_LETTERS = "ACGTN"
#: Gap costs of a matrix-only file (UCSC BLASTZ_Q / kent ``.q``): lastz's and kent's defaults.
DEFAULT_GAP_OPEN = 400
DEFAULT_GAP_EXTEND = 30


def load_scheme_file(path: str | os.PathLike[str]) -> ScoringScheme:
    """Read a scoring scheme from a small text file, in any of the styles UCSC and lastz ship.

    ``#`` starts a comment; blank lines are ignored. Settings are ``key = value`` pairs, one or
    several a line, separated by spaces or commas: ``O = 400, E = 30`` (kent's axtScoreScheme
    style), ``O=400 E=30``, ``gap_open = 400`` / ``gap_extend = 30``, or lastz's
    ``gap_open_penalty`` / ``gap_extend_penalty``; lastz settings that do not change a score
    (``bad_score``, ``fill_score``, ``x_drop``, ...) are ignored. The matrix::

            A    C    G    T          # header: A C G T in any order, optionally N
        A  91 -114  -31 -123          # rows with their letter ...
         -114  100 -125  -31          # ... or without (BLASTZ_Q, kent's HoxD55.q): header order

    With an ``N`` column/row (lastz files), its values score N and any other non-ACGT letter
    (otherwise they score 0). A file without gap costs (a bare BLASTZ_Q matrix) gets lastz's
    defaults, O=400 E=30; a file that gives one gap cost must give both. The scheme's name is the
    file name. Every error is an InputError naming the file and line.
    """

    name = str(path)
    gap_open: int | None = None
    gap_extend: int | None = None
    header: list[str] | None = None
    rows: dict[str, list[int]] = {}
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
            if header is None:
                letters = [f.upper() for f in fields]
                if sorted(letters) not in (sorted(BASES), sorted(_HEADER_LETTERS)):
                    raise InputError(
                        f"matrix header must name the columns A C G T (and optionally N), got "
                        f"{line!r}",
                        name,
                        lineno,
                    )
                header = letters
                continue
            width = len(header)
            lettered = fields[0].isalpha()
            if lettered and len(fields) == width + 1 and fields[0].upper() in header:
                letter, numbers = fields[0].upper(), fields[1:]
            elif not lettered and len(fields) == width and len(rows) < width:
                letter, numbers = header[len(rows)], fields
            else:
                raise InputError(
                    f"matrix row must be {width} integers, optionally after its letter "
                    f"({' '.join(header)}), got {line!r}",
                    name,
                    lineno,
                )
            if letter in rows:
                raise InputError(f"matrix row {letter} given twice", name, lineno)
            values = [_parse_int(v, name, lineno) for v in numbers]
            rows[letter] = [values[header.index(c)] for c in _HEADER_LETTERS if c in header]
    wanted = _HEADER_LETTERS if header is not None and "N" in header else BASES
    if header is None or any(c not in rows for c in wanted):
        missing = "".join(c for c in wanted if c not in rows)
        raise InputError(f"incomplete matrix (missing header or rows {missing})", name)
    if (gap_open is None) != (gap_extend is None):
        raise InputError(
            "gap_open and gap_extend (O= and E=) must be given together (a file with neither "
            f"gets lastz's defaults O={DEFAULT_GAP_OPEN} E={DEFAULT_GAP_EXTEND})",
            name,
        )
    mat = matrix_from_values([v for c in BASES for v in rows[c][:4]])
    n_row: NRow | None = None
    n_column: Row | None = None
    if "N" in header:
        r = rows["N"]
        n_row = (r[0], r[1], r[2], r[3], r[4])
        n_column = (rows["A"][4], rows["C"][4], rows["G"][4], rows["T"][4])
    try:
        return ScoringScheme(
            Path(name).name,
            mat,
            DEFAULT_GAP_OPEN if gap_open is None else gap_open,
            DEFAULT_GAP_EXTEND if gap_extend is None else gap_extend,
            n_row=n_row,
            n_column=n_column,
        )
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
    if scheme.n_row is not None:
        table[_OTHER, :5] = np.asarray(scheme.n_row, dtype=np.int64)
    if scheme.n_column is not None:
        table[:4, _OTHER] = np.asarray(scheme.n_column, dtype=np.int64)
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


# ---- fused fast path: one encoding, one histogram per window -------------------------------------
# A column of a pair is coded ``6 * code1 + code2`` (0..35), through two 256-byte translation
# tables (bytes.translate is a C loop); 35 is a column where both rows are gaps.
_CODES_X6 = bytes((_CODES * 6).tolist())
_CODES_X1 = bytes(_CODES.tolist())
_BOTH_GAP = 6 * _GAP + _GAP
#: column code -> 1 when exactly one row is a gap there, else 0 (a 256-byte table).
_GAP_COLUMN = bytes(
    [1 if k != _BOTH_GAP and (k // 6 == _GAP or k % 6 == _GAP) else 0 for k in range(36)]
    + [0] * (256 - 36)
)


def column_codes(text1: str, text2: str) -> npt.NDArray[np.uint8]:
    """Pair column codes ``6 * code1 + code2`` of two aligned texts, shape (L,) uint8.

    Columns where both rows are gaps are kept (code 35); :func:`both_gap_mask` finds them.
    """
    if len(text1) != len(text2):
        raise ValueError(f"aligned texts differ in length: {len(text1)} != {len(text2)}")
    first = np.frombuffer(text1.encode("latin-1").translate(_CODES_X6), dtype=np.uint8)
    codes: npt.NDArray[np.uint8] = first + np.frombuffer(
        text2.encode("latin-1").translate(_CODES_X1), dtype=np.uint8
    )
    return codes


def both_gap_mask(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_] | None:
    """Mask of the columns to keep (not a gap in both rows), or None when all are kept."""
    if _BOTH_GAP not in codes.tobytes():
        return None
    keep: npt.NDArray[np.bool_] = codes != _BOTH_GAP
    return keep


@lru_cache(maxsize=32)
def _flat_table(scheme: ScoringScheme) -> npt.NDArray[np.int64]:
    flat: npt.NDArray[np.int64] = _table(scheme).reshape(36).copy()
    return flat


def score_and_identity_codes(
    codes: npt.NDArray[np.uint8], scheme: ScoringScheme
) -> tuple[int, float]:
    """:func:`score_alignment` and :func:`identity` from column codes without both-gap columns.

    Exactly the same numbers as the two functions on the texts: the substitution sum comes from
    a histogram of the 36 column codes, the gap runs from the gap mask (0/1 bytes) counting the
    ``0 1`` steps.
    """
    n = int(codes.size)
    if n == 0:
        return 0, math.nan
    counts = np.bincount(codes, minlength=36)
    c = counts.tolist()
    # columns with a gap in exactly one row: code 5 in either position (35, both, never occurs)
    n_gap = c[5] + c[11] + c[17] + c[23] + c[29] + c[30] + c[31] + c[32] + c[33] + c[34]
    substitution = int(counts @ _flat_table(scheme))
    n_aligned = n - n_gap
    matches = c[0] + c[7] + c[14] + c[21]
    ident = matches / n_aligned if n_aligned else math.nan
    if n_gap == 0:
        return substitution, ident
    gap = codes.tobytes().translate(_GAP_COLUMN)
    runs = gap.count(b"\x00\x01") + (gap[0] == 1)
    return substitution - scheme.gap_open * runs - scheme.gap_extend * n_gap, ident


def score_and_identity(text1: str, text2: str, scheme: ScoringScheme = HOXD70) -> tuple[int, float]:
    """``(score_alignment(t1, t2, scheme), identity(t1, t2))`` with one encoding of the texts."""
    codes = column_codes(text1, text2)
    keep = both_gap_mask(codes)
    if keep is not None:
        codes = codes[keep]
    return score_and_identity_codes(codes, scheme)
