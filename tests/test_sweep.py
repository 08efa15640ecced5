import csv
import json
import math
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from embedhead.errors import ConfigError, InputError
from embedhead.experiments.study import STUDY_FILE, open_storage
from embedhead.experiments.sweep import (
    DEFAULT_SPACE,
    SearchSpace,
    SweepConfig,
    load_space,
    params_to_overrides,
    run_sweep,
)
from embedhead.heads.train import NonFiniteLossError, fit, load_config_overrides, make_configs

BASE = {"head": "pooled", "epochs": 6, "hidden_sizes": [16], "patience": 0, "batch_size": 16}


@pytest.fixture
def store(related_fake_store):
    return related_fake_store


class CountingFit:
    """fit() that counts its calls and can simulate an interruption."""

    def __init__(self, interrupt_after=None):
        self.calls = 0
        self.interrupt_after = interrupt_after

    def __call__(self, head_config, train_config, data, progress=None):
        if self.interrupt_after is not None and self.calls >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls += 1
        return fit(head_config, train_config, data, progress=progress)


def test_default_space_is_the_thesis_space():
    for trial in range(150):
        p = DEFAULT_SPACE.sample(0, trial)
        assert 1e-5 <= p["lr"] <= 1e-3
        assert 1e-6 <= p["weight_decay"] <= 1e-2
        assert 0.2 <= p["dropout"] <= 0.5
        assert isinstance(p["layers"], int) and 1 <= p["layers"] <= 4
        assert isinstance(p["units"], int) and 256 <= p["units"] <= 1024
    p = DEFAULT_SPACE.sample(0, 3)
    overrides = params_to_overrides(p, {"epochs": 2})
    assert overrides["hidden_sizes"] == [p["units"]] * p["layers"]
    head, train = make_configs(8, overrides)
    assert train.lr == p["lr"] and head.dropout == p["dropout"] and train.epochs == 2


def test_trial_i_is_always_the_same_config():
    first = [DEFAULT_SPACE.sample(7, i) for i in range(5)]
    assert [DEFAULT_SPACE.sample(7, i) for i in range(5)] == first
    assert len({json.dumps(p, sort_keys=True) for p in first}) == 5
    assert DEFAULT_SPACE.sample(8, 0) != first[0]


def test_space_files_json_and_yaml(tmp_path):
    spec = {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-2}, "batch_size": [8, 16]}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    (tmp_path / "s.yaml").write_text(
        "lr: {dist: loguniform, low: 1.0e-4, high: 1.0e-2}\nbatch_size: [8, 16]\n"
    )
    a, b = load_space(tmp_path / "s.json"), load_space(tmp_path / "s.yaml")
    assert a.sample(0, 1) == b.sample(0, 1)
    assert a.sample(0, 1)["batch_size"] in (8, 16)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lr": {"dist": "normal", "low": 1, "high": 2}}, "unknown dist"),
        ({"learning_rate": [0.1]}, "unknown config key 'learning_rate'"),
        ({"lr": {"dist": "loguniform", "low": 0, "high": 1}}, "low > 0"),
        ({"task": ["regression"]}, "cannot vary"),
        ({"layers": {"dist": "randint", "low": 1.5, "high": 3}}, "integer bounds"),
    ],
)
def test_bad_space_is_a_clear_error(tmp_path, spec, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match=message) as err:
        load_space(path)
    assert str(path) in str(err.value)


def test_invalid_space_json_names_file_and_line(tmp_path):
    path = tmp_path / "space.json"
    path.write_text('{\n  "lr": [0.1,\n}\n')
    with pytest.raises(InputError, match=r"space\.json:\d+: invalid JSON"):
        load_space(path)


