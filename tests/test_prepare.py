"""prepare end to end: dataset folder contents, real data, errors, CLI."""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from embedhead.alignments.reader import read_alignments
from embedhead.alignments.scoring import HOXD70, score_alignment
from embedhead.cli.main import main
from embedhead.dataset import iter_fasta, load_dataset, normalise_sequence, sequence_id
from embedhead.errors import ConfigError, InputError
from embedhead.prepare.build import prepare, read_chrom_sizes
from embedhead.prepare.chunking import count_letters
from embedhead.prepare.config import PrepareConfig
from embedhead.prepare.negatives import make_negatives

DOG_AXT = "kent/hg17.canFam1.testDog.net.axt"
MULTIZ = "kent/mafIndex.hg16.galGal2.mm3.rn3.maf"


def check_dataset_invariants(out: Path) -> dict:
    ds = load_dataset(out)
    seqs = dict(ds.sequences())
    for sid, seq in seqs.items():
        assert sequence_id(seq) == sid and set(seq) <= set("ACGTN")
    split_of_block: dict[str, set[str]] = defaultdict(set)
    split_of_seq: dict[str, set[str]] = defaultdict(set)
    positives = {(p.seq1, p.seq2) for p in ds.pairs if p.label == 1}
    for p in ds.pairs:
        assert len(seqs[p.seq1]) == p.len1 and len(seqs[p.seq2]) == p.len2
        split_of_seq[p.seq1].add(p.split)
        split_of_seq[p.seq2].add(p.split)
        for block in p.block_id.split("|"):
            split_of_block[block].add(p.split)
        if p.label == 1:
            assert p.norm_score == pytest.approx(p.score / max(p.len1, p.len2))
        else:
            assert math.isnan(p.score) and math.isnan(p.norm_score)
            assert (p.seq1, p.seq2) not in positives and (p.seq2, p.seq1) not in positives
            a, b = p.block_id.split("|")
            assert a != b
    assert all(len(s) == 1 for s in split_of_block.values())
    assert all(len(s) == 1 for s in split_of_seq.values())
    assert len(ds.pairs) == len({p.pair_id for p in ds.pairs})
    info = ds.info
    counts = info["counts"]
    for split in ("train", "val", "test"):
        for label in (0, 1):
            n = sum(1 for p in ds.pairs if p.split == split and p.label == label)
            assert counts[split][str(label)] == n
        wanted = round(info["parameters"]["negative_ratio"] * counts[split]["1"])
        assert info["n_negatives_missing"][split] == wanted - counts[split]["0"] >= 0
    return {"ds": ds, "seqs": seqs}


def test_prepare_simulated_maf(simulated_maf, tmp_path):
    out = tmp_path / "ds"
    cfg = PrepareConfig(
        reference="hg38", query="susScr11", chunk_size=2000, seed=1, length_match=0.0
    )
    summary = prepare([simulated_maf], out, cfg)
    got = check_dataset_invariants(out)
    ds = got["ds"]
    assert summary.n_positive == sum(p.label for p in ds.pairs) > 0
    assert summary.n_negative == summary.n_positive  # ratio 1:1, many independent blocks
    assert {p.db1 for p in ds.pairs} == {"hg38"} and {p.db2 for p in ds.pairs} == {"susScr11"}
    assert max(max(p.len1, p.len2) for p in ds.pairs) <= 2000
    assert any("/" in p.pair_id for p in ds.pairs if p.label == 1)  # some blocks were cut
    info = ds.info
    assert info["inputs"][0]["sha256"] and info["parameters"]["chunk_size"] == 2000
    assert info["scoring_scheme"]["name"] == "HOXD70"
    assert info["parameters"]["length_match"] == 0.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def _negative_sources(ds):
    """(negative, positive whose first sequence it took, positive whose second it took)."""
    positives = [p for p in ds.pairs if p.label == 1]
    by_first = {(p.block_id, p.seq1): p for p in positives}
    by_second = {(p.block_id, p.seq2): p for p in positives}
    for n in ds.pairs:
        if n.label == 0:
            a, b = n.block_id.split("|")
            yield n, by_first[(a, n.seq1)], by_second[(b, n.seq2)]


