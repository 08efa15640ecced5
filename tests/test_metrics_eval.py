"""Undefined metrics stay undefined; calibration curve and per-bin metrics (issues 13, 14)."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve

from embedhead.experiments.baselines import BaselineResult, baselines_markdown
from embedhead.fileio import write_json
from embedhead.heads.metrics import (
    IDENTITY_EDGES,
    binned_metrics,
    classification_metrics,
    length_edges,
    metrics_by_bins,
    regression_metrics,
    reliability_curve,
)
from embedhead.tables import fmt_metric


def test_no_positives_leaves_recall_and_f1_undefined():
    m = classification_metrics(np.array([0, 0, 0]), np.array([0.9, 0.1, 0.2]))
    assert m["precision"] == 0.0  # one predicted positive, wrong: precision is defined, 0
    assert math.isnan(m["recall"]) and math.isnan(m["f1"])
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_no_predicted_positives_leaves_precision_and_f1_undefined():
    m = classification_metrics(np.array([1, 0, 1]), np.array([0.1, 0.2, 0.3]))
    assert math.isnan(m["precision"]) and math.isnan(m["f1"])
    assert m["recall"] == 0.0


def test_undefined_metrics_are_null_in_json_and_na_in_tables(tmp_path):
    m = classification_metrics(np.array([0, 0]), np.array([0.1, 0.2]))
    path = write_json(tmp_path / "m.json", m)
    back = json.loads(path.read_text())
    assert back["precision"] is None and back["recall"] is None and back["f1"] is None
    assert back["accuracy"] == 1.0
    assert fmt_metric(back["recall"]) == "n/a" and fmt_metric(m["recall"]) == "n/a"
    row = BaselineResult("gc", "classification", ("gc1",), {"C": 1.0}, {}, m, 2, 2, 2)
    line = baselines_markdown([row]).splitlines()[2]
    cells = [c.strip() for c in line.strip("|").split("|")]
    # baseline, chosen, accuracy, precision, recall, f1, ...
    assert cells[2] == "1.0000" and cells[3:6] == ["n/a", "n/a", "n/a"]
    assert "0.0000" not in cells[3:6]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=1, max_size=60))
def test_reliability_curve_matches_sklearn(rows):
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    curve = reliability_curve(y, p)
    assert len(curve["bins"]) == 10 and sum(b["n"] for b in curve["bins"]) == len(y)
    assert curve["brier"] == pytest.approx(np.mean((p - y) ** 2))
    filled = [b for b in curve["bins"] if b["n"]]
    if len(set(y)) == 2:  # sklearn's curve needs both labels
        frac, mean_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
        assert [b["fraction_positive"] for b in filled] == pytest.approx(list(frac))
        assert [b["mean_predicted"] for b in filled] == pytest.approx(list(mean_pred))


def test_binned_metrics_match_metrics_of_each_bins_pairs():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    pred = y + rng.normal(scale=0.5, size=200)
    lengths = rng.integers(50, 500, size=200).astype(float)
    edges = length_edges(lengths)
    rows = binned_metrics("regression", y, pred, lengths, edges)
    assert sum(r["n"] for r in rows) == 200  # every pair in exactly one bin
    for r in rows:
        inside = (lengths >= r["lo"]) & (lengths < r["hi"])
        expect = regression_metrics(y[inside], pred[inside])
        assert r["n"] == int(inside.sum())
        assert r["r2"] == pytest.approx(expect["r2"]) and r["mse"] == pytest.approx(expect["mse"])


def test_identity_bins_score_positives_of_the_bin_against_all_negatives():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    prob = np.array([0.9, 0.8, 0.3, 0.2, 0.4, 0.1, 0.6, 0.05])
    identity = np.array([0.95, 0.92, 0.55, 0.52, np.nan, np.nan, np.nan, np.nan])
    lengths = np.array([100, 200, 300, 400, 100, 200, 300, 400], dtype=float)
    out = metrics_by_bins("classification", labels, prob, identity, lengths)
    by_id = {(r["lo"], r["hi"]): r for r in out["by_identity"]}
    assert set(by_id) == {(0.5, 0.6), (0.9, 1.0)}  # empty bins are left out
    high, low = by_id[(0.9, 1.0)], by_id[(0.5, 0.6)]
    assert high["n"] == 2 and low["n"] == 2  # n counts the bin's positives
    # high-identity positives outrank every negative; low-identity ones only two of four
    assert high["roc_auc"] == 1.0 and high["recall"] == 1.0
    assert low["roc_auc"] == pytest.approx(4 / 8) and low["recall"] == 0.0
    assert high["mean_probability"] == pytest.approx(0.85) and "accuracy" not in high
    assert sum(r["n"] for r in out["by_length"]) == 8
    assert IDENTITY_EDGES[0] == 0.0 and IDENTITY_EDGES[-1] == 1.0
    # identity exactly 1.0 falls in the top bin, not outside
    top = binned_metrics(
        "classification", labels, prob, np.where(labels == 1, 1.0, np.nan), IDENTITY_EDGES
    )
    assert [(r["lo"], r["n"]) for r in top] == [(0.9, 4)]
