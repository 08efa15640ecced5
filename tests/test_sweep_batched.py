"""Batched trials (embedhead.heads.batched): K heads in one pass == K lone trainings."""

import json
import math
import shutil
import socket
import subprocess
import sys

import optuna
import pytest
import torch
from click.testing import CliRunner
from conftest import write_related_dataset
from optuna.trial import TrialState

from embedhead.cli.main import main
from embedhead.dataset import load_dataset
from embedhead.errors import ConfigError
from embedhead.experiments.study import STUDY_FILE, open_storage, recover_interrupted
from embedhead.experiments.sweep import SearchSpace, SweepConfig, run_sweep
from embedhead.heads.batched import batch_key, fit_batched, group_members
from embedhead.heads.data import load_head_data
from embedhead.heads.train import NonFiniteLossError, fit, make_configs

TOL = 1e-5


@pytest.fixture(scope="module")
def data_of(related_dataset_dir, related_fake_store):
    cache = {}

    def load(kind, task="classification"):
        if (kind, task) not in cache:
            cache[kind, task] = load_head_data(
                load_dataset(related_dataset_dir), related_fake_store, kind=kind, task=task
            )
        return cache[kind, task]

    return load


def members(kind, task, configs):
    return [make_configs(64, {"head": kind, "task": task, **c}) for c in configs]


def assert_same_fit(got, want):
    assert got.best_epoch == want.best_epoch
    assert len(got.history) == len(want.history)
    for a, b in zip(got.history, want.history, strict=True):
        assert a["epoch"] == b["epoch"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=TOL, rel=TOL)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=TOL, rel=TOL)
    assert got.metrics.keys() == want.metrics.keys()
    for split in want.metrics:
        for key, value in want.metrics[split].items():
            if isinstance(value, float) and not math.isnan(value):
                assert got.metrics[split][key] == pytest.approx(value, abs=TOL, rel=TOL), (
                    split,
                    key,
                )
    if want.threshold is not None:
        assert got.threshold == pytest.approx(want.threshold, abs=TOL)
    for (name, a), (_, b) in zip(
        got.head.state_dict().items(), want.head.state_dict().items(), strict=True
    ):
        assert torch.allclose(a, b, atol=TOL, rtol=TOL), name


VARIED = [  # same depth, different widths, lr, weight decay, dropout, epochs, patience, keep
    {"lr": 3e-3, "weight_decay": 1e-4, "dropout": 0.3, "hidden_sizes": [32, 8]},
    {"lr": 1e-2, "weight_decay": 0.0, "dropout": 0.0, "hidden_sizes": [16, 16], "keep": "last"},
    {"lr": 1e-3, "weight_decay": 1e-2, "dropout": 0.5, "hidden_sizes": [8, 24], "epochs": 2},
    {"lr": 5e-3, "weight_decay": 1e-3, "dropout": 0.2, "hidden_sizes": [32, 4], "patience": 1},
]


@pytest.mark.parametrize(
    ("kind", "task", "extra"),
    [
        ("pooled", "classification", {}),
        ("thesis", "classification", {"conv_channels": 8}),
        ("thesis", "regression", {"conv_channels": 8, "kernel_size": 3}),
        ("pooled", "regression", {"threshold": "youden"}),
    ],
)
def test_a_batched_group_equals_lone_trainings(data_of, kind, task, extra):
    configs = [
        {"epochs": 4, "batch_size": 16, "seed": 3, "patience": 0, **extra, **c} for c in VARIED
    ]
    group = members(kind, task, configs)
    assert len({batch_key(h, t) for h, t in group}) == 1
    data = data_of(kind, task)
    got = fit_batched(group, data)
    want = [fit(h, t, data) for h, t in group]
    for g, w in zip(got, want, strict=True):
        assert not isinstance(g, Exception), g
        assert_same_fit(g, w)
    # the members really differ (different configs trained, not K copies of one)
    assert len({round(g.metrics["val"]["loss"], 6) for g in got}) == len(got)


def test_per_member_dropout_masks_are_the_lone_runs_masks(data_of):
    # one member with heavy dropout, alone vs with company: the company changes nothing
    group = members("pooled", "classification", [
        {"epochs": 2, "dropout": 0.6, "hidden_sizes": [32], "lr": 1e-2, "patience": 0},
        {"epochs": 2, "dropout": 0.1, "hidden_sizes": [8], "lr": 1e-3, "patience": 0},
    ])  # fmt: skip
    data = data_of("pooled")
    alone = fit_batched(group[:1], data)[0]
    together = fit_batched(group, data)[0]
    lone_fit = fit(*group[0], data)
    assert not isinstance(alone, Exception) and not isinstance(together, Exception)
    assert_same_fit(together, alone)
    assert_same_fit(together, lone_fit)
    # with dropout the run differs from a dropout-free one: the masks were really applied
    no_drop = fit(*members("pooled", "classification", [
        {"epochs": 2, "dropout": 0.0, "hidden_sizes": [32], "lr": 1e-2, "patience": 0}
    ])[0], data)  # fmt: skip
    assert abs(no_drop.history[0]["train_loss"] - together.history[0]["train_loss"]) > 1e-4


