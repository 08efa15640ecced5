"""The dataset folder: write_dataset -> load_dataset round trip, and the readers' errors."""

from __future__ import annotations

import gzip
import math
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedhead.dataset import (
    INFO_FILE,
    PAIR_COLUMNS,
    PAIRS_FILE,
    SEQUENCES_FILE,
    SPLITS,
    PairRecord,
    format_pair_row,
    load_dataset,
    sequence_id,
    write_dataset,
)
from embedhead.errors import InputError

TEMPLATE = PairRecord(
    pair_id="p0",
    label=1,
    seq1="",
    seq2="",
    len1=20,
    len2=10,
    score=1.5,
    norm_score=0.075,
    identity=0.9,
    db1="hg38",
    chrom1="chr1",
    start1=10,
    end1=30,
    strand1="+",
    db2="galGal6",
    chrom2="chr2",
    start2=None,
    end2=None,
    strand2="-",
    block_id="b0",
    split="train",
)
dna = st.text(alphabet="ACGTN", min_size=1, max_size=60)
floats = st.floats(allow_nan=True, allow_infinity=False, width=64)
opt_int = st.none() | st.integers(min_value=0, max_value=10**10)
words = st.text(alphabet="abcXYZ019_./:-", max_size=12)


@st.composite
def datasets(draw: st.DrawFn) -> tuple[list[str], list[PairRecord]]:
    """Sequences (with duplicates) and pairs over them, every field drawn."""
    seqs = draw(st.lists(dna, min_size=1, max_size=8))
    records = []
    for i in range(draw(st.integers(min_value=0, max_value=8))):
        a, b = draw(st.sampled_from(seqs)), draw(st.sampled_from(seqs))
        records.append(
            PairRecord(
                pair_id=f"p{i}",
                label=draw(st.sampled_from([0, 1])),
                seq1=sequence_id(a),
                seq2=sequence_id(b),
                len1=len(a),
                len2=len(b),
                score=draw(floats),
                norm_score=draw(floats),
                identity=draw(floats),
                db1=draw(words),
                chrom1=draw(words),
                start1=draw(opt_int),
                end1=draw(opt_int),
                strand1=draw(st.sampled_from("+-")),
                db2=draw(words),
                chrom2=draw(words),
                start2=draw(opt_int),
                end2=draw(opt_int),
                strand2=draw(st.sampled_from("+-")),
                block_id=draw(words),
                split=draw(st.sampled_from(SPLITS)),
            )
        )
    return seqs, records


def _same(a: PairRecord, b: PairRecord) -> bool:
    """Field-wise equality where NaN equals NaN."""
    for name in PAIR_COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and math.isnan(x):
            if not (isinstance(y, float) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(), st.dictionaries(words, st.integers() | words, max_size=3))
def test_write_then_load_round_trip(data: tuple[list[str], list[PairRecord]], info: dict) -> None:
    seqs, records = data
    root = Path(tempfile.mkdtemp())
    try:
        out = write_dataset(root / "ds", seqs, records, info)
        ds = load_dataset(out)
        assert ds.info == info
        assert len(ds.pairs) == len(records)
        assert all(_same(a, b) for a, b in zip(ds.pairs, records, strict=True))
        unique = list(dict.fromkeys(seqs))  # written once each, in first-seen order
        assert list(ds.sequences()) == [(sequence_id(s), s) for s in unique]
    finally:
        shutil.rmtree(root)


def _write(tmp_path: Path, name: str = "ds", seed: int = 0) -> Path:
    seqs = ["ACGT" * 5, "GGGCCCAAAT"]
    ids = [sequence_id(s) for s in seqs]
    recs = [
        replace(
            TEMPLATE, pair_id=f"p{i}", label=i % 2, seq1=ids[0], seq2=ids[1], split=SPLITS[i % 3]
        )
        for i in range(4)
    ]
    return write_dataset(tmp_path / name, seqs, recs, {"seed": seed})


def test_write_is_deterministic_and_needs_a_free_folder(tmp_path: Path) -> None:
    a, b = _write(tmp_path, "a"), _write(tmp_path, "b")
    for name in (SEQUENCES_FILE, PAIRS_FILE, INFO_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert load_dataset(a).fingerprint == load_dataset(b).fingerprint
    (tmp_path / "empty").mkdir()
    _write(tmp_path, "empty")  # an empty folder is fine
    with pytest.raises(FileExistsError):
        _write(tmp_path, "a")
    assert load_dataset(a).info == {"seed": 0}


def test_write_refuses_unknown_ids_and_raw_sequences_leaving_nothing(tmp_path: Path) -> None:
    rec = replace(TEMPLATE, seq1=sequence_id("ACGT"), seq2="0" * 24)
    with pytest.raises(ValueError, match="unknown sequence id"):
        write_dataset(tmp_path / "x", ["ACGT"], [rec], {})
    with pytest.raises(ValueError, match="not normalised"):
        write_dataset(tmp_path / "y", ["acgt"], [], {})
    assert list(tmp_path.iterdir()) == []


def _rewrite_pairs(ds: Path, edit: object) -> None:
    """Apply ``edit(lines) -> lines`` to the text of pairs.tsv.gz."""
    path = ds / PAIRS_FILE
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(edit(lines)) + "\n").encode()))  # type: ignore[operator]