@pytest.mark.parametrize("negatives", ["swap", "shuffle"])
def test_prepare_length_matches_negatives_by_default(simulated_maf, tmp_path, negatives):
    cfg = PrepareConfig(reference="hg38", query="susScr11", chunk_size=2000, negatives=negatives)
    assert cfg.length_match == 0.1
    summary = prepare([simulated_maf], tmp_path / "ds", cfg)
    ds = check_dataset_invariants(tmp_path / "ds")["ds"]
    assert ds.info["parameters"]["length_match"] == 0.1
    n_checked = 0
    for n, first, second in _negative_sources(ds):
        assert (n.len1, n.len2) == (first.len1, second.len2)
        assert abs(second.len2 - first.len2) <= 0.1 * max(second.len2, first.len2)
        n_checked += 1
    assert n_checked == summary.n_negative > 0.7 * summary.n_positive
    missing = ds.info["n_negatives_missing"]
    for split in ("train", "val", "test"):  # every shortfall is reported
        noted = [w for w in summary.warnings if w.startswith(f"the {split} split got")]
        assert len(noted) == (missing[split] > 0)
        assert all("--length-match 0.1" in w for w in noted)
    assert ds.info["warnings"] == list(summary.warnings)


def test_length_match_zero_is_the_thesis_method(simulated_maf, tmp_path):
    base = {"reference": "hg38", "query": "susScr11", "chunk_size": 2000}
    prepare([simulated_maf], tmp_path / "a", PrepareConfig(**base, length_match=0.0))
    prepare([simulated_maf], tmp_path / "b", PrepareConfig(**base, length_match=0.5))
    a, b = load_dataset(tmp_path / "a"), load_dataset(tmp_path / "b")
    assert [p for p in a.pairs if p.label == 1] == [p for p in b.pairs if p.label == 1]
    pos = [p for p in a.pairs if p.label == 1]
    for split in ("train", "val", "test"):  # exactly make_negatives' thesis output
        members = [p for p in pos if p.split == split]
        expected = make_negatives(members, "swap", 1.0, "0:" + split, split, f"neg/{split}/")
        assert [p for p in a.pairs if p.label == 0 and p.split == split] == expected
    far = [abs(n.len2 - f.len2) / max(n.len2, f.len2) for n, f, _ in _negative_sources(a)]
    assert max(far) > 0.5  # lengths ignored: some negatives replace a partner of another size
    assert all(
        abs(n.len2 - f.len2) <= 0.5 * max(n.len2, f.len2) for n, f, _ in _negative_sources(b)
    )


def test_prepare_is_deterministic_and_seeded(simulated_maf, tmp_path):
    fingerprints = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        prepare([simulated_maf], tmp_path / name, PrepareConfig(query="galGal6", seed=seed))
        fingerprints.append(load_dataset(tmp_path / name).fingerprint)
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


def test_prepare_gives_the_same_bytes_whatever_the_hash_seed(simulated_maf, tmp_path):
    """The same command in two processes with different string hash seeds writes the same
    dataset folder byte for byte, k-mer matched negatives included (their distances once
    depended on set order)."""
    folders = []
    for hash_seed in ("1", "2"):
        out = tmp_path / "ds"
        cmd = [sys.executable, "-m", "embedhead", "prepare", str(simulated_maf), "--query",
               "galGal6", "--match", "kmer", "--negatives", "swap", "--out", str(out),
               "--no-leak-check", "--quiet"]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        folders.append({f.name: f.read_bytes() for f in sorted(out.iterdir())})
        out.rename(tmp_path / f"ds{hash_seed}")
    assert sorted(folders[0]) == ["dataset.json", "pairs.tsv.gz", "sequences.fa.gz"]
    assert folders[0] == folders[1]


@pytest.mark.parametrize("split_by", ["chrom", "random"])
@pytest.mark.parametrize("negatives", ["swap", "shuffle"])
def test_prepare_options(simulated_maf, tmp_path, split_by, negatives):
    cfg = PrepareConfig(query="panTro6", split_by=split_by, negatives=negatives, negative_ratio=2.0)
    summary = prepare([simulated_maf], tmp_path / "ds", cfg)
    ds = check_dataset_invariants(tmp_path / "ds")["ds"]
    assert 0 < summary.n_negative <= 2 * summary.n_positive
    if split_by == "chrom":
        owners = defaultdict(set)
        for p in ds.pairs:
            if p.label == 1:
                owners[p.chrom1].add(p.split)
        assert all(len(s) == 1 for s in owners.values())


