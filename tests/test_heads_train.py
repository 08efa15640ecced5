import json

import numpy as np
import pytest
import torch

from embedhead.dataset import Dataset, load_dataset
from embedhead.errors import ConfigError, InputError
from embedhead.heads.config import HeadConfig
from embedhead.heads.data import load_head_data
from embedhead.heads.run import load_run
from embedhead.heads.train import (
    NonFiniteLossError,
    TrainConfig,
    fit,
    load_config_overrides,
    make_configs,
    train_head,
    train_repeats,
)

SMALL = HeadConfig(d_model=6, conv_channels=8, hidden_sizes=(16, 8), dropout=0.1)


@pytest.fixture(scope="module")
def dataset(tiny_dataset_dir):
    return load_dataset(tiny_dataset_dir)


@pytest.fixture(scope="module")
def store(dataset, make_signal_store):
    return make_signal_store(dataset, d_model=6, noise=0.2)


def _data(dataset, store, kind="thesis", task="classification"):
    return load_head_data(dataset, store, kind=kind, task=task, device="cpu")


def _config(**kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("batch_size", 8)
    return TrainConfig(**kw)


@pytest.mark.parametrize("kind", ["thesis", "pooled"])
def test_head_overfits_a_tiny_separable_set(dataset, store, kind):
    data = _data(dataset, store, kind)
    train = data["train"]
    # evaluate on the training pairs themselves: a head that can learn must fit them perfectly
    data.splits["val"] = train
    head = HeadConfig(d_model=6, kind=kind, conv_channels=8, hidden_sizes=(32, 16), dropout=0.0)
    result = fit(head, _config(head=kind, epochs=150, lr=1e-2, weight_decay=0.0, patience=0), data)
    assert result.metrics["val"]["accuracy"] == 1.0
    assert result.history[-1]["train_loss"] < 0.1 * result.history[0]["train_loss"]


def test_same_seed_same_metrics_other_seed_differs(dataset, store):
    data = _data(dataset, store)
    a = fit(SMALL, _config(epochs=4, seed=7), data)
    b = fit(SMALL, _config(epochs=4, seed=7), data)
    c = fit(SMALL, _config(epochs=4, seed=8), data)
    assert a.metrics == b.metrics and a.history == b.history
    for key, value in a.head.state_dict().items():
        assert torch.equal(value, b.head.state_dict()[key])
    assert a.history != c.history


def test_early_stopping_keeps_best_checkpoint(dataset, store):
    data = _data(dataset, store)
    result = fit(SMALL, _config(epochs=60, lr=5e-2, patience=2), data)
    losses = [row["val_loss"] for row in result.history]
    assert len(losses) < 60  # stopped early
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert len(losses) == result.best_epoch + 2
    assert result.metrics["val"]["loss"] == pytest.approx(min(losses), rel=1e-5)


def test_train_size_subsample(dataset, store):
    data = _data(dataset, store)
    result = fit(SMALL, _config(epochs=1, train_size=5), data)
    assert result.n_pairs["train"] == 5
    with pytest.raises(ConfigError, match="exceeds"):
        fit(SMALL, _config(epochs=1, train_size=10_000), data)


def test_train_head_writes_a_complete_run(dataset, store, tmp_path):
    out = tmp_path / "run"
    result = train_head(dataset, store, _config(epochs=3), out, head=SMALL)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "head.safetensors", "run.json"]
    info = json.loads((out / "run.json").read_text())
    assert info["dataset"]["fingerprint"] == dataset.fingerprint
    assert info["store"]["identity"] == store.identity
    assert info["seed"] == 0 and len(info["history"]) == 3
    assert set(info["metrics"]) == {"val", "test"}
    assert info["metrics"]["test"]["accuracy"] == pytest.approx(
        result.fit.metrics["test"]["accuracy"]
    )
    run = load_run(out)
    assert run.head_config == SMALL
    assert run.train_config == _config(epochs=3)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temp folder left


