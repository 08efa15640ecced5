"""simulate: valid UCSC-style MAF, exact scores, realistic features, seeded."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict

import pytest

from embedhead.alignments.reader import read_alignments
from embedhead.alignments.scoring import HOXD70, get_scheme, identity, score_alignment
from embedhead.errors import ConfigError
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
    letters = [c for c in text if c != "-"]
    lower = sum(c.islower() for c in letters) / len(letters)
    assert 0.15 < lower < 0.6  # soft-masked repeats
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


def test_divergence_increases_and_substitutions_favour_transitions(blocks):
    ident: dict[str, list[float]] = defaultdict(list)
    ts = tv = 0
    for b in blocks:
        ref = b.rows[0]
        for r in b.rows[1:]:
            ident[r.db].append(identity(ref.text, r.text))
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
