import csv
import json
import math

import pytest
import torch
from conftest import KmerFakeStore, write_related_dataset

from embedhead.errors import ConfigError, IncompatibleError, InputError
from embedhead.experiments.experiment import load_spec, parse_spec, run_experiment

CONFIG = {"head": "pooled", "epochs": 4, "hidden_sizes": [16], "patience": 0, "lr": 0.01}


@pytest.fixture(scope="module")
def species(tmp_path_factory):
    root = tmp_path_factory.mktemp("species")
    for name, seed, rate in (("chicken", 1, 0.05), ("zebrafish", 2, 0.2)):
        write_related_dataset(root / name, n_positives=30, mutation_rate=rate, seed=seed)
    return root


def _spec_file(root, **extra):
    spec = {
        "datasets": {
            name: {"dataset": name, "store": f"{name}.fake"} for name in ("chicken", "zebrafish")
        },
        "repeats": 3,
        "config": CONFIG,
        **extra,
    }
    path = root / "experiment.json"
    path.write_text(json.dumps(spec))
    return path


def _opener(root):
    stores = {}

    def open_fake(path):
        name = path.name.split(".")[0]
        if name not in stores:
            stores[name] = KmerFakeStore(root / name)
        return stores[name]

    return open_fake


def test_experiment_tables(species, tmp_path):
    spec = load_spec(
        _spec_file(species, tasks=["classification", "regression"], train_sizes=[6, 10_000])
    )
    result = run_experiment(spec, tmp_path / "exp", open_store_fn=_opener(species))
    res = result.results
    # one per-species table per task; one row per species with mean and std over repeats
    assert [t["task"] for t in res["per_species"]] == ["classification", "regression"]
    cls = res["per_species"][0]
    assert [r["species"] for r in cls["rows"]] == ["chicken", "zebrafish"]
    for row in cls["rows"]:
        acc = row["metrics"]["accuracy"]
        assert len(acc["values"]) == 3 and row["n_repeats"] == 3
        assert acc["mean"] == pytest.approx(sum(acc["values"]) / 3)
        assert acc["std"] == pytest.approx(float(torch.tensor(acc["values"]).std()), abs=1e-6)
    assert {"mse", "r2", "pearson"} <= set(res["per_species"][1]["rows"][0]["metrics"])
    # cross-species: 2x2 per task, diagonal = own test metric
    cross = res["cross_species"][0]
    assert cross["species"] == ["chicken", "zebrafish"] and len(cross["matrix"]) == 2
    assert cross["matrix"][0][0] == pytest.approx(cls["rows"][0]["metrics"]["accuracy"]["mean"])
    assert all(0.0 <= v <= 1.0 for row in cross["matrix"] for v in row)
    # learning curve: the requested size plus the full training set; impossible size skipped
    sizes = {(p["species"], p["task"], p["train_size"]) for p in res["learning_curve"]}
    assert ("chicken", "classification", 6) in sizes and ("chicken", "classification", 20) in sizes
    assert any("10000" in s for s in res["skipped"])
    # files
    out = tmp_path / "exp"
    rows = list(csv.DictReader((out / "per_species_classification.csv").open()))
    assert [r["species"] for r in rows] == ["chicken", "zebrafish"]
    assert math.isclose(
        float(rows[0]["accuracy_mean"]), cls["rows"][0]["metrics"]["accuracy"]["mean"]
    )
    assert (out / "cross_species_regression.csv").is_file()
    assert (out / "learning_curve.csv").is_file()
    md = (out / "experiment.md").read_text()
    assert "| chicken | 3 |" in md and "±" in md
    report = (out / "report.md").read_text()
    assert "Per-species test metrics" in report and "Cross-species accuracy" in report
    assert result.report.plots_skipped or result.report.plots
    assert set(res["roc"]) == {"chicken", "zebrafish"}