def test_pruned_and_diverging_members_leave_the_others_untouched(data_of):
    data = data_of("pooled")
    group = members("pooled", "classification", [
        {"epochs": 3, "lr": 3e-3, "hidden_sizes": [16], "patience": 0},
        {"epochs": 3, "lr": 1e30, "hidden_sizes": [16], "patience": 0},  # loss turns non-finite
        {"epochs": 3, "lr": 1e-2, "hidden_sizes": [16], "patience": 0},  # pruned after epoch 1
        {"epochs": 3, "lr": 1e-3, "hidden_sizes": [16], "patience": 0},
    ])  # fmt: skip
    seen: list[int] = []

    def prune_at_1(row):
        seen.append(row["epoch"])
        if row["epoch"] == 1:
            raise optuna.TrialPruned("pruned at epoch 1")

    got = fit_batched(group, data, progress=[None, None, prune_at_1, None])
    assert isinstance(got[1], NonFiniteLossError) and "lr" in str(got[1])
    assert isinstance(got[2], optuna.TrialPruned) and seen == [1]
    with pytest.raises(NonFiniteLossError):
        fit(*group[1], data)
    for k in (0, 3):
        assert not isinstance(got[k], Exception)
        assert_same_fit(got[k], fit(*group[k], data))


def test_members_of_different_shapes_are_refused_and_grouped_apart(data_of):
    group = members("pooled", "classification", [
        {"hidden_sizes": [16]}, {"hidden_sizes": [16, 4]}, {"hidden_sizes": [18]},
        {"hidden_sizes": [8], "seed": 1}, {"hidden_sizes": [19]}, {"hidden_sizes": [64]},
    ])  # fmt: skip
    with pytest.raises(ConfigError, match="batch key"):
        fit_batched(group[:2], data_of("pooled"))
    # same depth and seed, widths within MAX_PAD_RATIO: together; 64 would waste compute
    assert group_members(group, 8) == [[0, 2, 4], [5], [1], [3]]
    assert group_members(group, 2) == [[0, 2], [4], [5], [1], [3]]
    with pytest.raises(ConfigError):
        group_members(group, 0)


# ----------------------------------------------------------------------------- in a sweep
def _by_trial(result):
    return {r["trial"]: r for r in result.ranked}


def test_a_batched_sweep_gives_the_one_at_a_time_sweeps_results(
    related_dataset_dir, related_fake_store, tmp_path
):
    # widths vary (zero-padded), depth 1..2 (grouped apart), lr / weight decay / dropout vary
    space = SearchSpace.from_spec({
        "lr": {"dist": "loguniform", "low": 1e-3, "high": 3e-2},
        "weight_decay": {"dist": "loguniform", "low": 1e-6, "high": 1e-2},
        "dropout": {"dist": "uniform", "low": 0.0, "high": 0.5},
        "layers": {"dist": "randint", "low": 1, "high": 2},
        "units": {"dist": "randint", "low": 20, "high": 24},  # within MAX_PAD_RATIO
    })  # fmt: skip
    base = {"head": "pooled", "epochs": 3, "patience": 0, "batch_size": 16}

    def sweep(out, k):
        config = SweepConfig(space=space, n_trials=7, repeats=2, base=base, workers=1,
                             sampler="random", pruner="none", batch_trials=k)  # fmt: skip
        return run_sweep(related_dataset_dir, related_fake_store, tmp_path / out, config)

    one, batched = sweep("one", 1), sweep("batched", 4)
    payload = json.loads((tmp_path / "batched" / "sweep.json").read_text())
    assert payload["batch_trials"] == 4
    study = optuna.load_study(
        study_name="embedhead-sweep", storage=open_storage(tmp_path / "batched" / STUDY_FILE)
    )
    done = [t for t in study.trials if "discarded" not in t.user_attrs]
    assert [t.user_attrs.get("batched") for t in done] == [4] * 4 + [3] * 3  # asked at once
    a, b = _by_trial(one), _by_trial(batched)
    assert a.keys() == b.keys() == set(range(7))
    for trial in a:
        assert a[trial]["params"] == b[trial]["params"]
        assert b[trial]["status"] == "ok" and b[trial]["n_repeats"] == 2
        for key in ("val_mean", "val_std", "test_mean", "test_std"):
            assert b[trial][key] == pytest.approx(a[trial][key], abs=TOL), (trial, key)
    assert [r["trial"] for r in one.ranked] == [r["trial"] for r in batched.ranked]