def test_dog_axt_windows_rescore_and_match_the_texts(realdata, tmp_path):
    path = realdata / DOG_AXT
    out = tmp_path / "dog"
    prepare([path], out, PrepareConfig(reference="hg17", query="canFam1", min_length=1))
    got = check_dataset_invariants(out)
    ds, seqs = got["ds"], got["seqs"]
    by_block = defaultdict(list)
    for p in ds.pairs:
        if p.label == 1:
            by_block[p.block_id].append(p)
    blocks = list(read_alignments(path, target_db="hg17", query_db="canFam1"))
    assert len(by_block) == len(blocks) == 50
    n_cut = 0
    for block in blocks:
        pieces = sorted(by_block[f"{path.name}:{block.index}"], key=lambda p: p.start1)
        t, q = block.rows
        # every letter of both rows is in exactly one window, in order
        assert "".join(seqs[p.seq1] for p in pieces) == normalise_sequence(t.text)
        assert "".join(seqs[p.seq2] for p in pieces) == normalise_sequence(q.text)
        assert all(p.db1 == "hg17" and p.db2 == "canFam1" for p in pieces)
        total = sum(p.score for p in pieces)
        if len(pieces) == 1:
            assert total == block.score == score_alignment(t.text, q.text, HOXD70)
        else:
            n_cut += 1
            # cutting can only split gap runs (one extra gap open per cut at most)
            assert block.score - HOXD70.gap_open * (len(pieces) - 1) <= total <= block.score
            assert max(max(p.len1, p.len2) for p in pieces) <= 5000
        assert pieces[0].start1 == t.start and pieces[-1].end1 == t.start + t.size
        if q.strand == "-":  # no chromosome sizes: forward coordinates unknown
            assert all(p.start2 is None and p.end2 is None for p in pieces)
    assert n_cut == 4