def test_regression_reports_original_units(dataset, store, tmp_path):
    head = HeadConfig(d_model=6, task="regression", conv_channels=4, hidden_sizes=(8,))
    result = train_head(
        dataset, store, _config(task="regression", epochs=3), tmp_path / "r", head=head
    )
    info = result.info
    scores = [p.norm_score for p in dataset.split("train") if p.label == 1]
    assert info["target_scale"]["mean"] == pytest.approx(np.mean(scores), rel=1e-5)
    assert {"mse", "rmse", "mae", "r2", "pearson", "spearman"} <= set(info["metrics"]["test"])
    assert info["metrics"]["test"]["n"] == sum(p.label for p in dataset.split("test"))


def test_nan_loss_is_a_clear_error_and_writes_nothing(dataset, store, dict_store_cls, tmp_path):
    arrays = {k: store.get(k) for k in store.ids()}
    first = dataset.split("train")[0].seq1
    arrays[first][0, 0] = np.nan
    with pytest.raises(NonFiniteLossError, match="NaN"):
        train_head(dataset, dict_store_cls(arrays), _config(epochs=2), tmp_path / "run", head=SMALL)
    assert list(tmp_path.iterdir()) == []


def test_empty_training_set_and_missing_store_sequences_write_nothing(
    dataset, store, dict_store_cls, tmp_path
):
    no_train = Dataset(
        dataset.path, dataset.info, tuple(p for p in dataset.pairs if p.split != "train")
    )
    with pytest.raises(InputError, match="split 'train' has no pairs"):
        train_head(no_train, store, _config(epochs=1), tmp_path / "a")
    partial = dict_store_cls({k: store.get(k) for k in store.ids()[1:]})
    with pytest.raises(InputError, match="store lacks 1 of"):
        train_head(dataset, partial, _config(epochs=1), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_existing_run_folder_is_not_overwritten(dataset, store, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        train_head(dataset, store, _config(epochs=1), tmp_path / "run")


def test_repeats_summarise_mean_and_std(dataset, store, tmp_path):
    result = train_repeats(
        dataset, store, _config(epochs=2, seed=3), tmp_path / "rep", 3, head=SMALL
    )
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == [
        "seed-3",
        "seed-4",
        "seed-5",
        "summary.json",
    ]
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    acc = [r.fit.metrics["test"]["accuracy"] for r in result.runs]
    assert summary["metrics"]["test"]["accuracy"]["mean"] == pytest.approx(np.mean(acc))
    assert summary["metrics"]["test"]["accuracy"]["std"] == pytest.approx(np.std(acc, ddof=1))
    assert summary["seeds"] == [3, 4, 5]
    with pytest.raises(InputError, match="repeated runs"):
        load_run(tmp_path / "rep")


def test_config_overrides_flat_nested_and_errors(tmp_path):
    flat = tmp_path / "best.json"
    flat.write_text(
        json.dumps({"lr": 0.003, "hidden_sizes": [64, 16], "kind": "pooled", "_trial": 7})
    )
    overrides = load_config_overrides(flat)
    head, train = make_configs(32, overrides)
    assert train.lr == 0.003 and train.head == "pooled"
    assert head.hidden_sizes == (64, 16) and head.kind == "pooled" and head.d_model == 32
    nested = tmp_path / "config.json"
    nested.write_text(json.dumps({"head": head.to_dict(), "train": train.to_dict()}))
    assert make_configs(32, load_config_overrides(nested)) == (head, train)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rate": 1}))
    with pytest.raises(ConfigError, match=r"bad\.json.*learning_rate"):
        load_config_overrides(bad)
    bad.write_text(json.dumps({"dropout": 2}))
    with pytest.raises(ConfigError, match="dropout"):
        load_config_overrides(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config_overrides(bad)
    bad.write_text("{")
    with pytest.raises(InputError, match=r"bad\.json:1"):
        load_config_overrides(bad)


@pytest.mark.parametrize(
    "overrides",
    [
        {"seed": "x"},
        {"seed": 1.5},
        {"seed": -1},
        {"epochs": True},
        {"train_size": True},
        {"lr": "0.1"},
        {"weight_decay": None},
        {"dropout": "0.1"},
        {"hidden_sizes": [True]},
        {"conv_channels": False},
    ],
)
def test_config_values_of_the_wrong_type_are_config_errors(overrides):
    # JSON config files give bools (an int subclass), strings and floats: refuse them here,
    # not with a torch/numpy traceback in the middle of training
    with pytest.raises(ConfigError):
        make_configs(8, overrides)
