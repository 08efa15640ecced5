"""simulate: valid UCSC-style MAF, exact scores, realistic features, seeded."""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from collections import defaultdict

import pytest

from embedhead.alignments.reader import read_alignments
from embedhead.alignments.scoring import HOXD70, get_scheme, identity, score_alignment
from embedhead.errors import ConfigError, InputError
from embedhead.prepare.profile import profile_file, profile_pairs, profile_simulation, profile_table
from embedhead.prepare.simulate import (
    DEFAULT_SPECIES,
    SimulateConfig,
    write_maf,
)

_TRANSITIONS = {frozenset("AG"), frozenset("CT")}


@pytest.fixture(scope="module")
def blocks(simulated_maf):
    return list(read_alignments(simulated_maf))


def test_parses_and_scores_are_the_sum_of_pairwise_hoxd70_scores(blocks):
    assert len(blocks) == 60
    for b in blocks:
        ref = b.rows[0]
        assert ref.db == "hg38" and ref.strand == "+"
        expected = sum(score_alignment(ref.text, r.text, HOXD70) for r in b.rows[1:])
        assert b.score == expected


def test_realistic_features(blocks):
    rows = [r for b in blocks for r in b.rows]
    assert any(b.n_columns > 5000 for b in blocks)
    assert {r.strand for r in rows if r.db != "hg38"} == {"+", "-"}
    text = "".join(r.text for r in rows)

    def masked(db: str) -> float:
        letters = [c for r in rows if r.db == db for c in r.text if c != "-"]
        return sum(c.islower() for c in letters) / len(letters)

    assert 0.15 < masked("hg38") < 0.6  # soft-masked repeats in the reference
    assert masked("panTro6") > 0.15  # a close query shares the reference's repeats
    assert masked("galGal6") == masked("danRer10") == 0.0  # distant ones: unmasked, as real
    assert "N" in text and "-" in text
    gc = [
        sum(c in "GCgc" for c in b.rows[0].text) / b.rows[0].size
        for b in blocks
        if b.rows[0].size > 200
    ]
    assert statistics.pstdev(gc) > 0.03  # GC varies between blocks
    for r in rows:
        assert r.src_size is not None and r.forward_end is not None
        assert 0 <= r.forward_start < r.forward_end <= r.src_size


def test_divergence_increases_and_substitutions_favour_transitions(blocks, tmp_path):
    # per-block divergence spreads identities: the order of the species' means needs more
    # blocks than the shared fixture has
    many = tmp_path / "many.maf"
    write_maf(many, SimulateConfig(n_blocks=400, seed=3, mean_length=200, long_fraction=0))
    ident: dict[str, list[float]] = defaultdict(list)
    for b in read_alignments(many):
        for r in b.rows[1:]:
            ident[r.db].append(identity(b.rows[0].text, r.text))
    ts = tv = 0
    for b in blocks:
        ref = b.rows[0]
        for r in b.rows[1:]:
            if r.db == "susScr11":
                for a, c in zip(ref.text.upper(), r.text.upper(), strict=True):
                    if a != c and a in "ACGT" and c in "ACGT":
                        ts += frozenset((a, c)) in _TRANSITIONS
                        tv += frozenset((a, c)) not in _TRANSITIONS
    means = [statistics.mean(ident[db]) for db in DEFAULT_SPECIES if ident[db]]
    assert len(means) == len(DEFAULT_SPECIES)
    assert means == sorted(means, reverse=True)
    assert means[0] > 0.95 and means[-1] < 0.8  # N runs count as mismatches
    assert 1.4 < ts / tv < 3.0  # transitions twice as likely as transversions


def test_coordinates_never_overlap_on_a_chromosome(blocks):
    spans = defaultdict(list)
    for b in blocks:
        for r in b.rows:
            spans[(r.db, r.chrom)].append((r.forward_start, r.forward_end))
    for intervals in spans.values():
        intervals.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals))


def test_seeded_reproducible_files(tmp_path):
    cfg = SimulateConfig(n_blocks=8, seed=5, mean_length=100)
    write_maf(tmp_path / "a.maf.gz", cfg)
    write_maf(tmp_path / "b.maf.gz", cfg)
    write_maf(tmp_path / "c.maf.gz", SimulateConfig(n_blocks=8, seed=6, mean_length=100))
    a, b, c = ((tmp_path / f"{n}.maf.gz").read_bytes() for n in "abc")
    assert a == b != c
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.maf.gz", "b.maf.gz", "c.maf.gz"]