def test_baselines_inside_experiment(species, tmp_path):
    spec = load_spec(
        _spec_file(species, repeats=1, baselines=True, cross_species=False, random_backbone=False)
    )
    result = run_experiment(spec, tmp_path / "exp", open_store_fn=_opener(species))
    assert result.results["cross_species"] == []
    assert result.results["learning_curve"] == []  # no train_sizes asked
    for name in ("chicken", "zebrafish"):
        payload = json.loads(
            (
                tmp_path / "exp" / "baselines" / f"{name}-classification" / "baselines.json"
            ).read_text()
        )
        models = {"kmer", "gc", "length", "kmer_gc_length", "aligner"}
        assert {r["model"] for r in payload["results"]} == models
        # the head and every baseline side by side, the same test metrics, time per pair
        (table,) = [t for t in result.results["beside_head"] if t["species"] == name]
        assert table["rows"][0]["model"] == "head (mean of 1)"
        assert {r["model"] for r in table["rows"][1:]} == models
        by_model = {r["model"]: r for r in table["rows"]}
        aligner = next(r for r in payload["results"] if r["model"] == "aligner")
        assert by_model["aligner"]["metrics"]["roc_auc"] == aligner["test"]["roc_auc"]
        head_row = result.results["per_species"][0]["rows"][["chicken", "zebrafish"].index(name)]
        assert (
            by_model["head (mean of 1)"]["metrics"]["accuracy"]
            == (head_row["metrics"]["accuracy"]["mean"])
        )
        assert all(r["seconds_per_pair"] > 0 for r in table["rows"])
    report = (tmp_path / "exp" / "report.md").read_text()
    assert "Baselines" in report and "head beside baselines" in report
    assert "head beside baselines" in (tmp_path / "exp" / "experiment.md").read_text()


def test_cross_species_refuses_different_backbones(species, tmp_path):
    stores = {
        "chicken": KmerFakeStore(
            species / "chicken", {"name": "a", "weight_hash": "1", "config": {}}
        ),
        "zebrafish": KmerFakeStore(
            species / "zebrafish", {"name": "b", "weight_hash": "2", "config": {}}
        ),
    }
    spec = load_spec(_spec_file(species, repeats=1))
    with pytest.raises(IncompatibleError, match="backbone"):
        run_experiment(spec, tmp_path / "exp", open_store_fn=lambda p: stores[p.name.split(".")[0]])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "'datasets'"),
        ({"datasets": {"a": {"dataset": "x"}}}, "needs 'dataset' and 'store'"),
        ({"datasets": {"a": {"dataset": "x", "store": "y"}}, "tasks": ["ranking"]}, "'tasks'"),
        ({"datasets": {"a": {"dataset": "x", "store": "y"}}, "repeats": 0}, "'repeats'"),
        ({"datasets": {"a": {"dataset": "x", "store": "y"}}, "colour": 1}, "unknown key"),
        ({"datasets": {"a": {"dataset": "x", "store": "y"}}, "config": {"lr": -1}}, "lr"),
        ({"datasets": {"a": {"dataset": "x", "store": "y"}}, "repeats": True}, "'repeats'"),
        ({"datasets": {"a": {"dataset": "x", "store": "y"}}, "train_sizes": [True]}, "train_s"),
        ({"datasets": {"a": {"dataset": "x", "store": "y"}}, "config": {"dropout": "0.1"}}, "drop"),
        ({"datasets": {"a": {"dataset": "x", "store": "y"}}, "config": {"epochs": True}}, "epoch"),
    ],
)
def test_bad_experiment_files(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_spec(data, tmp_path, "exp.json")
    assert "exp.json" in str(err.value)


def test_yaml_experiment_file_and_config_file(tmp_path):
    (tmp_path / "best.json").write_text(json.dumps({"lr": 0.002, "dropout": 0.3, "_sweep": {}}))
    (tmp_path / "exp.yaml").write_text(
        "datasets:\n  a: {dataset: ds, store: s.zarr}\nconfig_file: best.json\n"
        "config: {epochs: 2}\nrepeats: 2\n"
    )
    spec = load_spec(tmp_path / "exp.yaml")
    assert spec.overrides == {"lr": 0.002, "dropout": 0.3, "epochs": 2}
    assert spec.species[0].dataset == tmp_path / "ds" and not spec.cross_species


def test_missing_dataset_or_store_names_the_experiment_file(species, tmp_path):
    spec = load_spec(_spec_file(species, repeats=1))
    missing = parse_spec(
        {"datasets": {"cod": {"dataset": "nowhere", "store": "cod.zarr"}}}, species, "exp.json"
    )
    with pytest.raises(ConfigError, match=r"exp\.json: datasets\.cod\.dataset: .*nowhere"):
        run_experiment(missing, tmp_path / "a")
    assert not (tmp_path / "a").exists()  # nothing written for a spec that cannot run

    def no_store(path):
        raise InputError("embedding store not found", path)

    with pytest.raises(ConfigError, match=r"experiment\.json: datasets\.chicken\.store: .*fake"):
        run_experiment(spec, tmp_path / "b", open_store_fn=no_store)
