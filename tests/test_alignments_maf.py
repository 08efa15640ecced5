"""MAF parser: accepted variants, validation errors with their line, and a MAF round trip."""

from __future__ import annotations

import bz2
import gzip
import random
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedhead.alignments.maf import parse_maf, split_src, ungapped_length
from embedhead.alignments.openers import open_text, sniff_compression
from embedhead.alignments.records import AlignedRow
from embedhead.errors import InputError

GOOD = """\
track name=test visibility=pack
##maf version=1 scoring=test
# a comment
a score=-12.5 pass=2
s hg38.chr1      10 5 + 100 AC-GTa
s galGal6.chrZ.1  3 3 - 50  A--Gn.
i galGal6.chrZ.1 N 0 C 0
q galGal6.chrZ.1        99--99
e mm10.chr2 5 7 + 90 I

a
s baboon 0 3 + 3 A.CG
\t \t
##maf version=1
a score=7
s x.y 1 2 + 3 AC
#eof
"""


def write(tmp_path: Path, text: str, name: str = "in.maf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_file(tmp_path: Path) -> None:
    blocks = list(parse_maf(write(tmp_path, GOOD)))
    assert [b.index for b in blocks] == [0, 1, 2]
    assert [b.line for b in blocks] == [4, 11, 15]
    assert [b.score for b in blocks] == [-12.5, None, 7.0]
    first = blocks[0]
    assert first.n_columns == 6
    assert first.rows[0] == AlignedRow("hg38.chr1", "hg38", "chr1", 10, 5, "+", 100, "AC-GTa", 5)
    minus = first.rows[1]
    assert (minus.db, minus.chrom, minus.strand, minus.line) == ("galGal6", "chrZ.1", "-", 6)
    assert (minus.forward_start, minus.forward_end) == (50 - 6, 50 - 3)
    assert blocks[1].rows[0].db == "baboon" and blocks[1].rows[0].chrom == ""
    assert blocks[1].block_id == "in.maf:1"


def test_split_src_first_dot() -> None:
    assert split_src("hg38.chr1") == ("hg38", "chr1")
    assert split_src("tupBel1.scaffold_114895.1-498454") == ("tupBel1", "scaffold_114895.1-498454")
    assert split_src("mm3") == ("mm3", "")
    assert ungapped_length("A.C-g") == 3


def test_streaming_is_lazy(tmp_path: Path) -> None:
    # The error sits in the 2nd block: the 1st must come out before it is read.
    text = "a\ns a.b 0 2 + 5 AC\n\na\ns a.b 0 9 + 5 AC\n"
    blocks = parse_maf(write(tmp_path, text))
    assert next(blocks).rows[0].text == "AC"
    with pytest.raises(InputError):
        next(blocks)


def test_header_only_file_has_no_blocks(tmp_path: Path) -> None:
    assert list(parse_maf(write(tmp_path, "##maf version=1\n"))) == []


def test_block_without_rows_skipped_and_no_trailing_blank(tmp_path: Path) -> None:
    blocks = list(parse_maf(write(tmp_path, "a score=1\n\na score=2\ns a.b 0 1 + 1 A")))
    assert len(blocks) == 1 and blocks[0].score == 2.0 and blocks[0].index == 0


def test_crlf_and_gzip(tmp_path: Path) -> None:
    plain = list(parse_maf(write(tmp_path, GOOD)))
    crlf = tmp_path / "crlf.maf"
    crlf.write_bytes(GOOD.replace("\n", "\r\n").encode())
    gz = tmp_path / "noext"
    gz.write_bytes(gzip.compress(GOOD.encode()))
    for other in (crlf, gz):
        got = list(parse_maf(other))
        assert [b.rows for b in got] == [b.rows for b in plain]


BAD_CASES = [
    ("a\ns a.b 0 x + 5 ACGTA\n", 2, "size is not an integer"),
    ("a\ns a.b 1.5 5 + 9 ACGTA\n", 2, "start is not an integer"),
    ("a\ns a.b 0 5 + 5\n", 2, "6 fields, expected 7"),
    ("a\ns a.b 0 5 + 5 ACG TA\n", 2, "8 fields"),
    ("a\ns a.b 0 5 * 5 ACGTA\n", 2, "strand"),
    ("a\ns a.b 0 4 + 5 ACGTA\n", 2, "size field 4 disagrees with the 5 letters"),
    ("a\ns a.b 2 5 + 6 ACGTA\n", 2, "exceeds srcSize"),
    ("a\ns a.b -1 5 + 6 ACGTA\n", 2, "negative"),
    ("a\ns a.b 0 5 + 5 ACGTA\ns c.d 0 4 + 5 ACGT\n", 3, "row of 4 columns in a block of 5"),
    ("##maf\n\ns a.b 0 5 + 5 ACGTA\n", 3, "outside an alignment block"),
    ("a score=abc\n", 1, "score is not a number"),
    ("a score\n", 1, "key=value"),
    ("a\ns a.b 0 1 + 1 A\nx what\n", 3, "unexpected MAF line"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD_CASES)
def test_malformed_lines(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        list(parse_maf(path))
    assert info.value.line == line
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_error_line_counts_comments_and_blanks(tmp_path: Path) -> None:
    text = (
        "##maf version=1\n# c\n\n\na\ns a.b 0 1 + 1 A\n\n# x\n"
        "a\ns a.b 0 1 + 1 A\ns c.d 0 1 + 1 AC\n"
    )
    with pytest.raises(InputError) as info:
        list(parse_maf(write(tmp_path, text)))
    assert info.value.line == 11


# ---- round trip ---------------------------------------------------------------------------

NAMES = st.sampled_from(["hg38.chr1", "galGal6.chrZ", "mm9.chrUn.random.1", "baboon", "x.y.z"])
ROW_TEXT = "ACGTacgtNn-."


@st.composite
def blocks(draw: st.DrawFn) -> tuple[float | None, list[tuple[str, int, str, int, str]]]:
    n_cols = draw(st.integers(min_value=1, max_value=80))
    n_rows = draw(st.integers(min_value=1, max_value=4))
    rows = []
    for _ in range(n_rows):
        text = draw(st.text(alphabet=ROW_TEXT, min_size=n_cols, max_size=n_cols))
        start = draw(st.integers(min_value=0, max_value=10**9))
        extra = draw(st.integers(min_value=0, max_value=10**6))
        src_size = start + ungapped_length(text) + extra
        rows.append((draw(NAMES), start, draw(st.sampled_from("+-")), src_size, text))
    score = draw(st.one_of(st.none(), st.integers(-(10**6), 10**6).map(float)))
    return score, rows


SPACES = st.sampled_from([" ", "  ", "\t", " \t "])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(blocks(), min_size=0, max_size=5), SPACES, st.booleans())
def test_maf_round_trip(tmp_path: Path, content: list, sep: str, header: bool) -> None:
    lines = ["##maf version=1 scoring=test"] if header else []
    for score, rows in content:
        lines.append("a" if score is None else f"a score={score:f}")
        for src, start, strand, src_size, text in rows:
            size = ungapped_length(text)
            lines.append(sep.join(["s", src, str(start), str(size), strand, str(src_size), text]))
        lines.append(sep if sep.strip() == "" else "")
    path = write(tmp_path, "\n".join(lines) + "\n", "rt.maf")
    parsed = list(parse_maf(path))
    assert len(parsed) == len(content)
    for block, (score, rows) in zip(parsed, content, strict=True):
        assert block.score == score
        got = [(r.src, r.start, r.strand, r.src_size, r.text) for r in block.rows]
        assert got == rows
        for row in block.rows:
            assert row.db + ("." + row.chrom if row.chrom else "") == row.src
            assert row.size == ungapped_length(row.text)
            assert path.read_text().splitlines()[row.line - 1].split()[1] == row.src


# ---- opening files: compression by magic bytes, empty/missing/truncated -----------------------


def test_open_text_by_magic_bytes(tmp_path: Path) -> None:
    data = GOOD.encode() + b"# latin-1 byte \xe9\n"
    gz = tmp_path / "a.maf"  # gzip content behind a plain suffix
    gz.write_bytes(gzip.compress(data))
    bz = tmp_path / "b.gz"  # bzip2 content behind a gzip suffix
    bz.write_bytes(bz2.compress(data))
    plain = tmp_path / "c.bz2"
    plain.write_bytes(data)
    assert sniff_compression(gz) == "gzip"
    assert sniff_compression(bz) == "bz2"
    assert sniff_compression(plain) == "plain"
    texts = []
    for path in (gz, bz, plain):
        with open_text(path) as fh:
            texts.append(fh.read())
    assert texts[0] == texts[1] == texts[2] == data.decode("latin-1")


def test_open_text_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.maf"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="file is empty") as info:
        open_text(empty)
    assert info.value.path == str(empty)
    with pytest.raises(InputError, match="file is empty"):
        list(parse_maf(empty))
    empty_gz = tmp_path / "empty.gz"
    empty_gz.write_bytes(gzip.compress(b""))
    with pytest.raises(InputError, match="nothing after gzip"):
        open_text(empty_gz)
    with pytest.raises(InputError, match="cannot open"):
        open_text(tmp_path / "missing.maf")
    with pytest.raises(InputError, match="directory"):
        open_text(tmp_path)


def test_truncated_gzip_names_file_and_line(tmp_path: Path) -> None:
    rng = random.Random(1)
    lines = ["##maf version=1"]
    for i in range(3000):
        text = "".join(rng.choice("ACGT") for _ in range(60))
        lines += [f"a score={i}", f"s a.b {i} 60 + 1000000 {text}", ""]
    data = gzip.compress("\n".join(lines).encode())
    cut = tmp_path / "cut.maf.gz"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(InputError, match="gzip data is truncated") as info:
        for _ in parse_maf(cut):
            pass
    assert info.value.path == str(cut)
    assert info.value.line is not None and 1000 < info.value.line < len(lines)


def test_memory_does_not_grow_with_blocks(tmp_path: Path) -> None:
    def peak(n_blocks: int) -> int:
        path = tmp_path / f"{n_blocks}.maf"
        block = (
            "a score=1\ns a.b 0 200 + 1000 " + "ACGT" * 50 + "\ns c.d 0 200 - 900 " + ("acgt" * 50)
        )
        path.write_text("\n\n".join([block] * n_blocks) + "\n")
        tracemalloc.start()
        count = sum(1 for _ in parse_maf(path))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == n_blocks
        return top

    small, large = peak(100), peak(3000)
    assert large < 2 * small + 200_000
