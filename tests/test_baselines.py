import json
import math
from collections import Counter

import numpy as np
import pytest
from conftest import write_related_dataset
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.dataset import load_dataset
from embedhead.errors import ConfigError, InputError
from embedhead.experiments.baselines import (
    BaselineConfig,
    build_features,
    run_baselines,
    write_baselines,
)
from embedhead.experiments.kmers import (
    encode,
    gc_content,
    kmer_codes,
    kmer_profiles,
    profile_similarity,
)


def _naive_counts(seq: str, k: int) -> Counter:
    return Counter(seq[i : i + k] for i in range(len(seq) - k + 1) if "N" not in seq[i : i + k])


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ACGTN", min_size=0, max_size=60), st.integers(1, 5))
def test_kmer_profile_matches_naive_count(seq, k):
    profile = kmer_profiles([seq], k).toarray()[0]
    counts = _naive_counts(seq, k)
    total = sum(counts.values())
    assert profile.shape == (4**k,)
    for kmer, n in counts.items():
        code = int("".join(str("ACGT".index(c)) for c in kmer), 4)
        assert profile[code] == pytest.approx(n / total)
    assert profile.sum() == pytest.approx(1.0 if total else 0.0)


def test_kmer_codes_skip_windows_with_n():
    codes = kmer_codes(encode("ACNGT"), 2)
    assert codes.tolist() == [0 * 4 + 1, 2 * 4 + 3]  # AC, GT
    assert kmer_codes(encode("A"), 3).shape == (0,)


def test_similarity_of_identical_and_disjoint_profiles():
    profiles = kmer_profiles(["AAAA", "AAAA", "CCCC", "NNNN"], 2)
    cos, l1 = profile_similarity(profiles, np.array([0, 0, 0]), np.array([1, 2, 3]))
    assert cos.tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert l1.tolist() == pytest.approx([0.0, 2.0, 1.0])


def test_gc_content():
    assert gc_content("GGCCAT") == pytest.approx(4 / 6)
    assert gc_content("NNN") == 0.5


def test_kmer_baseline_beats_chance_clearly(related_dataset_dir):
    results = {r.model: r for r in run_baselines(related_dataset_dir, BaselineConfig(ks=(2, 3, 4)))}
    assert set(results) == {"kmer", "gc", "length", "kmer_gc_length", "aligner"}
    kmer = results["kmer"]
    assert kmer.test["accuracy"] >= 0.85
    assert kmer.test["roc_auc"] >= 0.9
    assert kmer.features == ("cos_k2", "l1_k2", "cos_k3", "l1_k3", "cos_k4", "l1_k4")
    # GC and length carry no signal in this toy set: near chance, clearly worse than k-mers
    for name in ("gc", "length"):
        assert results[name].test["roc_auc"] < 0.75
        assert results[name].test["roc_auc"] < kmer.test["roc_auc"] - 0.15
    assert kmer.n_test == 40 and kmer.n_train == 40
    assert sum(map(sum, kmer.test["confusion_matrix"])) == kmer.n_test
    # the combined model sees every feature; the aligner (mutated copies vs unrelated) is
    # near perfect and reports its time per pair
    combined = results["kmer_gc_length"]
    assert combined.features == kmer.features + results["gc"].features + results["length"].features
    assert combined.test["roc_auc"] >= 0.9
    aligner = results["aligner"]
    assert aligner.features == ("local_score_per_length",)
    assert aligner.test["roc_auc"] >= 0.95
    assert aligner.extra["scoring_scheme"] == "HOXD70"
    assert aligner.extra["seconds_per_pair"] > 0
    # every classifier's threshold was chosen on val and applied to test
    for r in results.values():
        assert r.test["threshold"] == r.val["threshold"]


def test_regression_baseline_reports_regression_metrics(related_dataset_dir):
    (res,) = run_baselines(
        related_dataset_dir, BaselineConfig(models=("length",), task="regression")
    )
    assert res.task == "regression" and "alpha" in res.chosen
    assert {"mse", "rmse", "mae", "r2", "pearson", "spearman"} <= set(res.test)
    assert res.n_test == 20  # positives only
    assert math.isclose(res.test["rmse"] ** 2, res.test["mse"], rel_tol=1e-9)


def test_features_have_one_row_per_pair(related_dataset_dir):
    ds = load_dataset(related_dataset_dir)
    seqs = dict(ds.sequences())
    pairs = ds.split("val")
    x, names = build_features(pairs, seqs, "length", (2,))
    assert x.shape == (len(pairs), len(names))
    assert np.isfinite(x).all()


def test_write_baselines_json_and_markdown(related_dataset_dir, tmp_path):
    results = run_baselines(related_dataset_dir, BaselineConfig(models=("gc",), ks=(2,)))
    path = write_baselines(results, tmp_path / "out", dataset=related_dataset_dir)
    payload = json.loads(path.read_text())
    assert payload["kind"] == "baselines"
    assert payload["results"][0]["model"] == "gc"
    md = (tmp_path / "out" / "baselines.md").read_text()
    assert "| gc |" in md


def test_bad_config_and_missing_split(tmp_path, related_dataset_dir):
    with pytest.raises(ConfigError, match="unknown baseline"):
        BaselineConfig(models=("bogus",))
    with pytest.raises(ConfigError, match="task"):
        BaselineConfig(task="ranking")
    with pytest.raises(InputError, match="not a dataset folder"):
        run_baselines(tmp_path / "nope")
    tiny = write_related_dataset(tmp_path / "tiny", n_positives=1)  # one pair each label: train
    with pytest.raises(InputError, match="the val split has no pairs"):
        run_baselines(tiny)


def test_local_aligner_score_is_optimal_for_the_scheme():
    from embedhead.alignments.scoring import HOXD70, score_alignment
    from embedhead.experiments.aligner import local_scores, score_per_length

    rng = np.random.default_rng(0)
    for _ in range(20):
        a = "".join(rng.choice(list("ACGT"), 120))
        b = list(a)
        for i in rng.choice(120, 12, replace=False):
            b[i] = "ACGT"[(("ACGT".index(b[i])) + 1) % 4]
        del b[50:53]  # a 3-column gap in b
        text2 = "".join(b[:50]) + "---" + "".join(b[50:])
        (score,), seconds = local_scores([(a.lower(), "".join(b))])
        # the optimal local score is at least the score of this (global) alignment
        assert score >= score_alignment(a, text2, HOXD70)
        assert seconds >= 0
    # identical sequences: the whole diagonal (no gaps, all matches)
    (same,), _ = local_scores([("ACGTN", "ACGTN")])
    assert same == score_alignment("ACGTN", "ACGTN")
    per = score_per_length(np.array([100.0]), np.array([10]), np.array([20]))
    assert per.tolist() == [5.0]
