"""The fast streaming path of ``prepare`` (issue 11): same lines, same rows, same windows, same
scores as the plain definitions, and --max-pairs scores only the windows it keeps."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
import math
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.alignments import openers
from embedhead.alignments.maf import parse_maf
from embedhead.alignments.openers import ByteCounter, iter_lines, open_text
from embedhead.alignments.records import AlignedRow
from embedhead.alignments.scoring import (
    HOXD55,
    HOXD70,
    ScoringScheme,
    identity,
    score_alignment,
    score_and_identity,
)
from embedhead.dataset import load_dataset
from embedhead.errors import InputError
from embedhead.prepare import build
from embedhead.prepare.build import PrepareConfig, prepare
from embedhead.prepare.chunking import (
    chunk_pair,
    cut_window,
    forward_interval,
    plan_windows,
    project_pair,
    slice_rows,
    window_bounds,
)

N_SCHEME = ScoringScheme(
    "with-n", HOXD70.matrix, 10, 3, n_row=(1, 2, 3, 4, 5), n_column=(6, 7, 8, 9)
)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 80).flatmap(
        lambda n: st.tuples(
            st.text(alphabet="ACGTacgtNRx-.", min_size=n, max_size=n),
            st.text(alphabet="ACGTacgtN-.", min_size=n, max_size=n),
        )
    ),
    st.sampled_from([HOXD70, HOXD55, N_SCHEME]),
)
def test_fused_score_and_identity_equal_the_definitions(pair, scheme):
    a, b = pair
    score, ident = score_and_identity(a, b, scheme)
    assert type(score) is int and score == score_alignment(a, b, scheme)
    expected = identity(a, b)
    assert ident == expected or (math.isnan(ident) and math.isnan(expected))


def _lines_of_open_text(path: Path) -> list[str]:
    with open_text(path) as fh:
        return [line[:-1] if line.endswith("\n") else line for line in fh]


@pytest.fixture(params=["isal", "zlib"])
def inflater(request, monkeypatch):
    """Run with ISA-L's inflate (the default when installed) and with zlib's."""
    if request.param == "zlib":
        monkeypatch.setattr(openers, "_inflate_module", zlib)
    return request.param


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 17])
@pytest.mark.parametrize("compress", [None, gzip.compress, bz2.compress])
def test_iter_lines_equals_open_text_lines(tmp_path, monkeypatch, inflater, block, compress):
    data = b"\xef\xbb\xbfa b\r\nc\rd\n\ne\xe9\r\r\n\rf\r\n\r"
    cases = []
    for i, raw in enumerate([data, data[3:], data[:-1], b"x", b"\r\n", b"no newline"]):
        path = tmp_path / f"f{i}"
        path.write_bytes(compress(raw) if compress else raw)
        cases.append((path, _lines_of_open_text(path)))
    monkeypatch.setattr(openers, "_BLOCK", block)  # line breaks fall across block ends
    monkeypatch.setattr(openers, "_RAW_BLOCK", block)
    for path, expected in cases:
        assert list(iter_lines(path)) == expected


def test_iter_lines_errors_name_the_file(tmp_path, inflater):
    empty = tmp_path / "empty.maf"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="file is empty"):
        next(iter_lines(empty))
    empty_gz = tmp_path / "empty.gz"
    empty_gz.write_bytes(gzip.compress(b""))
    with pytest.raises(InputError, match="nothing after gzip"):
        next(iter_lines(empty_gz))
    with pytest.raises(InputError, match="cannot open"):
        next(iter_lines(tmp_path / "missing.maf"))
    text = b"".join(b"line %d %s\n" % (i, b"ACGT" * (i % 50)) for i in range(20000))
    cut = tmp_path / "cut.gz"
    data = gzip.compress(text)
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt") as info:
        for _ in iter_lines(cut):
            pass
    assert info.value.path == str(cut) and info.value.line is not None and info.value.line > 1000


def test_byte_counter_counts_compressed_bytes_of_multi_member_gzip(tmp_path, inflater):
    path = tmp_path / "two.gz"
    members = gzip.compress(b"a\nb\n") + gzip.compress(b"") + gzip.compress(b"c\n")
    path.write_bytes(members + b"\0" * 10)  # zero padding after the last member is allowed
    counter = ByteCounter()
    assert list(iter_lines(path, counter)) == ["a", "b", "c"]
    assert counter.n == path.stat().st_size
    damaged = bytearray(gzip.compress(b"x\n" * 1000))
    damaged[-6] ^= 0xFF  # the CRC
    path.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match="truncated or corrupt"):
        list(iter_lines(path))
    path.write_bytes(members + b"garbage")
    with pytest.raises(InputError, match="truncated or corrupt"):
        list(iter_lines(path))


def test_keep_dbs_gives_the_same_blocks_with_fewer_rows(simulated_maf):
    full = list(parse_maf(simulated_maf))
    kept = list(parse_maf(simulated_maf, keep_dbs={"hg38", "susScr11"}))
    assert len(full) == len(kept) > 0
    for a, b in zip(full, kept, strict=True):
        assert (a.index, a.line, a.score) == (b.index, b.line, b.score)
        assert b.rows == tuple(r for r in a.rows if r.db in {"hg38", "susScr11"})


def test_keep_dbs_still_validates_rows_it_leaves_out(tmp_path):
    bad = tmp_path / "bad.maf"
    bad.write_text(
        "##maf version=1\na score=1\ns hg38.chr1 0 4 + 100 ACGT\ns other.chr1 0 5 + 100 ACGT\n"
    )
    with pytest.raises(InputError, match="size field 5") as info:
        list(parse_maf(bad, keep_dbs={"hg38"}))
    assert info.value.line == 4


def _random_row(rng: random.Random, text: str, db: str) -> AlignedRow:
    size = len(text) - text.count("-") - text.count(".")
    strand = rng.choice("+-")
    src_size = size + rng.randint(0, 1000)
    return AlignedRow(f"{db}.c", db, "c", rng.randint(0, src_size - size), size, strand,
                      src_size, text)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 300), st.sampled_from([0.0, 0.2, 0.6]))
def test_planned_windows_are_the_cut_windows(seed, chunk, gap_rate):
    rng = random.Random(seed)
    n = rng.randint(1, 900)
    kinds = [(rng.random() < gap_rate and rng.choice([1, 2, 3])) or 0 for _ in range(n)]
    t1 = "".join("-" if k in (1, 3) else rng.choice("ACGTn") for k in kinds)
    t2 = "".join(rng.choice("-.") if k in (2, 3) else rng.choice("ACGTa") for k in kinds)
    r1, r2 = _random_row(rng, t1, "ref"), _random_row(rng, t2, "qry")
    spans = plan_windows(r1, r2, chunk)
    p1, p2 = project_pair(r1, r2)
    pieces = list(slice_rows(p1, p2, window_bounds(len(p1.text), chunk)))
    assert len(spans) == len(pieces)
    for span, (w1, w2) in zip(spans, pieces, strict=True):
        assert cut_window(r1, r2, span) == (w1, w2)
        assert (span.start1, span.size1, span.start2, span.size2) == (
            w1.start, w1.size, w2.start, w2.size)  # fmt: skip
        assert forward_interval(r1, span.start1, span.size1) == (w1.forward_start, w1.forward_end)
    for window in chunk_pair(r1, r2, HOXD70, chunk).windows:
        assert window.score == score_alignment(window.row1.text, window.row2.text, HOXD70)


def test_max_pairs_scores_only_the_windows_it_keeps(simulated_maf, tmp_path, monkeypatch):
    scored = []
    real = build.score_window

    def counting(*args, **kwargs):
        scored.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "score_window", counting)
    config = PrepareConfig(reference="hg38", query="susScr11", max_pairs=5, negative_ratio=0)
    summary = prepare([simulated_maf], tmp_path / "ds", config)
    assert summary.n_positive == 5 < summary.n_positive_windows
    assert len(scored) == 5
    scored.clear()
    full = prepare([simulated_maf], tmp_path / "all", PrepareConfig(reference="hg38",
                   query="susScr11", negative_ratio=0))  # fmt: skip
    assert len(scored) == full.n_positive == summary.n_positive_windows


@pytest.mark.parametrize(("chunk", "deferred"), [(5000, True), (150, False)])
def test_max_pairs_cuts_a_short_block_only_if_kept_to_the_end(
    simulated_maf, tmp_path, monkeypatch, chunk, deferred
):
    """Blocks of at most 2 x --chunk-size columns (all of them at 5000: the simulated blocks
    reach 9000) are cut only for the windows the reservoir holds at the end; longer ones when
    it takes them. Either way the records are those of the run without --max-pairs."""
    cuts = []
    real = build.cut_window

    def counting(*args, **kwargs):
        cuts.append(1)
        return real(*args, **kwargs)

    base = {"reference": "hg38", "query": "susScr11", "negative_ratio": 0, "chunk_size": chunk}
    prepare([simulated_maf], tmp_path / "all", PrepareConfig(**base))
    full = {p.pair_id: p for p in load_dataset(tmp_path / "all").pairs}
    monkeypatch.setattr(build, "cut_window", counting)
    summary = prepare([simulated_maf], tmp_path / "ds", PrepareConfig(**base, max_pairs=6))
    assert summary.n_positive == 6 < summary.n_positive_windows
    assert (len(cuts) == 6) is deferred and len(cuts) >= 6
    for rec in load_dataset(tmp_path / "ds").pairs:
        assert dataclasses.replace(rec, split="x") == dataclasses.replace(
            full[rec.pair_id], split="x"
        )


def test_counting_file_reports_every_byte(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    counter = ByteCounter()
    with open_text(path, counter) as fh:
        fh.read()
    assert counter.n == path.stat().st_size
    assert isinstance(openers._open_file(str(path), None), io.BufferedReader)
