"""--preset thesis: every value the thesis states, applied under --config and flags."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from embedhead.cli.main import main
from embedhead.dataset import load_dataset
from embedhead.errors import ConfigError
from embedhead.heads.data import load_head_data
from embedhead.heads.models import HeadConfig, build_head
from embedhead.heads.presets import (
    PRESETS,
    THESIS_SPLIT_FRACTIONS,
    expand_preset,
    thesis_dataset_differences,
)
from embedhead.heads.train import TrainConfig, fit, make_configs

torch.set_num_threads(1)


def test_thesis_preset_gives_the_thesis_hyperparameters():
    head, train = make_configs(256, {"preset": "thesis"})
    assert head.kind == "thesis" and train.head == "thesis"
    assert head.channels == 256  # conv channels = d_model
    assert head.hidden_sizes == (256, 256)
    assert head.dropout == 0.5
    assert train.task == "classification"  # BCE
    assert train.epochs == 10 and train.batch_size == 16
    assert train.weight_decay == 0.0 and train.lr == 1e-3
    assert train.patience == 0 and train.keep == "last"
    assert THESIS_SPLIT_FRACTIONS == (0.7, 0.15, 0.15)
    # the built head really has d_model conv channels and two 256-wide fc layers
    module = build_head(head)
    assert module.conv.out_channels == 256
    widths = [m.out_features for m in module.mlp.hidden if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 256]
    # the defaults are not the thesis's (so the preset changes something)
    default_head, default_train = make_configs(256, {})
    assert default_head.hidden_sizes != head.hidden_sizes
    assert (default_train.epochs, default_train.keep) != (train.epochs, train.keep)


def test_preset_sits_under_other_overrides_and_unknown_names_fail():
    head, train = make_configs(8, {"epochs": 3, "preset": "thesis", "hidden_sizes": [4]})
    assert train.epochs == 3 and head.hidden_sizes == (4,)
    assert train.batch_size == 16  # still the preset's
    assert expand_preset({"lr": 0.1}) == {"lr": 0.1}
    assert "preset" not in expand_preset({"preset": "thesis"})
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        make_configs(8, {"preset": "nope"})
    assert isinstance(PRESETS["thesis"], type(PRESETS))  # read-only mapping


def test_dataset_differences_name_each_departure():
    thesis = {"split_fractions": [0.7, 0.15, 0.15], "negatives": "adjacent", "length_match": 0.0}
    assert thesis_dataset_differences(thesis) == []
    notes = thesis_dataset_differences(
        {"split_fractions": [0.8, 0.1, 0.1], "negatives": "swap", "length_match": 0.1}
    )
    assert len(notes) == 3
    assert "0.8" in notes[0] and "'swap'" in notes[1] and "0.1" in notes[2]


def test_keep_last_keeps_the_final_epoch_weights(tiny_dataset_dir, make_signal_store):
    dataset = load_dataset(tiny_dataset_dir)
    store = make_signal_store(dataset, d_model=6, noise=0.2)
    data = load_head_data(dataset, store, kind="thesis", task="classification", device="cpu")
    head = HeadConfig(d_model=6, conv_channels=None, hidden_sizes=(8,), dropout=0.0)
    # a learning rate high enough that validation loss does not fall monotonically
    kw = {"epochs": 8, "lr": 0.3, "patience": 0, "device": "cpu", "batch_size": 4}
    last = fit(head, TrainConfig(keep="last", **kw), data)
    best = fit(head, TrainConfig(keep="best", **kw), data)
    losses = [row["val_loss"] for row in last.history]
    assert last.history == best.history  # same training, only the kept weights differ
    assert last.best_epoch == 8
    assert last.metrics["val"]["loss"] == pytest.approx(losses[-1], rel=1e-5)
    assert best.best_epoch == int(np.argmin(losses)) + 1
    assert best.metrics["val"]["loss"] == pytest.approx(min(losses), rel=1e-5)
    assert last.head.conv.out_channels == 6
    with pytest.raises(ConfigError, match="keep must be one of"):
        TrainConfig(keep="first")


def test_cli_train_preset_writes_the_thesis_config(tiny_dataset_dir, heads_tiny_store, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(tiny_dataset_dir, ds)
    info = json.loads((ds / "dataset.json").read_text())
    info["parameters"] = {"split_fractions": [0.7, 0.15, 0.15], "negatives": "swap"}
    (ds / "dataset.json").write_text(json.dumps(info))
    out = tmp_path / "run"
    args = ["train", str(ds), "--store", str(heads_tiny_store), "--out", str(out)]
    flags = ["--preset", "thesis", "--epochs", "2", "--device", "cpu", "-q"]
    result = CliRunner().invoke(main, [*args, *flags], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == 2  # the flag wins over the preset
    assert config["train"]["batch_size"] == 16 and config["train"]["keep"] == "last"
    assert config["head"]["hidden_sizes"] == [256, 256]
    assert config["head"]["conv_channels"] is None
    assert "kept epoch 2 of 2 (last)" in result.output
    # a dataset made with swap negatives is named as a departure from the thesis (only that)
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: --preset thesis, but the dataset has negatives 'swap' (thesis: 'adjacent',"
        " the next pair in file order)"
    ]


def test_experiment_spec_and_sweep_base_take_the_preset(tmp_path):
    from embedhead.experiments.experiment import parse_spec
    from embedhead.experiments.sweep import params_to_overrides

    data = {
        "datasets": {"chicken": {"dataset": "ds", "store": "s.zarr"}},
        "preset": "thesis",
        "config": {"epochs": 2},
    }
    spec = parse_spec(data, tmp_path, "exp.json")
    head, train = make_configs(8, {**spec.overrides, "task": "regression"})
    assert train.epochs == 2 and train.batch_size == 16 and head.hidden_sizes == (256, 256)
    assert train.task == "regression"  # the experiment's task wins over the preset's
    with pytest.raises(ConfigError, match=r"exp\.json: config: unknown preset"):
        parse_spec({**data, "preset": "other"}, tmp_path, "exp.json")
    # a sweep's "units" shorthand keeps the preset's two hidden layers
    overrides = params_to_overrides({"units": 64}, {"preset": "thesis"})
    assert make_configs(8, overrides)[0].hidden_sizes == (64, 64)
