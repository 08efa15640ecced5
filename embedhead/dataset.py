"""The dataset folder written by ``prepare`` and read by every later stage.

Layout of a dataset folder::

    sequences.fa.gz   every unique sequence once; header ">ID", ID = sequence_id(seq)
    pairs.tsv.gz      one row per pair, tab separated, header line = PAIR_COLUMNS
    dataset.json      command line, input hashes, parameters, counts per split and label

Sequences are normalised (upper case, gaps removed, IUPAC codes other than ACGTN -> N) before
hashing, so the same sequence anywhere gets the same id. Empty fields in ``pairs.tsv.gz`` (score,
identity and coordinates of negatives, coordinates that cannot be known) read as NaN / None.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from embedhead.errors import InputError

SEQUENCES_FILE = "sequences.fa.gz"
PAIRS_FILE = "pairs.tsv.gz"
INFO_FILE = "dataset.json"
SPLITS = ("train", "val", "test")

_IUPAC_TABLE = str.maketrans(
    {c: "N" for c in "RYSWKMBDHVUrysw kmbdhvu".replace(" ", "")}
    | {c: c.upper() for c in "acgtn"}
    | {"-": None, ".": None}
)


def normalise_sequence(text: str) -> str:
    """Upper-case, drop gaps ('-', '.'), map IUPAC codes other than ACGTN to N.

    Raises ValueError on characters that are no nucleotide code at all.
    """
    seq = text.translate(_IUPAC_TABLE)
    bad = set(seq) - set("ACGTN")
    if bad:
        raise ValueError(f"not a nucleotide code: {''.join(sorted(bad))!r}")
    return seq


def sequence_id(seq: str) -> str:
    """Content id of a normalised sequence: 24 hex digits of its SHA-256."""
    return hashlib.sha256(seq.encode("ascii")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class PairRecord:
    """One labelled pair (a row of ``pairs.tsv.gz``)."""

    pair_id: str
    label: int
    seq1: str
    seq2: str
    len1: int
    len2: int
    score: float
    norm_score: float
    identity: float
    db1: str
    chrom1: str
    start1: int | None
    end1: int | None
    strand1: str
    db2: str
    chrom2: str
    start2: int | None
    end2: int | None
    strand2: str
    block_id: str
    split: str


PAIR_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(PairRecord))
_INT_COLUMNS = {"label", "len1", "len2"}
_OPT_INT_COLUMNS = {"start1", "end1", "start2", "end2"}
_FLOAT_COLUMNS = {"score", "norm_score", "identity"}


def format_pair_row(rec: PairRecord) -> list[str]:
    """Render a record as TSV fields (None and NaN become empty fields)."""
    out: list[str] = []
    for name in PAIR_COLUMNS:
        value = getattr(rec, name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append("")
        elif isinstance(value, float):
            out.append(repr(value) if not value.is_integer() else str(int(value)))
        else:
            out.append(str(value))
    return out


def parse_pair_row(row: list[str], path: str | Path, line: int) -> PairRecord:
    """Parse TSV fields into a record; errors name the file and line."""
    if len(row) != len(PAIR_COLUMNS):
        raise InputError(f"expected {len(PAIR_COLUMNS)} fields, found {len(row)}", path, line)
    values: dict[str, Any] = {}
    try:
        for name, raw in zip(PAIR_COLUMNS, row, strict=True):
            if name in _INT_COLUMNS:
                values[name] = int(raw)
            elif name in _OPT_INT_COLUMNS:
                values[name] = int(raw) if raw else None
            elif name in _FLOAT_COLUMNS:
                values[name] = float(raw) if raw else math.nan
            else:
                values[name] = raw
    except ValueError as exc:
        raise InputError(f"bad value in pairs table: {exc}", path, line) from exc
    if values["split"] not in SPLITS:
        raise InputError(f"unknown split {values['split']!r}", path, line)
    if values["label"] not in (0, 1):
        raise InputError(f"label must be 0 or 1, not {values['label']}", path, line)
    return PairRecord(**values)


def read_pairs(path: str | Path) -> list[PairRecord]:
    """Read a pairs table (``.tsv`` or ``.tsv.gz``) written by ``prepare``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
            reader = csv.reader(fh, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise InputError("empty pairs table", path, 1)
            if tuple(header) != PAIR_COLUMNS:
                raise InputError(f"unexpected header {header!r}", path, 1)
            return [parse_pair_row(row, path, i) for i, row in enumerate(reader, start=2)]
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read pairs table: {exc}", path) from exc


def iter_fasta(path: str | Path) -> Iterator[tuple[str, str]]:
    """Yield (name, sequence) from a FASTA file (plain or .gz); name is the first word."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    name: str | None = None
    parts: list[str] = []
    header_line = 0
    try:
        with opener(path, "rt") as fh:  # type: ignore[operator]
            for lineno, line in enumerate(fh, start=1):
                line = line.strip()
                if not line:
                    continue
                if line.startswith(">"):
                    if name is not None:
                        yield name, "".join(parts)
                    words = line[1:].split()
                    if not words:
                        raise InputError("FASTA header without a name", path, lineno)
                    name, parts, header_line = words[0], [], lineno
                elif name is None:
                    raise InputError("sequence text before the first '>' header", path, lineno)
                else:
                    parts.append(line)
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read FASTA: {exc}", path) from exc
    if name is not None:
        if not parts:
            raise InputError(f"sequence {name!r} is empty", path, header_line)
        yield name, "".join(parts)


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset folder: its info, its pairs, and lazy access to its sequences."""

    path: Path
    info: dict[str, Any]
    pairs: tuple[PairRecord, ...]

    def split(self, name: str) -> list[PairRecord]:
        """The pairs of one split ('train', 'val' or 'test')."""
        if name not in SPLITS:
            raise InputError(f"unknown split {name!r} (choose from {', '.join(SPLITS)})", self.path)
        return [p for p in self.pairs if p.split == name]

    def sequences(self) -> Iterator[tuple[str, str]]:
        """Yield (sequence id, sequence) for every unique sequence, streamed from disk."""
        yield from iter_fasta(self.path / SEQUENCES_FILE)

    def sequence_ids(self) -> list[str]:
        """Ids of all sequences referenced by the pairs, in first-use order."""
        seen: dict[str, None] = {}
        for p in self.pairs:
            seen.setdefault(p.seq1)
            seen.setdefault(p.seq2)
        return list(seen)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the pairs table file: identifies exactly this dataset."""
        digest = hashlib.sha256()
        with open(self.path / PAIRS_FILE, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


def load_dataset(path: str | Path) -> Dataset:
    """Open a dataset folder written by ``prepare``; clear errors for anything missing."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("not a dataset folder (run `embedhead prepare` first)", path)
    for name in (SEQUENCES_FILE, PAIRS_FILE, INFO_FILE):
        if not (path / name).is_file():
            raise InputError(f"dataset folder lacks {name}", path)
    try:
        info = json.loads((path / INFO_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc}", path / INFO_FILE, exc.lineno) from exc
    return Dataset(path=path, info=info, pairs=tuple(read_pairs(path / PAIRS_FILE)))