def test_axt_minus_rows_get_forward_coordinates_with_chrom_sizes(realdata, tmp_path):
    path = realdata / DOG_AXT
    blocks = list(read_alignments(path))
    sizes = {}
    for b in blocks:
        for r in b.rows:
            sizes[r.chrom] = max(sizes.get(r.chrom, 0), r.start + r.size + 1000)
    (tmp_path / "chrom.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))
    cfg = PrepareConfig(
        reference="hg17", query="canFam1", chrom_sizes=str(tmp_path / "chrom.sizes")
    )
    prepare([path], tmp_path / "ds", cfg)
    ds = load_dataset(tmp_path / "ds")
    minus = [b for b in blocks if b.rows[1].strand == "-"]
    assert minus
    for b in minus:
        q = b.rows[1]
        (p,) = [p for p in ds.pairs if p.pair_id == f"{path.name}:{b.index}"]
        assert p.strand2 == "-"
        assert (p.start2, p.end2) == (sizes[q.chrom] - (q.start + q.size), sizes[q.chrom] - q.start)


def test_phast_reference_sequences_match_the_genome(realdata, tmp_path):
    (_, genome), *_ = iter_fasta(realdata / "phast/chr22.14500000-15500000.fa")
    prepare(
        [realdata / "phast/chr22.14500000-15500000.maf"],
        tmp_path / "ds",
        PrepareConfig(reference="hg17", query="mm5", chunk_size=300),
    )
    got = check_dataset_invariants(tmp_path / "ds")
    positives = [p for p in got["ds"].pairs if p.label == 1]
    assert len(positives) > 100
    for p in positives:
        assert p.db1 == "hg17" and p.db2 == "mm5" and p.strand1 == "+"
        assert got["seqs"][p.seq1] == normalise_sequence(genome[p.start1 : p.end1])


def test_multispecies_maf_picks_the_requested_rows(realdata, tmp_path):
    path = realdata / MULTIZ
    prepare([path], tmp_path / "ds", PrepareConfig(reference="hg16", query="rn3", min_length=1))
    ds = load_dataset(tmp_path / "ds")
    seqs = dict(ds.sequences())
    expected = {}
    for b in read_alignments(path):
        dbs = {r.db: r for r in b.rows}
        if "hg16" in dbs and "rn3" in dbs:
            expected[f"{path.name}:{b.index}"] = (dbs["hg16"], dbs["rn3"])
    positives = [p for p in ds.pairs if p.label == 1]
    assert len(positives) == len(expected) == 7
    for p in positives:
        ref, qry = expected[p.block_id]
        assert seqs[p.seq1] == normalise_sequence(ref.text)
        assert seqs[p.seq2] == normalise_sequence(qry.text)
        assert (p.chrom2, p.strand2, p.start2) == (qry.chrom, qry.strand, qry.forward_start)
        keep = [(a, b) for a, b in zip(ref.text, qry.text, strict=True) if (a, b) != ("-", "-")]
        text1, text2 = ("".join(c[0] for c in keep), "".join(c[1] for c in keep))
        assert p.score == score_alignment(text1, text2, HOXD70)
    assert ds.info["n_blocks_without_pair"] == 22 - 7


def test_thesis_csv_keeps_file_scores(tmp_path):
    csv_path = tmp_path / "pairs.csv"
    lines = ["id,score,seq1,seq2"]
    for k in range(12):
        lines.append(f"r{k},{100 + k},{'ACGT' * (20 + k)},{'AGGT' * (18 + k)}")
    csv_path.write_text("\n".join(lines) + "\n")
    prepare([csv_path], tmp_path / "ds", PrepareConfig(min_length=10))
    ds = check_dataset_invariants(tmp_path / "ds")["ds"]
    positives = sorted((p for p in ds.pairs if p.label == 1), key=lambda p: p.score)
    assert [p.score for p in positives] == [100.0 + k for k in range(12)]
    assert all(math.isnan(p.identity) for p in positives)
    assert sum(1 for p in ds.pairs if p.label == 0) > 0


# ----------------------------------------------------------------------------- errors


def test_truncated_gzip_fails_cleanly(realdata, tmp_path):
    data = gzip.compress((realdata / DOG_AXT).read_bytes())
    bad = tmp_path / "truncated.axt.gz"
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out" / "ds"
    with pytest.raises(InputError, match="truncated"):
        prepare([bad], out, PrepareConfig())
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_size_mismatch_is_reported_with_its_line(realdata, tmp_path):
    with pytest.raises(InputError) as err:
        prepare(
            [realdata / "biopython/length_coords_mismatch.maf"], tmp_path / "ds", PrepareConfig()
        )
    assert err.value.line is not None and "length_coords_mismatch.maf" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_leave_no_folder(tmp_path):
    empty = tmp_path / "empty.maf"
    empty.write_text("")
    ragged = tmp_path / "ragged.maf"
    ragged.write_text("a score=1\ns a.c 0 4 + 10 ACGT\ns b.c 0 3 + 10 ACG\n\n")
    for bad in (empty, ragged):
        with pytest.raises(InputError, match=bad.name):
            prepare([bad], tmp_path / "ds", PrepareConfig())
        assert not (tmp_path / "ds").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.maf", "ragged.maf"]


def test_existing_folder_needs_force(simulated_maf, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="--force"):
        prepare([simulated_maf], out, PrepareConfig(query="panTro6"))
    with pytest.raises(ConfigError, match="not a dataset folder"):  # never wipe other folders
        prepare([simulated_maf], out, PrepareConfig(query="panTro6", force=True))
    assert (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    prepare([simulated_maf], out, PrepareConfig(query="panTro6"))
    first = load_dataset(out).fingerprint
    with pytest.raises(ConfigError, match="--force"):
        prepare([simulated_maf], out, PrepareConfig(query="galGal6"))
    prepare([simulated_maf], out, PrepareConfig(query="galGal6", force=True))
    assert load_dataset(out).fingerprint != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp or old folder left
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    prepare([simulated_maf], empty, PrepareConfig(query="panTro6"))  # empty folder is fine
    assert (empty / "dataset.json").exists()


def test_no_pairs_is_an_error(simulated_maf, tmp_path):
    with pytest.raises(InputError, match="no pairs"):
        prepare([simulated_maf], tmp_path / "ds", PrepareConfig(query="mm10"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk_size": 0}, "chunk-size"),
        ({"min_length": 0}, "min-length"),
        ({"min_length": 6000}, "exceeds"),
        ({"negatives": "mix"}, "negatives"),
        ({"negative_ratio": -1.0}, "ratio"),
        ({"length_match": 1.0}, "length-match"),
        ({"length_match": -0.1}, "length-match"),
        ({"split_by": "file"}, "split-by"),
        ({"reference": "hg38", "query": "hg38"}, "both"),
        ({"scoring": "nosuchmatrix"}, "scoring scheme"),
    ],
)
def test_bad_config(simulated_maf, tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        prepare([simulated_maf], tmp_path / "ds", PrepareConfig(**kwargs))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- CLI


def test_cli_simulate_then_prepare(tmp_path):
    runner = CliRunner()
    maf = tmp_path / "sim.maf"
    result = runner.invoke(
        main, ["simulate", "--out", str(maf), "--blocks", "25", "--species", "galGal6"]
    )
    assert result.exit_code == 0, result.output
    assert "25 blocks" in result.output
    out = tmp_path / "ds"
    args = ["prepare", str(maf), "--out", str(out), "--reference", "hg38", "--query", "galGal6"]
    result = runner.invoke(main, [*args, "--split-fractions", "0.6,0.2,0.2", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "positive" in result.output
    info = json.loads((out / "dataset.json").read_text())
    assert info["command"].startswith("embedhead prepare ")
    assert "--seed 2" in info["command"]
    assert info["parameters"]["split_fractions"] == pytest.approx([0.6, 0.2, 0.2])
    assert info["parameters"]["length_match"] == 0.1 and "--length-match 0.1" in info["command"]
    # again without --force: refused, exit 1, dataset untouched
    before = (out / "pairs.tsv.gz").read_bytes()
    result = runner.invoke(main, args)
    assert result.exit_code == 1 and "--force" in result.output
    assert (out / "pairs.tsv.gz").read_bytes() == before


def test_cli_bad_input_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.maf"
    bad.write_text("##maf version=1\na score=1\ns hg38.chr1 0 5 + 100 ACGT\ns x.c 0 4 + 9 ACGT\n")
    result = CliRunner().invoke(main, ["prepare", str(bad), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 1
    assert f"{bad}:3:" in result.output
    assert not (tmp_path / "ds").exists()
    result = CliRunner().invoke(
        main, ["prepare", str(bad), "--out", str(tmp_path / "ds"), "--split-fractions", "1,2"]
    )
    assert result.exit_code == 1 and "three values" in result.output


def test_letter_counts_helper():
    assert count_letters("AC-G.T--") == 4


def test_same_alignment_twice_never_leaks_or_pairs_overlapping_copies(realdata, tmp_path):
    path = realdata / DOG_AXT
    copy = tmp_path / "copy" / path.name
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    cfg = PrepareConfig(reference="hg17", query="canFam1", negatives="shuffle")
    prepare([path, copy], tmp_path / "ds", cfg)
    ds = check_dataset_invariants(tmp_path / "ds")["ds"]
    split_of = {p.block_id: p.split for p in ds.pairs if p.label == 1}
    assert len(split_of) == 100  # block ids stay distinct: "0-name:i" and "1-name:i"
    for i in range(50):
        assert split_of[f"0-{path.name}:{i}"] == split_of[f"1-{path.name}:{i}"]
    for p in ds.pairs:
        if p.label == 0:
            a, b = (x.split(":", 1)[1] for x in p.block_id.split("|"))
            assert a != b  # a block's copy overlaps it: never a negative source pair


def test_single_long_block_is_cut_and_warned_about(realdata, tmp_path):
    path = realdata / "kent/hg19.susScr3.chrM.lastz.axt.gz"  # one block of 15,580 columns
    summary = prepare([path], tmp_path / "ds", PrepareConfig(reference="hg19", query="susScr3"))
    assert summary.n_positive == 4 and summary.n_negative == 0  # chunks of one block only
    assert any("train split has no negatives" in w for w in summary.warnings)
    assert any("val split is empty" in w for w in summary.warnings)
    ds = load_dataset(tmp_path / "ds")
    assert ds.info["warnings"] == list(summary.warnings)
    (block,) = read_alignments(path)
    assert sum(p.len1 for p in ds.pairs) == block.rows[0].size
    assert [p.start1 for p in ds.pairs][1:] == [p.end1 for p in ds.pairs][:-1]  # contiguous


# ----------------------------------------------------------------------------- length matching

DEMO_MAF = Path(__file__).resolve().parent.parent / "data" / "demo.maf.gz"


def _length_only_accuracy(ds) -> tuple[float, float]:
    """A logistic regression on (log len1, log len2, |len1 - len2|) only: accuracy on val+test
    when fitted on train, and 5-fold cross-validated accuracy over all pairs."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def features(pairs):
        a = np.array([p.len1 for p in pairs], dtype=float)
        b = np.array([p.len2 for p in pairs], dtype=float)
        x = np.column_stack([np.log(a), np.log(b), np.abs(a - b)])
        return x, np.array([p.label for p in pairs])

    def model():
        return make_pipeline(StandardScaler(), LogisticRegression())

    train = [p for p in ds.pairs if p.split == "train"]
    held = [p for p in ds.pairs if p.split != "train"]
    held_acc = model().fit(*features(train)).score(*features(held))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    cv_acc = cross_val_score(model(), *features(ds.pairs), cv=folds).mean()
    return float(held_acc), float(cv_acc)


@pytest.mark.skipif(not DEMO_MAF.is_file(), reason="data/demo.maf.gz is absent")
@pytest.mark.parametrize("negatives", ["swap", "shuffle"])
def test_demo_lengths_alone_are_near_chance_only_with_length_matching(tmp_path, negatives):
    runner = CliRunner()
    base = ["prepare", str(DEMO_MAF), "--reference", "hg38", "--query", "galGal6"]
    base += ["--chunk-size", "1000", "--negatives", negatives]
    got = {}
    for name, extra in (("matched", []), ("thesis", ["--length-match", "0"])):
        result = runner.invoke(main, [*base, *extra, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        ds = load_dataset(tmp_path / name)
        assert sum(p.label == 0 for p in ds.pairs) == sum(p.label == 1 for p in ds.pairs) > 500
        got[name] = _length_only_accuracy(ds)
    held, cv = got["matched"]
    assert held < 0.65 and cv < 0.62, got  # about chance (0.5 for 1:1)
    held, cv = got["thesis"]
    assert held > 0.8 and cv > 0.8, got  # the thesis's negatives betray themselves by length


def test_cli_rejects_a_bad_length_match(simulated_maf, tmp_path):
    out = tmp_path / "ds"
    result = CliRunner().invoke(
        main, ["prepare", str(simulated_maf), "--out", str(out), "--length-match", "1.5"]
    )
    assert result.exit_code == 1 and "--length-match" in result.output
    assert not out.exists()


def test_out_holding_an_input_or_the_working_folder_is_refused(
    simulated_maf, tmp_path, monkeypatch
):
    out = tmp_path / "ds"
    prepare([simulated_maf], out, PrepareConfig(query="panTro6"))
    inside = out / "input.maf"
    inside.write_bytes(Path(simulated_maf).read_bytes())
    with pytest.raises(ConfigError, match="inside --out"):  # --force would delete the input
        prepare([inside], out, PrepareConfig(query="panTro6", force=True))
    assert inside.is_file()
    sizes = out / "chrom.sizes"
    sizes.write_text("chr1\t100\n")
    with pytest.raises(ConfigError, match="inside --out"):
        prepare(
            [simulated_maf], out, PrepareConfig(query="panTro6", chrom_sizes=str(sizes), force=True)
        )
    assert sizes.is_file()
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(ConfigError, match="current folder"):  # used to crash in os.rename
        prepare([simulated_maf], ".", PrepareConfig(query="panTro6"))
    assert list(here.iterdir()) == []
    monkeypatch.chdir(out)
    with pytest.raises(ConfigError, match="current folder"):
        prepare([simulated_maf], out, PrepareConfig(query="panTro6", force=True))
    assert (out / "dataset.json").is_file()


def test_chrom_sizes_conflicting_duplicate_is_refused(tmp_path):
    path = tmp_path / "both.sizes"
    path.write_text("# two assemblies pasted together\nchr1\t100\nchrM\t16\nchr1\t100\nchr1\t250\n")
    with pytest.raises(InputError, match="chr1 is listed again") as info:
        read_chrom_sizes(path)
    assert (info.value.path, info.value.line) == (str(path), 5)
    path.write_text("chr1\t100\nhg38.chr1\t250\n")  # qualified keys keep assemblies apart
    assert read_chrom_sizes(path) == {"chr1": 100, "hg38.chr1": 250}


# --- genome scale (issue 11): --max-pairs, --chroms, --regions, progress -----------------------
GENOME = {"reference": "hg38", "query": "susScr11", "length_match": 0.0}


def _positives(out: Path) -> dict:
    ds = load_dataset(out)
    return {p.pair_id: p for p in ds.pairs if p.label == 1}


def test_max_pairs_is_a_seeded_uniform_subset_of_all_windows(simulated_maf, tmp_path):
    prepare([simulated_maf], tmp_path / "all", PrepareConfig(**GENOME))
    full = _positives(tmp_path / "all")
    order = list(full)  # stream order
    cfg = PrepareConfig(**GENOME, max_pairs=12, seed=5)
    summary = prepare([simulated_maf], tmp_path / "a", cfg)
    got = check_dataset_invariants(tmp_path / "a")
    sample = _positives(tmp_path / "a")
    assert summary.n_positive == len(sample) == 12 and summary.n_positive_windows == len(full)
    for pair_id, rec in sample.items():  # the very windows of the full run, split aside
        assert dataclasses.replace(rec, split="train") == dataclasses.replace(
            full[pair_id], split="train"
        )
    assert list(sample) == [i for i in order if i in sample]  # kept in stream order
    # only the sampled windows' sequences were written
    assert {s for p in sample.values() for s in (p.seq1, p.seq2)} >= set(got["seqs"])
    sampling = got["ds"].info["sampling"]
    assert sampling["max_pairs"] == 12 and sampling["n_sampled"] == 12
    assert sampling["n_positive_windows"] == len(full)
    assert got["ds"].info["parameters"]["max_pairs"] == 12
    prepare([simulated_maf], tmp_path / "b", cfg)
    assert load_dataset(tmp_path / "b").fingerprint == got["ds"].fingerprint
    prepare([simulated_maf], tmp_path / "c", dataclasses.replace(cfg, seed=6))
    assert set(_positives(tmp_path / "c")) != set(sample)
    # a cap above the number of windows keeps them all
    prepare([simulated_maf], tmp_path / "d", dataclasses.replace(cfg, max_pairs=10_000))
    assert set(_positives(tmp_path / "d")) == set(full)


def test_max_pairs_sample_covers_the_whole_stream(simulated_maf, tmp_path):
    """Over many seeds every part of the input is sampled about equally often (not a prefix)."""
    prepare([simulated_maf], tmp_path / "all", PrepareConfig(**GENOME))
    order = {pid: i for i, pid in enumerate(_positives(tmp_path / "all"))}
    n, k, seeds = len(order), 6, 40
    hits = [0] * n
    for seed in range(seeds):
        out = tmp_path / f"s{seed}"
        prepare([simulated_maf], out, PrepareConfig(**GENOME, max_pairs=k, seed=seed))
        for pid in _positives(out):
            hits[order[pid]] += 1
    quarter = n // 4
    expected = seeds * k / n * quarter  # draws expected in each quarter of the stream
    for q in range(4):
        got = sum(hits[q * quarter : (q + 1) * quarter])
        assert 0.5 * expected < got < 1.5 * expected, (q, got, expected)


def test_chroms_and_regions_filter_the_reference_side(simulated_maf, tmp_path):
    prepare([simulated_maf], tmp_path / "all", PrepareConfig(**GENOME))
    full = _positives(tmp_path / "all")
    summary = prepare(
        [simulated_maf], tmp_path / "chr", PrepareConfig(**GENOME, chroms=("chr2", "chrX"))
    )
    kept = _positives(tmp_path / "chr")
    assert set(kept) == {i for i, p in full.items() if p.chrom1 in ("chr2", "chrX")}
    info = load_dataset(tmp_path / "chr").info
    assert info["parameters"]["chroms"] == ["chr2", "chrX"]
    assert info["sampling"]["n_blocks_off_chroms"] > 0 and summary.n_filtered > 0
    bed = tmp_path / "regions.bed"
    bed.write_text(
        "track name=test\n# comment\nchr7\t0\t20000\tfirst\nchr1\t5000\t90000\nchr7\t15000\t30000\n"
    )
    prepare([simulated_maf], tmp_path / "bed", PrepareConfig(**GENOME, regions=str(bed)))
    inside = _positives(tmp_path / "bed")

    def overlaps(p) -> bool:
        spans = {"chr7": [(0, 30000)], "chr1": [(5000, 90000)]}.get(p.chrom1, [])
        return any(p.start1 < b and p.end1 > a for a, b in spans)

    assert inside and set(inside) == {i for i, p in full.items() if overlaps(p)}
    assert set(inside) != set(full)
    info = load_dataset(tmp_path / "bed").info
    assert info["sampling"]["n_windows_outside_regions"] == len(full) - len(inside)
    with pytest.raises(InputError, match=r"no pairs.*off --chroms"):
        prepare([simulated_maf], tmp_path / "none", PrepareConfig(**GENOME, chroms=("chrZ",)))
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [("chr1\t10\n", 1, "chrom start end"), ("#c\nchr1\tx\t5\n", 2, "integers"),
     ("chr1\t10\t5\n", 1, "start < end"), ("# only a comment\n", None, "no regions")],
)  # fmt: skip
def test_bad_regions_file_names_file_and_line(simulated_maf, tmp_path, text, line, match):
    bed = tmp_path / "bad.bed"
    bed.write_text(text)
    with pytest.raises(InputError, match=match) as info:
        prepare([simulated_maf], tmp_path / "ds", PrepareConfig(**GENOME, regions=str(bed)))
    assert info.value.line == line and info.value.path == str(bed)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(("kwargs", "match"), [({"max_pairs": 0}, "max-pairs"),
                                               ({"chroms": ("chr1", "")}, "chroms")])  # fmt: skip
def test_bad_sampling_options(simulated_maf, tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        prepare([simulated_maf], tmp_path / "ds", PrepareConfig(**GENOME, **kwargs))


def test_progress_bar_counts_input_bytes_on_stderr(simulated_maf, tmp_path, capsys):
    from embedhead.alignments.openers import ByteCounter, iter_lines, open_text

    size = simulated_maf.stat().st_size  # gzip: the counter sees compressed bytes
    for opener in (open_text, iter_lines):
        counter = ByteCounter()
        lines = iter(opener(simulated_maf, counter))
        next(lines)
        first = counter.n
        for _ in lines:
            pass
        assert 0 < first <= counter.n == size
    plain = tmp_path / "plain.maf"
    plain.write_bytes(gzip.decompress(simulated_maf.read_bytes()))
    counter = ByteCounter()
    assert sum(1 for _ in iter_lines(plain, counter)) > 0
    assert counter.n == plain.stat().st_size
    prepare([simulated_maf], tmp_path / "ds", PrepareConfig(**GENOME, progress=True))
    err = capsys.readouterr().err
    assert "prepare" in err and "B" in err
    prepare([simulated_maf], tmp_path / "quiet", PrepareConfig(**GENOME))
    assert capsys.readouterr().err == ""


def test_cli_max_pairs_chroms_regions_and_quiet(simulated_maf, tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text("chr7\t0\t100000000\nchr2\t0\t100000000\n")
    out = tmp_path / "ds"
    result = CliRunner().invoke(
        main,
        ["prepare", str(simulated_maf), "--reference", "hg38", "--query", "susScr11",
         "--max-pairs", "8", "--chroms", "chr7,chr2,chr1", "--regions", str(bed), "--quiet",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sampled uniformly: 8 of" in result.output
    pairs = _positives(out)
    assert len(pairs) == 8 and {p.chrom1 for p in pairs.values()} <= {"chr7", "chr2"}
    info = load_dataset(out).info
    assert "--max-pairs 8" in info["command"] and "--chroms chr7,chr2,chr1" in info["command"]
    bad = CliRunner().invoke(
        main, ["prepare", str(simulated_maf), "--max-pairs", "0", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code != 0 and "--max-pairs" in bad.output


def test_force_refuses_a_dataset_folder_holding_the_users_files(simulated_maf, tmp_path):
    out = tmp_path / "ds"
    prepare([simulated_maf], out, PrepareConfig(query="panTro6"))
    first = load_dataset(out).fingerprint
    (out / "notes.txt").write_text("mine")
    (out / "cache.zarr").mkdir()
    with pytest.raises(ConfigError, match=r"did not write \(cache\.zarr, notes\.txt\)"):
        prepare([simulated_maf], out, PrepareConfig(query="galGal6", force=True))
    assert (out / "notes.txt").read_text() == "mine" and (out / "cache.zarr").is_dir()
    assert load_dataset(out).fingerprint == first  # the old dataset is untouched
    (out / "notes.txt").unlink()
    (out / "cache.zarr").rmdir()
    prepare([simulated_maf], out, PrepareConfig(query="galGal6", force=True))
    assert load_dataset(out).fingerprint != first


# ------------------------------------------------------------ dishuffle and k-mer matched negatives


def test_prepare_dishuffle_negatives_are_shuffles_of_the_true_partner(simulated_maf, tmp_path):
    from embedhead.prepare.negatives import dinucleotide_counts
    from embedhead.prepare.resplit import resplit

    cfg = PrepareConfig(reference="hg38", query="susScr11", chunk_size=2000, negatives="dishuffle")
    summary = prepare([simulated_maf], tmp_path / "ds", cfg)
    got = check_dataset_invariants(tmp_path / "ds")
    ds, seqs = got["ds"], got["seqs"]
    positives = {(p.block_id, p.seq1): p for p in ds.pairs if p.label == 1}
    negatives = [p for p in ds.pairs if p.label == 0]
    assert len(negatives) == summary.n_negative == summary.n_positive
    positive_ids = {s for p in positives.values() for s in (p.seq1, p.seq2)}
    for n in negatives:
        src = positives[(n.block_id.split("|")[0], n.seq1)]
        assert n.split == src.split and n.seq2 not in positive_ids
        assert dinucleotide_counts(seqs[n.seq2]) == dinucleotide_counts(seqs[src.seq2])
        assert seqs[n.seq2] != seqs[src.seq2] and n.len2 == src.len2
    # the FASTA holds every sequence once, the shuffles included (a second gzip member)
    assert ds.info["n_sequences"] == len(seqs) == len(positive_ids) + len(negatives)
    assert ds.info["parameters"]["negatives"] == "dishuffle"
    # seeded: the same bytes again
    prepare([simulated_maf], tmp_path / "again", cfg)
    for name in ("pairs.tsv.gz", "sequences.fa.gz"):
        assert (tmp_path / "ds" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    # --resplit keeps the shuffles (they exist only as written) and moves them with their positive
    moved = resplit(ds, 5)
    split_of = {(p.block_id, p.seq1): p.split for p in moved.pairs if p.label == 1}
    redrawn = [p for p in moved.pairs if p.label == 0]
    assert {p.seq2 for p in redrawn} == {p.seq2 for p in negatives}
    assert all(n.split == split_of[(n.block_id.split("|")[0], n.seq1)] for n in redrawn)


def test_prepare_match_kmer_keeps_the_partner_3mer_profile(simulated_maf, tmp_path):
    from embedhead.prepare.negatives import kmer_profile, profile_distance

    out = tmp_path / "ds"
    result = CliRunner().invoke(
        main,
        [
            "prepare", str(simulated_maf), "--reference", "hg38", "--query", "susScr11",
            "--chunk-size", "2000", "--match", "kmer", "--kmer-tolerance", "0.3",
            "--no-leak-check", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ds = check_dataset_invariants(out)["ds"]
    seqs = dict(ds.sequences())
    assert ds.info["parameters"]["kmer_match"] == 0.3
    assert ds.info["parameters"]["gc_match"] == 0.0
    checked = 0
    for _, first, second in _negative_sources(ds):
        gap = profile_distance(kmer_profile(seqs[second.seq2]), kmer_profile(seqs[first.seq2]))
        assert gap <= 0.3
        assert abs(second.len2 - first.len2) <= 0.1 * max(second.len2, first.len2)
        checked += 1
    assert checked > 0.5 * sum(p.label for p in ds.pairs)