@pytest.mark.parametrize("store_kind", ["in-memory k-mer store", "zarr store, random backbone"])
def test_sweep_finds_the_planted_learning_rate_region(
    related_dataset_dir, related_fake_store, store_kind, request, tmp_path
):
    # only a learning rate high enough learns the separable toy set in a few epochs
    if store_kind.startswith("zarr"):
        store = request.getfixturevalue("related_store")
    else:
        store = related_fake_store
    space = SearchSpace.from_spec({"lr": {"dist": "loguniform", "low": 1e-7, "high": 1e-1}})
    config = SweepConfig(space=space, n_trials=6, seed=1, base=BASE, workers=1)
    result = run_sweep(related_dataset_dir, store, tmp_path / "sweep", config)
    lrs = [r["params"]["lr"] for r in result.ranked]
    assert min(lrs) < 1e-5 < 1e-3 < max(lrs)  # the space was explored on both sides
    assert result.best is not None
    assert result.best["params"]["lr"] >= 1e-3
    # k-mer vectors separate the toy set almost perfectly; random-backbone vectors less so
    assert result.best["val_mean"] >= (0.75 if store_kind.startswith("zarr") else 0.9)
    low = [r for r in result.ranked if r["params"]["lr"] < 1e-5]
    assert all(r["val_mean"] < result.best["val_mean"] - 0.2 for r in low)
    vals = [r["val_mean"] for r in result.ranked]
    assert vals == sorted(vals, reverse=True)
    # outputs: ranked JSON + CSV, best config reusable by `train --config`
    out = tmp_path / "sweep"
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [int(r["trial"]) for r in rows] == [r["trial"] for r in result.ranked]
    payload = json.loads((out / "sweep.json").read_text())
    assert payload["kind"] == "sweep" and payload["metric"] == "roc_auc"
    overrides = load_config_overrides(out / "best.json")
    assert overrides["lr"] == result.best["params"]["lr"]
    assert overrides["head"] == "pooled" and overrides["hidden_sizes"] == [16]


def test_resume_skips_finished_trials(related_dataset_dir, store, tmp_path):
    out = tmp_path / "sweep"
    space = SearchSpace.from_spec(
        {"lr": [1e-3, 1e-2], "dropout": {"dist": "uniform", "low": 0.0, "high": 0.3}}
    )
    base = {**BASE, "epochs": 2}
    counter = CountingFit()
    r1 = run_sweep(
        related_dataset_dir,
        store,
        out,
        SweepConfig(space=space, n_trials=3, repeats=2, base=base, workers=1),
        fit_fn=counter,
    )
    assert counter.calls == 6 and r1.n_trained == 3 and r1.n_resumed == 0
    counter = CountingFit()
    r2 = run_sweep(
        related_dataset_dir,
        store,
        out,
        SweepConfig(space=space, n_trials=4, repeats=2, base=base, workers=1),
        fit_fn=counter,
    )
    assert counter.calls == 2 and r2.n_trained == 1 and r2.n_resumed == 3
    assert len(r2.ranked) == 4 and all(r["n_repeats"] == 2 for r in r2.ranked)
    # same trial index -> same params as in the first run
    first = {r["trial"]: r["params"] for r in r1.ranked}
    assert all(r["params"] == first[r["trial"]] for r in r2.ranked if r["trial"] in first)
    counter = CountingFit()
    run_sweep(
        related_dataset_dir,
        store,
        out,
        SweepConfig(space=space, n_trials=4, repeats=2, base=base, workers=1),
        fit_fn=counter,
    )
    assert counter.calls == 0


