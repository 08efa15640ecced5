"""The dataset folder written by ``prepare`` and read by every later stage.

Layout of a dataset folder::

    sequences.fa.gz   every unique sequence once; header ">ID", ID = sequence_id(seq)
    pairs.tsv.gz      one row per pair, tab separated, header line = PAIR_COLUMNS
    dataset.json      command line, input hashes, parameters, counts per split and label

Sequences are normalised (upper case, gaps removed, IUPAC codes other than ACGTN -> N) before
hashing, so the same sequence anywhere gets the same id. Empty fields in ``pairs.tsv.gz`` (score,
identity and coordinates of negatives, coordinates that cannot be known) read as NaN / None.

Writing: :func:`write_dataset` writes a whole folder at once (tests, benchmarks, tools);
``prepare`` streams sequences through :class:`SequenceWriter` and then calls
:func:`write_pairs` and :func:`write_info`. The gzip files (ISA-L, level ``GZIP_LEVEL``) carry no
timestamp, so the same content always gives the same bytes (and the same
:attr:`Dataset.fingerprint`).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

from isal import igzip

from embedhead import fileio
from embedhead.errors import InputError

SEQUENCES_FILE = "sequences.fa.gz"
PAIRS_FILE = "pairs.tsv.gz"
INFO_FILE = "dataset.json"
DATASET_FILES = (SEQUENCES_FILE, PAIRS_FILE, INFO_FILE)
"""Everything ``prepare`` writes into a dataset folder (``--force`` replaces nothing else)."""
SPLITS = ("train", "val", "test")
#: ISA-L (igzip) level 1: on prepare's 29 MB FASTA of 16,000 pairs 0.06 s for 9.5 MB, where
#: zlib level 5 took 1.1 s for 8.8 MB (level 9 is ~4x slower again for ~3 % less)
GZIP_LEVEL = 1

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
    if not seq.isascii() or seq.encode("ascii").translate(None, b"ACGTN"):
        bad = set(seq) - set("ACGTN")
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
_pair_values = operator.attrgetter(*PAIR_COLUMNS)  # record -> tuple of its column values


def _optional_int(raw: str) -> int | None:
    return int(raw) if raw else None


def _float_or_nan(raw: str) -> float:
    return float(raw) if raw else math.nan


#: Per pairs-table column, the parser of its text (None: the text itself).
_PARSERS: tuple[Callable[[str], Any] | None, ...] = tuple(
    int
    if name in _INT_COLUMNS
    else _optional_int
    if name in _OPT_INT_COLUMNS
    else _float_or_nan
    if name in _FLOAT_COLUMNS
    else None
    for name in PAIR_COLUMNS
)


def pair_of_sequences(
    pair_id: str,
    label: int,
    seq1: str,
    seq2: str,
    *,
    split: str,
    score: float = math.nan,
    identity: float = math.nan,
    db1: str = "",
    chrom1: str = "",
    start1: int | None = None,
    end1: int | None = None,
    strand1: str = "+",
    db2: str = "",
    chrom2: str = "",
    start2: int | None = None,
    end2: int | None = None,
    strand2: str = "+",
    block_id: str = "",
) -> PairRecord:
    """A record for two normalised sequence texts (synthetic data, tests, benchmarks).

    Ids and lengths come from the texts; ``norm_score = score / max(len1, len2)`` (NaN when
    the score is NaN, as for negatives).
    """
    return PairRecord(
        pair_id=pair_id,
        label=label,
        seq1=sequence_id(seq1),
        seq2=sequence_id(seq2),
        len1=len(seq1),
        len2=len(seq2),
        score=score,
        norm_score=score / max(len(seq1), len(seq2)),
        identity=identity,
        db1=db1,
        chrom1=chrom1,
        start1=start1,
        end1=end1,
        strand1=strand1,
        db2=db2,
        chrom2=chrom2,
        start2=start2,
        end2=end2,
        strand2=strand2,
        block_id=block_id,
        split=split,
    )


def format_pair_row(rec: PairRecord) -> list[str]:
    """Render a record as TSV fields (None and NaN become empty fields)."""
    out: list[str] = []
    for value in _pair_values(rec):
        if value.__class__ is str:
            out.append(value)
        elif value is None or (isinstance(value, float) and math.isnan(value)):
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
    try:
        values: list[Any] = [
            raw if kind is None else kind(raw) for kind, raw in zip(_PARSERS, row, strict=True)
        ]
    except ValueError as exc:
        raise InputError(f"bad value in pairs table: {exc}", path, line) from exc
    rec = PairRecord(*values)
    if rec.split not in SPLITS:
        raise InputError(f"unknown split {rec.split!r}", path, line)
    if rec.label not in (0, 1):
        raise InputError(f"label must be 0 or 1, not {rec.label}", path, line)
    return rec


def read_pairs(path: str | Path) -> list[PairRecord]:
    """Read a pairs table (``.tsv`` or ``.tsv.gz``) written by ``prepare``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
            fileio.allow_long_csv_fields()
            reader = csv.reader(fh, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise InputError("empty pairs table", path, 1)
            if tuple(header) != PAIR_COLUMNS:
                raise InputError(f"unexpected header {header!r}", path, 1)
            return [parse_pair_row(row, path, i) for i, row in enumerate(reader, start=2)]
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, csv.Error) as exc:
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
                        if not parts:
                            raise InputError(f"sequence {name!r} is empty", path, header_line)
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
    info = fileio.read_json(path / INFO_FILE)
    return Dataset(path=path, info=info, pairs=tuple(read_pairs(path / PAIRS_FILE)))


