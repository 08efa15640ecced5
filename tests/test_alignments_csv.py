"""Thesis CSV import, plus format detection and the read_alignments dispatcher."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest

from embedhead.alignments.csvpairs import parse_thesis_csv
from embedhead.alignments.detect import detect_format
from embedhead.alignments.reader import read_alignments
from embedhead.errors import ConfigError, InputError

CSV = """\
id,score,seq1,seq2
p1,12.5,ACGTac,ACG
"p2",,AC-T,ACGT

p3,-3,NNNN,ACGA
"""


def write(tmp_path: Path, text: str, name: str = "pairs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_rows_become_two_row_blocks(tmp_path: Path) -> None:
    blocks = list(parse_thesis_csv(write(tmp_path, CSV)))
    assert [(b.index, b.line, b.score) for b in blocks] == [
        (0, 2, 12.5),
        (1, 3, None),
        (2, 5, -3.0),
    ]
    first = blocks[0]
    s1, s2 = first.rows
    assert (s1.db, s1.chrom, s1.src, s1.start, s1.size, s1.strand) == (
        "seq1",
        "p1",
        "seq1.p1",
        0,
        6,
        "+",
    )
    assert (s2.db, s2.chrom, s2.size, s2.src_size) == ("seq2", "p1", 3, None)
    # unequal unaligned sequences are padded with trailing gaps to keep equal row lengths
    assert (s1.text, s2.text) == ("ACGTac", "ACG---")
    assert blocks[1].rows[0].size == 3 and blocks[1].rows[0].text == "AC-T"


def test_csv_without_header(tmp_path: Path) -> None:
    path = write(tmp_path, "a,1,AC,AC\nb,2,GG,G\n")
    assert detect_format(path) == "csv"
    assert [b.rows[0].chrom for b in parse_thesis_csv(path)] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("id,score,seq1,seq2\np1,1,AC\n", 2, "3 fields, expected 4"),
        ("id,score,seq1,seq2\np1,x,AC,AC\n", 2, "score is not a number"),
        ("id,score,seq1,seq2\np1,1,AC,\n", 2, "seq2 is empty"),
        ("id,score,seq1,seq2\np1,1,A1C,AC\n", 2, "seq1 holds characters"),
        ("id,score,seq1,seq2\np0,1,A,A\n,1,AC,AC\n", 3, "empty id"),
    ],
)
def test_csv_errors(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        list(parse_thesis_csv(path))
    assert (info.value.path, info.value.line) == (str(path), line)


# ---- detection and dispatch -----------------------------------------------------------------

MAF = "##maf version=1\na score=3\ns a.b 0 2 + 2 AC\ns c.d 0 2 + 2 AG\n"
AXT = "# lastz\n0 chr1 1 2 chr2 1 2 + 3\nAC\nAG\n"


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (MAF, "maf"),
        ("track name=x\n\na\ns a 0 1 + 1 A\n", "maf"),
        ("a score=1\ns a 0 1 + 1 A\n", "maf"),
        ("##maf\n", "maf"),
        (AXT, "axt"),
        (CSV, "csv"),
        ("ID , Score , Seq1 , Seq2\n", "csv"),
    ],
)
def test_detect_by_content_not_suffix(tmp_path: Path, text: str, fmt: str) -> None:
    for name, data in (
        ("x.txt", text.encode()),
        ("y.axt", gzip.compress(text.encode())),
        ("z.maf", bz2.compress(text.encode())),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        assert detect_format(path) == fmt


@pytest.mark.parametrize(
    ("text", "line"),
    [(">chr1\nACGT\n", 1), ("# comment\n\nchain 1 chr1 10 + 0 5\n", 3)],
)
def test_detect_unknown(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, text, "mystery")
    with pytest.raises(InputError, match="unrecognised alignment format") as info:
        detect_format(path)
    assert (info.value.path, info.value.line) == (str(path), line)


def test_detect_only_comments_and_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no alignment content"):
        detect_format(write(tmp_path, "# nothing\n\n"))
    with pytest.raises(InputError, match="empty"):
        detect_format(write(tmp_path, "", "empty"))


@pytest.mark.parametrize(("text", "fmt"), [(MAF, "maf"), (AXT, "axt"), (CSV, "csv")])
def test_read_alignments_dispatch(tmp_path: Path, text: str, fmt: str) -> None:
    path = write(tmp_path, text, "input.dat")
    auto = list(read_alignments(path))
    forced = list(read_alignments(path, fmt=fmt.upper()))
    assert auto == forced and auto
    assert all(len(b.rows) == 2 for b in auto)


def test_read_alignments_axt_options(tmp_path: Path) -> None:
    path = write(tmp_path, AXT, "input.dat")
    (block,) = read_alignments(path, chrom_sizes={"chr2": 10}, target_db="hg", query_db="mm")
    assert [r.src for r in block.rows] == ["hg.chr1", "mm.chr2"]
    assert block.rows[1].src_size == 10


def test_read_alignments_bad_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown alignment format"):
        read_alignments(write(tmp_path, MAF), fmt="bed")
    with pytest.raises(InputError):
        list(read_alignments(write(tmp_path, MAF, "m.maf"), fmt="axt"))


def test_csv_infinite_score_is_refused_and_nan_is_no_score(tmp_path: Path) -> None:
    path = write(tmp_path, "id,score,seq1,seq2\np1,nan,AC,AG\np2,inf,AC,AG\n")
    blocks = parse_thesis_csv(path)
    assert next(blocks).score is None
    with pytest.raises(InputError, match="not finite") as info:
        next(blocks)
    assert (info.value.path, info.value.line) == (str(path), 3)


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, bz2.compress])
def test_utf8_byte_order_mark_is_ignored(tmp_path: Path, compress: object) -> None:
    """Spreadsheets export CSV with a BOM: it used to hide the header (format not detected)."""
    assert callable(compress)
    path = tmp_path / "bom.csv"
    path.write_bytes(compress(b"\xef\xbb\xbfid,score,seq1,seq2\np1,2,ACGT,AGGT\n"))
    assert detect_format(path) == "csv"
    (block,) = parse_thesis_csv(path)
    assert block.rows[0].chrom == "p1" and block.score == 2.0
    maf = tmp_path / "bom.maf"
    maf.write_bytes(compress(b"\xef\xbb\xbf" + MAF.encode()))
    assert detect_format(maf) == "maf"
    assert [b.score for b in read_alignments(maf)] == [3.0]


@pytest.mark.parametrize(
    "text",
    ['"p1","2","ACGT","AGGT"\n', "p1,2,AC-GT,ACGGT\n", "p1,,acgt,AGGT\n"],
)
def test_detect_headerless_csv_quoted_or_gapped(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert detect_format(path) == "csv"
    (block,) = parse_thesis_csv(path)
    assert block.rows[0].chrom == "p1"