def test_interrupted_sweep_continues(related_dataset_dir, store, tmp_path):
    out = tmp_path / "sweep"
    space = SearchSpace.from_spec({"lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-2}})
    config = SweepConfig(
        space=space, n_trials=4, base={**BASE, "epochs": 2}, workers=1, sampler="random"
    )
    with pytest.raises(KeyboardInterrupt):
        run_sweep(related_dataset_dir, store, out, config, fit_fn=CountingFit(interrupt_after=2))
    assert not (out / "sweep.json").exists()
    study = optuna.load_study(study_name="embedhead-sweep", storage=open_storage(out / STUDY_FILE))
    states = [t.state for t in study.trials]
    # two finished, the interrupted third discarded and its configuration enqueued again
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.FAIL, TrialState.WAITING]
    interrupted_lr = study.trials[2].params["lr"]
    with open(out / STUDY_FILE, "ab") as fh:  # a writer killed in the middle of a line
        fh.write(b'{"op_code": 5, "wor')
    counter = CountingFit()
    result = run_sweep(related_dataset_dir, store, out, config, fit_fn=counter)
    assert counter.calls == 2 and result.n_resumed == 2 and result.n_trained == 2
    assert sorted(r["trial"] for r in result.ranked) == [0, 1, 3, 4]
    assert {r["trial"]: r["params"]["lr"] for r in result.ranked}[3] == interrupted_lr


def test_resume_refuses_a_different_sweep(related_dataset_dir, store, tmp_path):
    out = tmp_path / "sweep"
    space = SearchSpace.from_spec({"lr": [1e-2]})
    run_sweep(
        related_dataset_dir,
        store,
        out,
        SweepConfig(space=space, n_trials=1, base={**BASE, "epochs": 1}, workers=1),
    )
    with pytest.raises(ConfigError, match="different sweep"):
        run_sweep(
            related_dataset_dir,
            store,
            out,
            SweepConfig(space=space, n_trials=1, seed=5, base={**BASE, "epochs": 1}, workers=1),
        )


def test_failed_trials_rank_last(related_dataset_dir, store, tmp_path):
    def flaky_fit(head_config, train_config, data, progress=None):
        if train_config.lr > 5e-3:
            raise NonFiniteLossError("training loss is nan at epoch 1")
        return fit(head_config, train_config, data, progress=progress)

    space = SearchSpace.from_spec({"lr": [1e-3, 1e-2]})
    result = run_sweep(
        related_dataset_dir,
        store,
        tmp_path / "s",
        SweepConfig(space=space, n_trials=6, base={**BASE, "epochs": 1}, workers=1),
        fit_fn=flaky_fit,
    )
    statuses = [r["status"] for r in result.ranked]
    assert "failed" in statuses and "ok" in statuses
    assert statuses == sorted(statuses, key=lambda s: s != "ok")
    failed = [r for r in result.ranked if r["status"] == "failed"]
    assert all(math.isnan(r["val_mean"]) and "nan" in r["error"] for r in failed)
    assert result.best is not None and result.best["params"]["lr"] == 1e-3


def test_worker_processes_match_sequential_results(related_dataset_dir, store, tmp_path):
    space = SearchSpace.from_spec({"lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-2}})
    base = {**BASE, "epochs": 2}
    seq = run_sweep(
        related_dataset_dir,
        store,
        tmp_path / "a",
        SweepConfig(space=space, n_trials=3, base=base, workers=1),
    )
    par = run_sweep(
        related_dataset_dir,
        store,
        tmp_path / "b",
        SweepConfig(space=space, n_trials=3, base=base, workers=2),
    )
    assert [(r["trial"], r["val_mean"]) for r in par.ranked] == [
        (r["trial"], r["val_mean"]) for r in seq.ranked
    ]


def test_space_wins_over_base_and_bad_counts():
    space = SearchSpace.from_spec({"lr": [0.1], "layers": [3]})
    over = params_to_overrides(space.sample(0, 0), {"lr": 0.2, "hidden_sizes": [8], "epochs": 3})
    assert over == {"lr": 0.1, "hidden_sizes": [8, 8, 8], "epochs": 3}
    with pytest.raises(ConfigError, match="trials"):
        SweepConfig(n_trials=0)


def test_unknown_metric_is_refused(related_dataset_dir, store, tmp_path):
    config = SweepConfig(n_trials=1, base={**BASE, "epochs": 1}, metric="auroc", workers=1)
    with pytest.raises(ConfigError, match="unknown classification metric 'auroc'"):
        run_sweep(related_dataset_dir, store, tmp_path / "s", config)
    assert not (tmp_path / "s").exists()


def test_regression_sweep_ranks_by_r2(related_dataset_dir, store, tmp_path):
    space = SearchSpace.from_spec({"lr": [1e-4, 1e-2]})
    base = {**BASE, "epochs": 2, "task": "regression"}
    result = run_sweep(
        related_dataset_dir,
        store,
        tmp_path / "s",
        SweepConfig(space=space, n_trials=3, base=base, workers=1),
    )
    assert result.metric == "r2"
    study = optuna.load_study(
        study_name="embedhead-sweep", storage=open_storage(tmp_path / "s" / STUDY_FILE)
    )
    assert study.direction.name == "MAXIMIZE"
    assert {"mse", "r2", "pearson"} <= set(study.trials[0].user_attrs["repeats"][0]["val"])
    r2 = [r["val_mean"] for r in result.ranked]
    assert r2 == sorted(r2, reverse=True)


@settings(max_examples=40, deadline=None)
@given(
    low=st.floats(1e-6, 1.0),
    span=st.floats(1.0, 1e3),
    ilow=st.integers(1, 50),
    iwidth=st.integers(0, 20),
    seed=st.integers(0, 2**31 - 1),
    trial=st.integers(0, 10_000),
)
def test_samples_stay_inside_the_declared_ranges(low, span, ilow, iwidth, seed, trial):
    space = SearchSpace.from_spec(
        {
            "lr": {"dist": "loguniform", "low": low, "high": low * span},
            "dropout": {"dist": "uniform", "low": low / 2, "high": low / 2 + 0.1},
            "layers": {"dist": "randint", "low": ilow, "high": ilow + iwidth},
            "batch_size": [8, 16, 32],
        }
    )
    p = space.sample(seed, trial)
    assert low * (1 - 1e-9) <= p["lr"] <= low * span * (1 + 1e-9)
    assert low / 2 <= p["dropout"] <= low / 2 + 0.1 + 1e-12
    assert isinstance(p["layers"], int) and ilow <= p["layers"] <= ilow + iwidth
    assert p["batch_size"] in (8, 16, 32)
    assert space.sample(seed, trial) == p


def test_workers_do_not_hang_after_the_parent_used_threads(related_dataset_dir, related_store):
    # libgomp hangs a forked child that enters an OpenMP parallel region once the parent has
    # used one; run in a subprocess so a regression fails on the timeout instead of hanging.
    script = f"""
import tempfile, torch
torch.set_num_threads(2)
x = torch.randn(1500, 1500)
(x @ x).sum()
from embedhead.experiments.sweep import SearchSpace, SweepConfig, run_sweep
space = SearchSpace.from_spec({{"lr": [1e-3, 1e-2]}})
base = {{"head": "thesis", "epochs": 1, "conv_channels": 8, "hidden_sizes": [8]}}
with tempfile.TemporaryDirectory() as tmp:
    r = run_sweep({str(related_dataset_dir)!r}, {str(related_store)!r}, tmp + "/s",
                  SweepConfig(space=space, n_trials=4, base=base, workers=2))
    print("trained", r.n_trained)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a hang kills the workers too
    )
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("sweep worker processes hung")
    assert proc.returncode == 0, err
    assert "trained 4" in out


def test_data_loaded_on_cuda_by_auto_runs_in_process(
    related_dataset_dir, store, tmp_path, monkeypatch
):
    # device 'auto' (the default) resolves to CUDA on a GPU machine: forked workers cannot use
    # CUDA tensors, so the sweep must look at where the data landed, not at the config string
    import dataclasses

    import embedhead.experiments.sweep as sweep
    import embedhead.heads.data as heads_data
    import embedhead.heads.train as heads_train

    real_load = heads_data.load_head_data

    def load_on_fake_cuda(*args, **kwargs):
        data = real_load(*args, **kwargs)
        cuda = torch.device("cuda")
        splits = {k: dataclasses.replace(v, device=cuda) for k, v in data.splits.items()}
        return dataclasses.replace(data, splits=splits)

    seen = []

    def record_workers(plan, data, fit_fn, workers, progress, batch_fn=None):
        seen.append(workers)

    monkeypatch.setattr(heads_train, "load_head_data", load_on_fake_cuda)
    monkeypatch.setattr(sweep, "_run_workers", record_workers)
    config = SweepConfig(n_trials=3, base={**BASE, "device": "auto"}, workers=4)
    run_sweep(related_dataset_dir, store, tmp_path / "sw", config)
    assert seen == [1]


def test_out_of_range_space_is_refused_before_anything_is_written(
    related_dataset_dir, store, tmp_path
):
    space = SearchSpace.from_spec({"dropout": {"dist": "uniform", "low": 0.5, "high": 1.5}})
    config = SweepConfig(space=space, n_trials=20, base=BASE, seed=1)
    with pytest.raises(ConfigError, match=r"dropout=1\.5 gives an invalid config"):
        run_sweep(related_dataset_dir, store, tmp_path / "sw", config)
    assert not (tmp_path / "sw").exists()  # no study that would refuse a fixed space


# ----------------------------------------------------------------------------- Optuna study
def _study(out):
    return optuna.load_study(study_name="embedhead-sweep", storage=open_storage(out / STUDY_FILE))


def _sweep_argv(dataset, store, out, *extra):
    return [sys.executable, "-m", "embedhead", "sweep", str(dataset), "--store", str(store),
            "--out", str(out), *[str(a) for a in extra]]  # fmt: skip


def test_random_sampler_gives_trial_i_its_seeded_config(related_dataset_dir, store, tmp_path):
    space = SearchSpace.from_spec({"lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-2}})
    config = SweepConfig(space=space, n_trials=3, base={**BASE, "epochs": 1}, workers=1,
                         sampler="random", seed=3)  # fmt: skip
    result = run_sweep(related_dataset_dir, store, tmp_path / "s", config)
    assert {r["trial"]: r["params"] for r in result.ranked} == {
        i: space.sample(3, i) for i in range(3)
    }


@pytest.mark.parametrize("batch_trials", [1, 2])
def test_pruned_trials_are_recorded_and_never_ranked(
    related_dataset_dir, store, tmp_path, batch_trials
):
    # lr 1e-7 learns nothing in a few epochs; once 5 trials finished, the median pruner stops
    # such trials after their second epoch (batched: members of one batch are pruned by the
    # trials finished before it, and the others of the batch go on)
    space = SearchSpace.from_spec({"lr": [1e-7, 3e-2]})
    base = {**BASE, "epochs": 6}
    config = SweepConfig(
        space=space, n_trials=10, base=base, workers=1, sampler="random", seed=3,
        batch_trials=batch_trials,
    )  # fmt: skip
    result = run_sweep(related_dataset_dir, store, tmp_path / "s", config)
    pruned = [r for r in result.ranked if r["status"] == "pruned"]
    assert pruned and all(r["params"]["lr"] == 1e-7 and r["rank"] is None for r in pruned)
    assert all(2 <= r["pruned_epoch"] < 6 for r in pruned), [r["pruned_epoch"] for r in pruned]
    ranked = [r for r in result.ranked if r["rank"] is not None]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert result.ranked[: len(ranked)] == ranked  # pruned after every finished trial
    assert len(result.ranked) == 10
    payload = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [h["trial"] for h in payload["history"]] == list(range(10))
    assert {h["status"] for h in payload["history"]} == {"ok", "pruned"}
    study = _study(tmp_path / "s")
    assert sum(t.state == TrialState.PRUNED for t in study.trials) == len(pruned)
    rows = list(csv.DictReader((tmp_path / "s" / "sweep.csv").open()))
    assert [r["status"] for r in rows].count("pruned") == len(pruned)


def test_grid_sampler_visits_every_point_once(related_dataset_dir, store, tmp_path):
    space = SearchSpace.from_spec({"lr": [1e-3, 1e-2], "layers": {"dist": "randint", "low": 1,
                                   "high": 2}})  # fmt: skip
    config = SweepConfig(space=space, n_trials=10, base={**BASE, "epochs": 1}, workers=1,
                         sampler="grid", pruner="none")  # fmt: skip
    result = run_sweep(related_dataset_dir, store, tmp_path / "s", config)
    points = sorted((r["params"]["lr"], r["params"]["layers"]) for r in result.ranked)
    assert points == [(1e-3, 1), (1e-3, 2), (1e-2, 1), (1e-2, 2)]
    with pytest.raises(ConfigError, match="grid needs choices"):
        run_sweep(related_dataset_dir, store, tmp_path / "g", SweepConfig(sampler="grid"))


def test_storage_url_shares_one_study_between_folders(related_dataset_dir, store, tmp_path):
    url = f"sqlite:///{tmp_path / 'hp.db'}"
    space = SearchSpace.from_spec({"lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-2}})
    base = {**BASE, "epochs": 1}

    def sweep(out, n):
        config = SweepConfig(space=space, n_trials=n, base=base, workers=1, storage=url,
                             study_name="shared")  # fmt: skip
        return run_sweep(related_dataset_dir, store, tmp_path / out, config)

    first = sweep("a", 2)
    second = sweep("b", 3)  # another folder (machine) on the same study: one more trial
    assert (first.n_trained, second.n_trained, second.n_resumed) == (2, 1, 2)
    assert len({r["trial"] for r in second.ranked}) == 3  # one study, three distinct trials
    assert not (tmp_path / "b" / STUDY_FILE).exists()
    with pytest.raises(ConfigError, match="different sweep"):
        run_sweep(related_dataset_dir, store, tmp_path / "c",
                  SweepConfig(space=space, n_trials=3, base={**base, "epochs": 2}, workers=1,
                              storage=url, study_name="shared"))  # fmt: skip


def test_three_processes_on_one_study_file_lose_and_repeat_nothing(
    related_dataset_dir, related_store, tmp_path
):
    out = tmp_path / "sw"
    space_file = tmp_path / "space.json"
    spec = {"lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-2},
            "dropout": {"dist": "uniform", "low": 0.0, "high": 0.3}}  # fmt: skip
    space_file.write_text(json.dumps(spec))
    argv = _sweep_argv(related_dataset_dir, related_store, out, "--space", space_file,
                       "--trials", 9, "--sampler", "random", "--pruner", "none", "--workers", 1,
                       "--head", "pooled", "--epochs", 2)  # fmt: skip
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outputs]
    # every trial trained by exactly one process (the progress lines of all three)
    trained = [
        int(line.split()[1].rstrip(":"))
        for _, err in outputs
        for line in err.splitlines()
        if line.startswith("trial ")
    ]
    study = _study(out)
    counted = [t for t in study.trials if "discarded" not in t.user_attrs]
    assert sorted(trained) == sorted(t.number for t in counted)
    assert len(counted) == 9 and all(t.state == TrialState.COMPLETE for t in counted)
    space = SearchSpace.from_spec(spec)
    assert all(t.user_attrs["params"] == space.sample(0, t.number) for t in counted)
    assert {t.user_attrs["discarded"] for t in study.trials if t not in counted} <= {"surplus"}
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 trained, 9 resumed" in again.stdout, again.stderr


@pytest.mark.parametrize("batch_trials", [1, 4])
def test_kill_9_then_resume_loses_and_duplicates_nothing(
    related_dataset_dir, related_store, tmp_path, batch_trials
):
    out = tmp_path / "sw"
    # batched: a second full batch follows the first, so a batch is still training when the
    # first finished ones are in (with 5 trials the last batch of one is gone in a blink)
    n = 5 if batch_trials == 1 else 2 * batch_trials + 1
    cfg = tmp_path / "base.json"
    cfg.write_text(json.dumps({**BASE, "epochs": 8}))
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps({"lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-2}}))
    argv = _sweep_argv(related_dataset_dir, related_store, out, "--config", cfg, "--trials", n,
                       "--space", space_file, "--sampler", "random", "--pruner", "none",
                       "--workers", 1, "--batch-trials", batch_trials)  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (out / STUDY_FILE).exists():
                trials = _study(out).trials
                done = [t for t in trials if t.state == TrialState.COMPLETE]
                running = [
                    t
                    for t in trials
                    if t.state == TrialState.RUNNING and "pid" in t.user_attrs and t.params
                ]  # fmt: skip  (training)
                asked = [t for t in trials if t.state == TrialState.RUNNING and not t.params]
                if len(done) >= 2 and running and not asked:  # (a batch: all its params drawn)
                    break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {t.number: (t.value, t.params) for t in _study(out).trials
              if t.state == TrialState.COMPLETE}  # fmt: skip
    assert len(before) >= 2
    resumed = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{n - len(before)} trained, {len(before)} resumed" in resumed.stdout
    study = _study(out)
    counted = [t for t in study.trials if "discarded" not in t.user_attrs]
    assert len(counted) == n and all(t.state == TrialState.COMPLETE for t in counted)
    assert {t.number: (t.value, t.params) for t in counted if t.number in before} == before
    interrupted = [t for t in study.trials if t.user_attrs.get("discarded") == "interrupted"]
    # one at a time: the trial killed mid-training; batched: every trial of the killed batch
    # not yet told (a kill while the batch's trials are told one by one hits several)
    assert len(interrupted) == 1 if batch_trials == 1 else 1 <= len(interrupted) <= batch_trials
    for lost in interrupted:  # each tried again exactly once, with its configuration
        retries = [t for t in counted if t.user_attrs.get("retry_of") == lost.number]
        assert len(retries) == 1 and retries[0].params == lost.params
    assert len({json.dumps(t.params, sort_keys=True) for t in counted}) == n
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