def _with_field(line: str, name: str, value: str) -> str:
    fields = line.split("\t")
    fields[PAIR_COLUMNS.index(name)] = value
    return "\t".join(fields)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("len1", "ten", "bad value in pairs table"),
        ("score", "high", "bad value in pairs table"),
        ("start1", "1.5", "bad value in pairs table"),
        ("split", "holdout", "unknown split 'holdout'"),
        ("label", "2", "label must be 0 or 1"),
    ],
)
def test_bad_field_names_file_and_line(tmp_path: Path, name: str, value: str, message: str) -> None:
    ds = _write(tmp_path)
    _rewrite_pairs(ds, lambda lines: [*lines[:2], _with_field(lines[2], name, value), *lines[3:]])
    with pytest.raises(InputError, match=message) as info:
        load_dataset(ds)
    assert f"{ds / PAIRS_FILE}:3:" in str(info.value)


def test_wrong_field_count_header_and_empty_table(tmp_path: Path) -> None:
    ds = _write(tmp_path)
    _rewrite_pairs(ds, lambda lines: [*lines[:4], lines[4] + "\textra"])
    with pytest.raises(InputError, match=f"expected {len(PAIR_COLUMNS)} fields") as info:
        load_dataset(ds)
    assert ":5:" in str(info.value)
    _rewrite_pairs(ds, lambda lines: ["\t".join(reversed(PAIR_COLUMNS)), *lines[1:]])
    with pytest.raises(InputError, match="unexpected header") as info:
        load_dataset(ds)
    assert ":1:" in str(info.value)
    (ds / PAIRS_FILE).write_bytes(gzip.compress(b""))
    with pytest.raises(InputError, match="empty pairs table"):
        load_dataset(ds)
    (ds / PAIRS_FILE).write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="cannot read pairs table"):
        load_dataset(ds)


def test_unknown_split_name_is_refused(tmp_path: Path) -> None:
    ds = load_dataset(_write(tmp_path))
    assert [p.split for p in ds.split("val")] == ["val"]
    with pytest.raises(InputError, match="unknown split 'dev'"):
        ds.split("dev")


@pytest.mark.parametrize("missing", [SEQUENCES_FILE, PAIRS_FILE, INFO_FILE])
def test_missing_file_is_named(tmp_path: Path, missing: str) -> None:
    ds = _write(tmp_path)
    (ds / missing).unlink()
    with pytest.raises(InputError, match=f"lacks {missing}"):
        load_dataset(ds)


def test_not_a_folder_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a dataset folder"):
        load_dataset(tmp_path / "nope")
    ds = _write(tmp_path)
    (ds / INFO_FILE).write_text("{\n  oops\n}")
    with pytest.raises(InputError, match="invalid JSON") as info:
        load_dataset(ds)
    assert f"{ds / INFO_FILE}:2:" in str(info.value)


def test_bad_fasta_names_file_and_line(tmp_path: Path) -> None:
    ds = load_dataset(_write(tmp_path))
    fasta = ds.path / SEQUENCES_FILE
    fasta.write_bytes(gzip.compress(b"ACGT\n>x\nAC\n"))
    with pytest.raises(InputError, match="before the first '>'") as info:
        list(ds.sequences())
    assert f"{fasta}:1:" in str(info.value)
    fasta.write_bytes(gzip.compress(b">x\nAC\n>\nAC\n"))
    with pytest.raises(InputError, match="header without a name") as info:
        list(ds.sequences())
    assert f"{fasta}:3:" in str(info.value)
    fasta.write_bytes(gzip.compress(b">x\nAC\n>y\n"))
    with pytest.raises(InputError, match="'y' is empty"):
        list(ds.sequences())


def test_format_pair_row_matches_columns() -> None:
    rec = replace(TEMPLATE, score=math.nan, start1=None, end1=None)
    row = format_pair_row(rec)
    assert len(row) == len(PAIR_COLUMNS)
    assert row[PAIR_COLUMNS.index("score")] == "" and row[PAIR_COLUMNS.index("start1")] == ""
    assert row[PAIR_COLUMNS.index("norm_score")] == "0.075"


def test_empty_fasta_record_before_another_is_refused(tmp_path: Path) -> None:
    """Only a trailing empty record used to be refused; an inner one read as ''."""
    ds = load_dataset(_write(tmp_path))
    fasta = ds.path / SEQUENCES_FILE
    fasta.write_bytes(gzip.compress(b">x\n>y\nAC\n"))
    with pytest.raises(InputError, match="'x' is empty") as info:
        list(ds.sequences())
    assert f"{fasta}:1:" in str(info.value)


def test_undecodable_pairs_table_is_an_input_error(tmp_path: Path) -> None:
    ds = _write(tmp_path)
    (ds / PAIRS_FILE).write_bytes(gzip.compress(b"\xff\xfe\x00bad\tx\n"))
    with pytest.raises(InputError, match="cannot read pairs table"):
        load_dataset(ds)