def gzip_member(raw: BinaryIO) -> igzip.GzipFile:
    """A gzip member written into ``raw`` the way every dataset file is: ISA-L at
    ``GZIP_LEVEL``, no timestamp or name (the same content gives the same bytes)."""
    return igzip.GzipFile("", "wb", GZIP_LEVEL, raw, mtime=0)


@contextlib.contextmanager
def _gzip_text(path: Path, encoding: str, newline: str) -> Iterator[io.TextIOWrapper]:
    """A text stream into a new gzip file without timestamp or name (reproducible bytes)."""
    with (
        open(path, "wb") as raw,
        gzip_member(raw) as gz,
        io.TextIOWrapper(gz, encoding=encoding, newline=newline) as text,
    ):
        yield text


class SequenceWriter:
    """Writes each new (already normalised) sequence once to a gzip FASTA; keeps only the ids.

    ``add(seq) -> sequence_id(seq)``; a sequence seen before is not written again.
    """

    def __init__(self, path: str | Path) -> None:
        self._files = contextlib.ExitStack()
        self._text = self._files.enter_context(_gzip_text(Path(path), "ascii", "\n"))
        self.ids: set[str] = set()

    def add(self, seq: str) -> str:
        """Write ``seq`` unless already written; return its id."""
        sid = sequence_id(seq)
        if sid not in self.ids:
            self.ids.add(sid)
            self._text.write(f">{sid}\n{seq}\n")
        return sid

    def close(self) -> None:
        """Finish the gzip stream and close the file."""
        self._files.close()

    def __enter__(self) -> SequenceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_pairs(path: str | Path, records: Iterable[PairRecord]) -> None:
    """Write a pairs table (gzip TSV, header = PAIR_COLUMNS) as ``read_pairs`` reads it."""
    with _gzip_text(Path(path), "utf-8", "") as text:
        writer = csv.writer(text, delimiter="\t", lineterminator="\n")
        writer.writerow(PAIR_COLUMNS)
        for rec in records:
            writer.writerow(format_pair_row(rec))


def write_info(path: str | Path, info: Mapping[str, Any]) -> None:
    """Write ``dataset.json``: indented JSON and a final newline."""
    fileio.atomic_write_text(path, json.dumps(info, indent=2) + "\n")


def write_dataset(
    out_dir: str | Path,
    sequences: Iterable[str],
    records: Iterable[PairRecord],
    info: Mapping[str, Any],
) -> Path:
    """Write a complete dataset folder in one go; returns its path.

    ``sequences``: normalised sequences (duplicates are written once, in first-seen order);
    ``records``: the pairs, in table order, whose ``seq1``/``seq2`` must be ids of those
    sequences; ``info``: the content of ``dataset.json``. The folder is assembled beside
    ``out_dir`` and renamed at the end, so an error leaves nothing behind; ``out_dir`` must not
    exist or be an empty folder. Raises ValueError for a sequence that is not normalised or a
    record naming an unknown sequence id, FileExistsError for a non-empty ``out_dir``.
    """
    with fileio.atomic_dir(out_dir) as tmp:
        with SequenceWriter(tmp / SEQUENCES_FILE) as writer:
            for seq in sequences:
                if normalise_sequence(seq) != seq:
                    raise ValueError(f"sequence is not normalised: {seq[:40]!r}")
                writer.add(seq)
        records = list(records)
        for rec in records:
            for sid in (rec.seq1, rec.seq2):
                if sid not in writer.ids:
                    raise ValueError(f"pair {rec.pair_id!r} names unknown sequence id {sid!r}")
        write_pairs(tmp / PAIRS_FILE, records)
        write_info(tmp / INFO_FILE, info)
    return Path(out_dir)


def source_records(source: Path) -> Iterator[tuple[str, str]]:
    """(id, normalised sequence) from a dataset folder or a FASTA file."""
    if source.is_dir():
        fasta = source / SEQUENCES_FILE
        if not fasta.is_file():
            raise InputError(f"dataset folder lacks {SEQUENCES_FILE}", source)
    elif source.is_file():
        fasta = source
    else:
        raise InputError("no such dataset folder or FASTA file", source)
    for index, (name, text) in enumerate(iter_fasta(fasta), start=1):
        try:
            seq = normalise_sequence(text)
        except ValueError as exc:
            raise InputError(f"sequence {name!r} (record {index}): {exc}", fasta) from exc
        if not seq:
            raise InputError(
                f"sequence {name!r} (record {index}) holds no nucleotides (only gaps)", fasta
            )
        yield name, seq
