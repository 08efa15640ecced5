"""AXT parser: coordinates, databases, chromosome sizes, validation errors, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedhead.alignments.axt import header_scoring, parse_axt
from embedhead.alignments.maf import ungapped_length
from embedhead.errors import InputError

GOOD = """\
# lastz.v1 --format=axt O=400 E=30
#
# gap_open_penalty   = 400
# gap_extend_penalty = 30
#        A    C    G    T
#   A   91 -114  -31 -123
#   C -114  100 -125  -31
#   G  -31 -125  100 -114
#   T -123  -31 -114   91
0 chr1 11 15 chrZ 3 6 - 1234
AC-GTa
ACG--T

1 chr1 101 102 chr9 1 2 + -5
AC
Ac
"""


def write(tmp_path: Path, text: str, name: str = "in.axt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_file(tmp_path: Path) -> None:
    blocks = list(parse_axt(write(tmp_path, GOOD), target_db="hg38", query_db="galGal6"))
    assert [(b.index, b.line, b.score) for b in blocks] == [(0, 10, 1234.0), (1, 14, -5.0)]
    target, query = blocks[0].rows
    assert (target.src, target.db, target.chrom) == ("hg38.chr1", "hg38", "chr1")
    assert (target.start, target.size, target.strand, target.line) == (10, 5, "+", 11)
    assert (query.src, query.start, query.size, query.strand, query.line) == (
        "galGal6.chrZ",
        2,
        4,
        "-",
        12,
    )
    assert query.src_size is None and query.forward_start is None
    assert blocks[1].rows[1].text == "Ac"


def test_default_db_names_and_chrom_sizes(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    blocks = list(parse_axt(path, {"chrZ": 100, "target.chr1": 1000}))
    target, query = blocks[0].rows
    assert (target.db, query.db) == ("target", "query")
    assert target.src_size == 1000 and blocks[1].rows[1].src_size is None
    # minus strand: the 0-based start 2 (size 4) counts on the reverse complement
    assert (query.forward_start, query.forward_end) == (100 - 6, 100 - 2)


def test_chrom_size_too_small(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="exceeds the size 5") as info:
        list(parse_axt(write(tmp_path, GOOD), {"chrZ": 5}))
    assert info.value.line == 10


def test_header_scoring_lastz(tmp_path: Path) -> None:
    scheme = header_scoring(write(tmp_path, GOOD))
    assert scheme is not None
    assert scheme.matrix[0] == (91, -114, -31, -123)
    assert (scheme.gap_open, scheme.gap_extend) == (400, 30)


def test_header_scoring_blastz_and_none(tmp_path: Path) -> None:
    text = (
        "##aligner=blastz.v7 T=2 O=400 E=30\n"
        "##matrix=blastz 16 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n"
        "##gapPenalties=blastz O=300 E=20\n"
        "0 a 1 1 b 1 1 + 1\nA\nA\n"
    )
    scheme = header_scoring(write(tmp_path, text))
    assert scheme is not None
    assert scheme.matrix == ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16))
    assert (scheme.gap_open, scheme.gap_extend) == (300, 20)
    assert header_scoring(write(tmp_path, "0 a 1 1 b 1 1 + 1\nA\nA\n", "plain.axt")) is None


BAD_CASES = [
    ("0 chr1 1 2 chr2 1 2 + 5 extra\nAC\nAC\n", 1, "10 fields, expected 9"),
    ("0 chr1 1 x chr2 1 2 + 5\nAC\nAC\n", 1, "target end is not an integer"),
    ("0 chr1 1 2 chr2 1 2 + five\nAC\nAC\n", 1, "score is not a number"),
    ("0 chr1 1 2 chr2 1 2 . 5\nAC\nAC\n", 1, "strand"),
    ("0 chr1 1 2 chr2 1 2 + 5\nAC\nA\n", 3, "query text has 1 columns"),
    ("0 chr1 1 3 chr2 1 2 + 5\nAC\nAC\n", 2, "span 3 bases but its text has 2"),
    ("0 chr1 1 2 chr2 1 3 + 5\nAC\nAC\n", 3, "span 3 bases"),
    ("0 chr1 1 2 chr2 1 2 + 5\nAC\n", 3, "file ends before the query text"),
    ("0 chr1 1 2 chr2 1 2 + 5\n", 2, "file ends before the target text"),
    ("0 chr1 1 2 chr2 1 2 + 5\nAC\n\n", 3, "expected the query text"),
    ("0 chr1 1 2 chr2 1 2 + 5\nAC\nAC\nAC\nAC\n", 4, "1 fields, expected 9"),
    ("0 chr1 0 1 chr2 1 2 + 5\nAC\nAC\n", 1, "not 1-based"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD_CASES)
def test_malformed(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        list(parse_axt(path))
    assert (info.value.path, info.value.line) == (str(path), line)


# ---- round trip ---------------------------------------------------------------------------


@st.composite
def axt_blocks(draw: st.DrawFn) -> tuple[int, int, str, float, str, str]:
    n = draw(st.integers(min_value=1, max_value=60))
    # at least one letter per row: AXT rows always cover >= 1 base
    target = draw(st.text(alphabet="ACGTacgtN-", min_size=n, max_size=n).filter(ungapped_length))
    query = draw(st.text(alphabet="ACGTacgtN-", min_size=n, max_size=n).filter(ungapped_length))
    tstart = draw(st.integers(min_value=1, max_value=10**9))
    qstart = draw(st.integers(min_value=1, max_value=10**9))
    strand = draw(st.sampled_from("+-"))
    score = float(draw(st.integers(-(10**6), 10**6)))
    return tstart, qstart, strand, score, target, query


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(axt_blocks(), min_size=1, max_size=5), st.booleans())
def test_axt_round_trip(tmp_path: Path, content: list, trailing_blank: bool) -> None:
    parts = []
    for i, (tstart, qstart, strand, score, target, query) in enumerate(content):
        tend = tstart + ungapped_length(target) - 1
        qend = qstart + ungapped_length(query) - 1
        parts.append(
            f"{i} chrA {tstart} {tend} chrB {qstart} {qend} {strand} {score:.0f}\n"
            f"{target}\n{query}\n"
        )
    text = "\n".join(parts) + ("\n" if trailing_blank else "")
    parsed = list(parse_axt(write(tmp_path, text, "rt.axt"), target_db="t", query_db="q"))
    assert len(parsed) == len(content)
    for block, (tstart, qstart, strand, score, target, query) in zip(parsed, content, strict=True):
        t, q = block.rows
        assert (t.src, t.start, t.strand, t.text) == ("t.chrA", tstart - 1, "+", target)
        assert (q.src, q.start, q.strand, q.text) == ("q.chrB", qstart - 1, strand, query)
        assert block.score == score
        assert (t.size, q.size) == (ungapped_length(target), ungapped_length(query))


def test_chrom_sizes_missing_a_minus_strand_chrom(tmp_path: Path) -> None:
    """Given sizes that lack a '-' row's chromosome used to leave its coordinates silently empty."""
    with pytest.raises(InputError, match=r"'chrZ'.*not in the chromosome sizes") as info:
        list(parse_axt(write(tmp_path, GOOD), {"chr1": 1000, "chr9": 50}))
    assert info.value.line == 10


def test_bare_chrom_sizes_are_the_query_assembly_not_the_target(tmp_path: Path) -> None:
    """A query chrom.sizes whose chr1 is smaller than the target's chr1 used to fail the target."""
    blocks = list(parse_axt(write(tmp_path, GOOD), {"chr1": 50, "chrZ": 100}))
    target, query = blocks[0].rows
    assert target.src_size == 50 and target.forward_start == 10  # fits: taken
    assert (query.src_size, query.forward_start) == (100, 94)
    assert blocks[1].rows[0].src_size is None  # chr1:101-102 does not fit in 50: not its size
    blocks = list(parse_axt(write(tmp_path, GOOD), {"target.chr1": 500, "chrZ": 100}))
    assert blocks[1].rows[0].src_size == 500
    with pytest.raises(InputError, match="exceeds the size 50"):  # a db.chrom key is binding
        list(parse_axt(write(tmp_path, GOOD), {"target.chr1": 50, "chrZ": 100}))
