"""Committed format-1 archives (tests/data/archives/, made by make_archives.py) keep opening.

A store written by an older embedhead (zarr and h5) must give back the same ids, lengths,
embeddings and pooled vectors; a run folder must rebuild its head and evaluate to the same
metrics. A failure here means a format change: bump the format version and keep a reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from embedhead.dataset import load_dataset
from embedhead.heads.evaluate import evaluate_run
from embedhead.heads.predict import predict_pairs
from embedhead.heads.run import load_run
from embedhead.store import open_store

ARCHIVES = Path(__file__).resolve().parent / "data" / "archives"
EXPECTED = json.loads((ARCHIVES / "expected.json").read_text())


def test_store_archive_keeps_opening(suffix):
    with open_store(ARCHIVES / f"store{suffix}") as store:
        assert store.attrs["format_version"] == 1
        assert store.d_model == EXPECTED["d_model"]
        assert sorted(store.ids()) == EXPECTED["ids"]
        for sid in EXPECTED["ids"]:
            assert store.length(sid) == EXPECTED["lengths"][sid]
            emb = store.get(sid)
            assert emb.shape == (EXPECTED["lengths"][sid], EXPECTED["d_model"])
            np.testing.assert_array_equal(emb[-1].astype(float), EXPECTED["last_row"][sid])
            pooled = store.get_pooled([sid])[0].astype(float)
            np.testing.assert_allclose(pooled, EXPECTED["pooled"][sid], rtol=1e-6)


def test_run_archive_rebuilds_its_head_and_evaluates_the_same():
    run = load_run(ARCHIVES / "run")
    assert run.head_config.kind == "pooled" and run.head_config.d_model == EXPECTED["d_model"]
    metrics = evaluate_run(
        ARCHIVES / "run", ARCHIVES / "dataset", ARCHIVES / "store.h5", device="cpu"
    )
    for key, value in EXPECTED["evaluate_test"].items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(metrics[key])
        elif isinstance(value, float):
            assert metrics[key] == pytest.approx(value, rel=1e-5), key
        else:
            assert metrics[key] == value, key


def test_run_archive_predicts_the_same_scores():
    # every archived sequence is in the store, so no backbone is loaded ("unused" source)
    dataset = load_dataset(ARCHIVES / "dataset")
    seqs = dict(dataset.sequences())
    pairs = [(seqs[p.seq1], seqs[p.seq2]) for p in dataset.pairs]
    rows = predict_pairs(ARCHIVES / "run", "unused", pairs, ARCHIVES / "store.h5", device="cpu")
    assert [row.value for row in rows] == pytest.approx(EXPECTED["predict_all"], abs=1e-6)
