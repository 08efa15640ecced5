"""The parsers and the scorer against real public alignment files (../shared/realdata).

Counts and scores below come from the files themselves (block scores, header matrices) or from
the data's PROVENANCE.md, never from a previous run of this code.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from embedhead.alignments.axt import header_scoring, parse_axt
from embedhead.alignments.detect import detect_format
from embedhead.alignments.maf import parse_maf, ungapped_length
from embedhead.alignments.reader import read_alignments
from embedhead.alignments.scoring import HOXD70, score_alignment
from embedhead.errors import InputError


@pytest.mark.parametrize(
    ("name", "n_blocks"),
    [("kent/hg17.canFam1.testDog.net.axt", 50), ("kent/hg16.mm3.chrM.chainToAxt.axt", 12)],
)
def test_net_axt_scores_recompute_with_hoxd70(realdata: Path, name: str, n_blocks: int) -> None:
    blocks = list(parse_axt(realdata / name))
    assert len(blocks) == n_blocks
    assert any(b.rows[1].strand == "-" for b in blocks)
    for block in blocks:
        target, query = block.rows
        assert block.score is not None
        assert score_alignment(target.text, query.text, HOXD70) == block.score, block.line


@pytest.mark.parametrize(
    ("name", "score"),
    [
        ("kent/hg19.susScr3.chrM.lastz.axt.gz", 660086),
        ("kent/hg19.susScr3.chrM.blastz.axt.gz", 659907),
    ],
)
def test_lastz_blastz_header_matrix_recomputes_raw_score(
    realdata: Path, name: str, score: int
) -> None:
    scheme = header_scoring(realdata / name)
    assert scheme is not None
    assert scheme.matrix[0] == (79, -84, -55, -128)
    assert scheme.matrix[1] == (-84, 100, -174, -55)
    assert (scheme.gap_open, scheme.gap_extend) == (400, 30)
    (block,) = parse_axt(realdata / name)
    assert block.score == score
    assert block.n_columns > 15000
    assert score_alignment(block.rows[0].text, block.rows[1].text, scheme) == score
    # the UCSC default scheme gives another value: the header's scheme really is needed
    assert score_alignment(block.rows[0].text, block.rows[1].text, HOXD70) != score


def read_fasta(path: Path) -> str:
    with open(path) as fh:
        return "".join(line.strip() for line in fh if not line.startswith(">"))


def test_phast_hg17_rows_match_genome(realdata: Path) -> None:
    genome = read_fasta(realdata / "phast/chr22.14500000-15500000.fa")
    assert len(genome) == 1_000_001
    blocks = list(parse_maf(realdata / "phast/chr22.14500000-15500000.maf"))
    assert len(blocks) == 1415
    assert sum(len(b.rows) for b in blocks) == 4202
    checked = 0
    for block in blocks:
        for row in block.rows:
            if row.db != "hg17":
                continue
            assert row.strand == "+" and row.src_size == 1_000_001
            letters = row.text.replace("-", "").upper()
            assert letters == genome[row.forward_start : row.forward_end], row.line
            checked += 1
    assert checked == 1415


def test_axt_to_maf_minus_strand_conversion(realdata: Path) -> None:
    maf = realdata / "kent/axtToMaf.zeroScore.expected.maf"
    (expected,) = parse_maf(maf)
    sizes = {row.db: row.src_size for row in expected.rows if row.src_size is not None}
    (block,) = parse_axt(realdata / "kent/axtToMaf.zeroScore.axt", sizes)
    assert block.score == expected.score == 0.0
    for got, want in zip(block.rows, expected.rows, strict=True):
        assert got.chrom == want.db  # kent's expected MAF names rows by chrom only
        assert (got.start, got.size, got.strand, got.src_size, got.text) == (
            want.start,
            want.size,
            want.strand,
            want.src_size,
            want.text,
        )
        assert (got.forward_start, got.forward_end) == (want.forward_start, want.forward_end)
    query = block.rows[1]
    assert query.strand == "-"
    assert query.forward_start == 63790860 - (54649197 + 27)


def test_axt_minus_rows_inside_their_chains(realdata: Path) -> None:
    """AXT minus-strand query rows lie inside the chain they came from (chain gives sizes)."""
    chains = []
    sizes: dict[str, int] = {}
    for line in (realdata / "kent/hg16.mm3.chrM.chain").read_text().splitlines():
        f = line.split()
        if f and f[0] == "chain":
            sizes[f"hg16.{f[2]}"] = int(f[3])
            sizes[f"mm3.{f[7]}"] = int(f[8])
            chains.append((f[7], f[9], int(f[10]), int(f[11])))
    blocks = list(
        read_alignments(
            realdata / "kent/hg16.mm3.chrM.chainToAxt.axt",
            chrom_sizes=sizes,
            target_db="hg16",
            query_db="mm3",
        )
    )
    minus = [b.rows[1] for b in blocks if b.rows[1].strand == "-"]
    assert len(minus) == 7
    for row in minus:
        assert row.src_size == sizes[row.src]
        assert any(
            c == row.chrom and s == "-" and lo <= row.start and row.start + row.size <= hi
            for c, s, lo, hi in chains
        )
        assert row.forward_start is not None and row.forward_end is not None
        assert 0 <= row.forward_start < row.forward_end <= row.src_size


def test_maf_minus_rows_forward_coordinates(realdata: Path) -> None:
    path = realdata / "kent/genePredToMafFrames.NM_016427.hg17.canHg10.minus.maf"
    blocks = list(parse_maf(path))
    assert len(blocks) == 15
    for block in blocks:
        dog = block.rows[1]
        assert dog.strand == "-" and dog.src_size is not None
        assert dog.forward_start == dog.src_size - (dog.start + dog.size)
        assert dog.forward_end == dog.src_size - dog.start


def test_length_coords_mismatch_rejected_with_line(realdata: Path) -> None:
    path = realdata / "biopython/length_coords_mismatch.maf"
    with pytest.raises(InputError, match="size field 319") as info:
        list(parse_maf(path))
    assert (info.value.path, info.value.line) == (str(path), 9)


def test_compressed_reads_identically(realdata: Path, tmp_path: Path) -> None:
    plain = list(parse_maf(realdata / "bx-python/mm8_chr7_tiny.maf"))
    packed = list(parse_maf(realdata / "bx-python/mm8_chr7_tiny.maf.bz2"))
    assert len(plain) == 8
    assert [b.rows for b in plain] == [b.rows for b in packed]
    assert [b.score for b in plain] == [b.score for b in packed]
    gz = tmp_path / "tiny.dat"
    gz.write_bytes(gzip.compress((realdata / "bx-python/mm8_chr7_tiny.maf").read_bytes()))
    assert [b.rows for b in parse_maf(gz)] == [b.rows for b in plain]


def test_biopython_ucsc_test(realdata: Path) -> None:
    blocks = list(parse_maf(realdata / "biopython/ucsc_test.maf"))
    assert len(blocks) == 3
    assert blocks[0].score == 23262.0
    assert [r.db for r in blocks[0].rows] == ["hg16", "panTro1", "baboon", "mm4", "rn3"]
    assert blocks[0].rows[2].chrom == ""


def test_humor_no_score_and_dots(realdata: Path) -> None:
    blocks = list(parse_maf(realdata / "biopython/humor.maf"))
    assert len(blocks) == 2
    assert all(b.score is None for b in blocks)
    assert any("." in r.text for b in blocks for r in b.rows)
    assert blocks[0].n_columns > 5000


def test_txcdspredict_two_headers_and_no_dot_src(realdata: Path) -> None:
    blocks = list(parse_maf(realdata / "kent/txCdsPredict.in.maf"))
    assert len(blocks) == 6
    assert max(b.n_columns for b in blocks) == 6049
    srcs = {r.src for b in blocks for r in b.rows}
    assert "mm8" in srcs
    assert all(r.chrom == "" for b in blocks for r in b.rows if "." not in r.src)


@pytest.mark.parametrize(
    ("name", "n_blocks"),
    [
        ("biopython/ucsc_mm9_chr10_big.maf.gz", 983),
        ("biopython/ucsc_mm9_chr10.maf", 48),
        ("biopython/panTro5.maf", 1),
        ("kent/mafIndex.hg16.galGal2.mm3.rn3.maf", 22),
        ("kent/genePredToMafFrames.NM_020185.hg17.canHg10.maf", 91),
        ("kent/mafRanges.hg17.chrM.multiz.maf", 19),
        ("bx-python/mm10_chr12_lessspe.maf", 5),
        ("bx-python/test_hg18.maf", 3),
        ("bx-python/empty.maf", 0),
        ("kent/axtBestNear.chr22.axt.gz", 1794),
    ],
)
def test_block_counts(realdata: Path, name: str, n_blocks: int) -> None:
    blocks = list(read_alignments(realdata / name))
    assert len(blocks) == n_blocks
    for block in blocks:
        assert len({len(r.text) for r in block.rows}) == 1
        assert all(r.size == ungapped_length(r.text) for r in block.rows)


def test_detect_real_files(realdata: Path) -> None:
    assert detect_format(realdata / "biopython/ucsc_mm9_chr10_big.maf.gz") == "maf"
    assert detect_format(realdata / "bx-python/mm8_chr7_tiny.maf.bz2") == "maf"
    assert detect_format(realdata / "biopython/ucsc_test.maf") == "maf"
    assert detect_format(realdata / "kent/hg19.susScr3.chrM.lastz.axt.gz") == "axt"
    assert detect_format(realdata / "kent/hg17.canFam1.testDog.net.axt") == "axt"
    with pytest.raises(InputError, match="unrecognised"):
        detect_format(realdata / "kent/hg17.canFam1.testDog.chain")


def test_truncated_real_gzip_and_bz2(realdata: Path, tmp_path: Path) -> None:
    # gzip decompresses progressively: the error names a line well inside the file; bzip2
    # works in 900 kB blocks, so a small file cut in half yields nothing before the error.
    for name, min_line in (
        ("biopython/ucsc_mm9_chr10_big.maf.gz", 1000),
        ("bx-python/mm8_chr7_tiny.maf.bz2", 1),
    ):
        data = (realdata / name).read_bytes()
        cut = tmp_path / ("cut-" + Path(name).name)
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError, match="truncated or corrupt") as info:
            list(parse_maf(cut))
        assert info.value.path == str(cut)
        assert info.value.line is not None and info.value.line >= min_line