def test_a_trial_alone_in_its_shape_trains_as_the_lone_run(
    related_dataset_dir, related_fake_store, tmp_path
):
    # units 8 or 32 (never within MAX_PAD_RATIO), 3 trials asked at once: seed 0 gives batches
    # (8, 32, 8) and (8, 8, 32), so trials 1 and 5 share their shape with no one
    space = SearchSpace.from_spec(
        {"lr": {"dist": "loguniform", "low": 1e-3, "high": 3e-2}, "units": [8, 32]}
    )
    base = {"head": "pooled", "epochs": 2, "patience": 0, "batch_size": 16, "hidden_sizes": [4]}
    stacked: list[int] = []

    def spy(group, data, progress):
        stacked.append(len(group))
        return fit_batched(group, data, progress=progress)

    def sweep(out, k):
        config = SweepConfig(space=space, n_trials=6, base=base, workers=1, sampler="random",
                             pruner="none", batch_trials=k)  # fmt: skip
        return run_sweep(related_dataset_dir, related_fake_store, tmp_path / out, config,
                         batch_fit_fn=spy)  # fmt: skip

    one, batched = _by_trial(sweep("one", 1)), _by_trial(sweep("batched", 3))
    assert [one[t]["params"]["units"] for t in range(6)] == [8, 32, 8, 8, 8, 32]
    assert stacked == [2, 2]  # only the pairs of one shape were stacked
    for trial in range(6):
        assert batched[trial]["params"] == one[trial]["params"]
        exact = trial in (1, 5)  # trained alone: the lone run itself, to the bit
        for key in ("val_mean", "test_mean"):
            want = one[trial][key] if exact else pytest.approx(one[trial][key], abs=TOL)
            assert batched[trial][key] == want, (trial, key)


# ----------------------------------------------------------------------------- inputs
def test_a_sweep_refuses_to_resume_on_another_backbone_or_dataset(
    related_dataset_dir, related_fake_store, related_store, tmp_path
):
    space = SearchSpace.from_spec({"lr": [1e-2, 3e-3]})
    base = {"head": "pooled", "epochs": 1, "hidden_sizes": [8]}
    out = tmp_path / "sweep"

    def sweep(store, n, dataset=related_dataset_dir):
        config = SweepConfig(space=space, n_trials=n, base=base, workers=1)
        return run_sweep(dataset, store, out, config)

    sweep(related_store, 2)
    payload = json.loads((out / "sweep.json").read_text())
    inputs = payload["inputs"]
    assert inputs["store"] == str(related_store)
    assert inputs["backbone"]["key"] and inputs["backbone"]["weight_hash"]
    assert len(inputs["dataset_fingerprint"]) == 64
    # another backbone (the k-mer stand-in) on the same dataset: refused, naming both
    with pytest.raises(ConfigError, match=r"\(backbone(, store options)? differ\)") as err:
        sweep(related_fake_store, 3)
    message = str(err.value)
    assert str(related_store) in message and "'kmer-fake'" in message
    assert inputs["backbone"]["key"][:12] in message
    # the same store moved elsewhere: the same embeddings, accepted
    moved = tmp_path / "moved.zarr"
    shutil.copytree(related_store, moved)
    assert sweep(moved, 3).n_trained == 1
    # another dataset (other pairs) with the same store: refused, naming both
    other = write_related_dataset(tmp_path / "other", seed=5)
    with pytest.raises(ConfigError, match="dataset fingerprint differ") as err:
        sweep(related_store, 4, dataset=other)
    assert str(other) in str(err.value) and str(related_dataset_dir) in str(err.value)
    # the same refusal from the command line: exit 1, the study left as it was
    before = (out / "sweep.json").read_bytes()
    result = CliRunner().invoke(main, ["sweep", str(related_dataset_dir), "--store",
                                       str(related_store), "--out", str(out), "--trials", "4",
                                       "--head", "pooled", "--epochs", "1", "--quiet"])  # fmt: skip
    assert result.exit_code == 1 and "differ" in result.output, result.output
    assert (out / "sweep.json").read_bytes() == before
    study = optuna.load_study(study_name="embedhead-sweep", storage=open_storage(out / STUDY_FILE))
    assert sum("discarded" not in t.user_attrs for t in study.trials) == 3


def test_a_killed_batch_retries_only_what_the_budget_needs(tmp_path):
    # budget 5: trials 0-3 done, trial 4 training and trial 5 (asked with it, beyond the budget)
    # both left RUNNING by a process killed with -9: only trial 4 is tried again
    study = optuna.create_study(storage=open_storage(tmp_path / STUDY_FILE), study_name="s")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for _ in range(4):
        trial = study.ask()
        trial.suggest_float("lr", 1e-3, 1e-2)
        study.tell(trial, 0.5)
    for _ in range(2):
        trial = study.ask()
        trial.suggest_float("lr", 1e-3, 1e-2)
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", gone.pid)
    assert recover_interrupted(study, budget=5) == 1
    reasons = [t.user_attrs.get("discarded") for t in study.trials]
    assert reasons == [None] * 4 + ["interrupted", "surplus", None]
    assert study.trials[6].state == TrialState.WAITING
    assert study.trials[6].system_attrs["fixed_params"] == study.trials[4].params
    assert recover_interrupted(study, budget=5) == 0  # nothing left to recover
