"""Decision thresholds: chosen on validation only, used by evaluate; Brier score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedhead.dataset import load_dataset
from embedhead.heads.data import load_head_data
from embedhead.heads.evaluate import evaluate_run
from embedhead.heads.metrics import choose_threshold, classification_metrics
from embedhead.heads.models import HeadConfig
from embedhead.heads.run import jsonable
from embedhead.heads.train import TrainConfig, fit, predict_source, train_head

torch.set_num_threads(1)

SMALL = HeadConfig(d_model=6, conv_channels=8, hidden_sizes=(16, 8), dropout=0.1)


def _brute(y, p, rule):
    best, best_t = -np.inf, 0.5
    for t in np.concatenate([[p.min() - 1e-6], (np.sort(p)[:-1] + np.sort(p)[1:]) / 2, [2.0]]):
        pred = p >= t
        if rule == "accuracy":
            v = np.mean(pred == (y == 1))
        else:
            v = pred[y == 1].mean() - pred[y == 0].mean()
        if v > best + 1e-12:
            best, best_t = v, t
    return best, best_t


@pytest.mark.parametrize("rule", ["accuracy", "youden"])
@pytest.mark.parametrize("seed", range(5))
def test_choose_threshold_reaches_the_best_value(rule, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    p = np.clip(0.3 * y + rng.normal(0.2, 0.2, 60), 0, 1)  # calibrated badly: best cut is not 0.5
    t = choose_threshold(y, p, rule)
    pred = p >= t
    value = (
        np.mean(pred == (y == 1))
        if rule == "accuracy"
        else pred[y == 1].mean() - pred[y == 0].mean()
    )
    assert value == pytest.approx(_brute(y, p, rule)[0])
    if rule == "accuracy":  # never below the accuracy at 0.5 on the pairs it was chosen on
        assert (
            classification_metrics(y, p, t)["accuracy"] >= classification_metrics(y, p)["accuracy"]
        )


def test_threshold_fallbacks_and_metric_keys():
    assert choose_threshold(np.array([1, 1]), np.array([0.2, 0.9]), "youden") == 0.5
    assert choose_threshold(np.array([0, 1]), np.array([0.1, 0.2]), "fixed") == 0.5
    # separable with every probability below 0.5: the tuned cut separates, 0.5 does not
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])
    t = choose_threshold(y, p)
    assert 0.2 < t < 0.3
    m = classification_metrics(y, p, t)
    assert m["accuracy"] == 1.0 and m["accuracy_at_0.5"] == 0.5 and m["threshold"] == t
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    with pytest.raises(ValueError, match="threshold rule"):
        choose_threshold(y, p, "f1")


def test_threshold_is_chosen_on_val_only(tiny_dataset_dir, make_signal_store, tmp_path):
    dataset = load_dataset(tiny_dataset_dir)
    store = make_signal_store(dataset, d_model=6, noise=0.6)
    data = load_head_data(dataset, store, kind="thesis", task="classification", device="cpu")
    config = TrainConfig(epochs=3, batch_size=8, device="cpu", seed=1)
    first = fit(SMALL, config, data)
    # the threshold is choose_threshold of the kept head's validation outputs
    val_out, _ = predict_source(first.head, data["val"], 128)
    assert first.threshold == choose_threshold(data["val"].pairs.targets, val_out, "accuracy")
    # replacing the test split (here by the training pairs) changes test metrics, not the cut
    data.splits["test"] = data["train"]
    second = fit(SMALL, config, data)
    assert second.threshold == first.threshold
    assert second.metrics["test"]["n"] != first.metrics["test"]["n"]
    assert second.metrics["test"]["threshold"] == first.threshold
    # ... while another validation split does change it (or at least is what it is chosen on)
    data.splits["val"] = data["train"]
    third = fit(SMALL, config, data)
    train_out, _ = predict_source(third.head, data["train"], 128)
    assert third.threshold == choose_threshold(data["train"].pairs.targets, train_out, "accuracy")


def test_run_json_stores_the_threshold_and_evaluate_uses_it(
    tiny_dataset_dir, make_signal_store, tmp_path
):
    dataset = load_dataset(tiny_dataset_dir)
    store = make_signal_store(dataset, d_model=6, noise=0.6)
    config = TrainConfig(epochs=3, batch_size=8, device="cpu", threshold="youden")
    result = train_head(dataset, store, config, tmp_path / "run", head=SMALL)
    assert result.info["threshold"] == {
        "value": result.fit.threshold,
        "rule": "youden",
        "chosen_on": "val",
    }
    metrics = evaluate_run(tmp_path / "run", dataset, store, "test", device="cpu")
    stored = jsonable(result.fit.metrics["test"])  # NaN (undefined) -> None, comparable
    assert {k: v for k, v in jsonable(metrics).items() if k in stored} == stored
    assert metrics["threshold"] == result.fit.threshold