def test_single_species_is_pairwise_with_exact_scheme_scores(tmp_path):
    path = tmp_path / "pair.maf"
    cfg = SimulateConfig(n_blocks=10, seed=1, species=("galGal6",), scoring="HoxD55")
    summary = write_maf(path, cfg)
    assert summary.n_blocks == 10 and path.read_text().startswith("##maf version=1")
    scheme = get_scheme("HoxD55")
    for b in read_alignments(path):
        assert [r.db for r in b.rows] == ["hg38", "galGal6"]
        assert b.score == score_alignment(b.rows[0].text, b.rows[1].text, scheme)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_blocks": 0}, {"species": ("mm10",)}, {"species": ()}, {"species": ("hg38",)}],
)
def test_bad_config(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        write_maf(tmp_path / "x.maf", SimulateConfig(**kwargs))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("reference", ["", "my ref", "hg38.v2", "a\tb"])
def test_reference_name_that_the_maf_cannot_carry_is_refused(tmp_path, reference):
    """A space broke the written MAF's 's' lines; a dot made the reference unselectable."""
    with pytest.raises(ConfigError, match="--reference"):
        write_maf(tmp_path / "x.maf", SimulateConfig(reference=reference, n_blocks=2))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- realism against real files


def test_block_identities_spread_like_real_human_chicken():
    """Real hg17-galGal2 (phast chr22 multiz): identity p5-p95 about 0.45-0.86; a fixed
    per-species rate gave 0.70-0.78."""
    prof = profile_simulation(SimulateConfig(n_blocks=500, seed=2, species=("galGal6",)))
    p5, p50, p95 = prof.identity
    assert p5 < 0.55 and p95 > 0.8 and 0.55 < p50 < 0.75
    assert prof.masked_query == 0.0 and prof.masked_reference > 0.15


def test_gc_is_correlated_along_the_reference_and_not_across_it():
    cfg = SimulateConfig(n_blocks=500, seed=4, species=("susScr11",), long_fraction=0)
    prof = profile_simulation(cfg)
    assert prof.gc_lag1 > 0.25  # neighbours share an isochore
    assert 0.04 < prof.gc_sd < 0.15
    # without correlation (a correlation length far below the block spacing) neighbours are
    # independent
    flat = profile_simulation(dataclasses.replace(cfg, gc_scale_kb=0.001))
    assert abs(flat.gc_lag1) < 0.15
    assert abs(flat.gc_sd - prof.gc_sd) < 0.05  # the same spread, only the order differs


def test_profile_of_known_pairs():
    prof = profile_pairs([("ACGTacgt", "ACGTACGA"), ("AC-G", "ACTG"), ("GGGG", "GG--")], "x")
    assert prof.n_blocks == 3
    assert prof.identity[1] == pytest.approx(1.0)  # the median of 7/8, 1, 1
    assert prof.gap_rate[1] == pytest.approx(0.25)
    assert prof.masked_reference == pytest.approx(4 / 15)
    assert prof.masked_query == 0.0
    assert prof.gc_mean == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    table = profile_table([prof])
    assert "identity p5 / p50 / p95" in table and "x" in table.splitlines()[0]


def test_profile_of_the_real_phast_multiz(realdata):
    path = realdata / "phast/chr22.14500000-15500000.maf"
    real = profile_file(path, "hg17", "galGal2")
    assert real.n_blocks == 356  # galGal2 rows in the file (PROVENANCE.md)
    p5, _, p95 = real.identity
    assert 0.35 < p5 < 0.55 and 0.8 < p95 < 0.95
    assert real.masked_query < 0.02
    sim = profile_simulation(SimulateConfig(n_blocks=400, seed=1, species=("galGal6",)))
    assert abs(sim.identity[0] - p5) < 0.1 and abs(sim.identity[2] - p95) < 0.1
    assert abs(sim.masked_query - real.masked_query) < 0.02
    assert sim.gc_lag1 > 0.2 and real.gc_lag1 > 0.2
    with pytest.raises(InputError, match="no block holds"):
        profile_file(path, "hg17", "danRer99")


def test_cli_simulate_profile_prints_both_sides(realdata, tmp_path):
    from click.testing import CliRunner

    from embedhead.cli.main import main

    real = realdata / "kent/hg17.canFam1.testDog.net.axt"
    result = CliRunner().invoke(
        main, ["simulate", "--profile", str(real), "--species", "susScr11", "--blocks", "50"]
    )
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0]
    assert "simulated hg38-susScr11" in header and real.name in header
    assert "GC lag-1 correlation" in result.output
    assert not list(tmp_path.iterdir())  # nothing written without --out
