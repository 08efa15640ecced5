import importlib.util
import json

import pytest
from click.testing import CliRunner

from embedhead.cli.main import main


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def sweep_dir(related_dataset_dir, related_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_sweep") / "sweep"
    result = _invoke(
        "sweep",
        related_dataset_dir,
        "--store",
        related_store,
        "--out",
        out,
        "--trials",
        3,
        "--head",
        "pooled",
        "--epochs",
        3,
        "--workers",
        2,
        "--seed",
        4,
    )
    assert result.exit_code == 0, result.output
    assert "3 trained, 0 resumed" in result.output
    return out


def test_sweep_cli_writes_results_and_resumes(sweep_dir, related_dataset_dir, related_store):
    for name in ("sweep.json", "sweep.csv", "trials.jsonl", "best.json", "sweep_spec.json"):
        assert (sweep_dir / name).is_file(), name
    again = _invoke(
        "sweep",
        related_dataset_dir,
        "--store",
        related_store,
        "--out",
        sweep_dir,
        "--trials",
        3,
        "--head",
        "pooled",
        "--epochs",
        3,
        "--workers",
        2,
        "--seed",
        4,
    )
    assert again.exit_code == 0, again.output
    assert "0 trained, 3 resumed" in again.output


def test_train_reuses_best_config(sweep_dir, related_dataset_dir, related_store, tmp_path):
    best = json.loads((sweep_dir / "best.json").read_text())
    result = _invoke(
        "train",
        related_dataset_dir,
        "--store",
        related_store,
        "--out",
        tmp_path / "run",
        "--config",
        sweep_dir / "best.json",
    )
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["lr"] == best["lr"] and config["train"]["head"] == "pooled"
    assert config["head"]["hidden_sizes"] == best["hidden_sizes"]
    # same config, same seed, same data: the sweep's validation metric is reproduced
    assert run["metrics"]["val"]["roc_auc"] == pytest.approx(best["_sweep"]["val_mean"])


def test_sweep_cli_bad_space_names_the_file(related_dataset_dir, related_store, tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"dist": "gaussian", "low": 1, "high": 2}}))
    result = CliRunner().invoke(
        main,
        [
            "sweep",
            str(related_dataset_dir),
            "--store",
            str(related_store),
            "--out",
            str(tmp_path / "s"),
            "--space",
            str(space),
        ],
    )
    assert result.exit_code == 1
    assert str(space) in result.output and "unknown dist" in result.output
    assert not (tmp_path / "s" / "trials.jsonl").exists()


def test_baselines_cli(related_dataset_dir, tmp_path):
    result = _invoke("baselines", related_dataset_dir, "--out", tmp_path / "b", "--k", "2,3,4")
    assert result.exit_code == 0, result.output
    assert "| kmer |" in result.output
    payload = json.loads((tmp_path / "b" / "baselines.json").read_text())
    assert payload["results"][0]["extra"]["ks"] == [2, 3, 4]
    bad = CliRunner().invoke(
        main, ["baselines", str(related_dataset_dir), "--out", str(tmp_path / "c"), "--k", "two"]
    )
    assert bad.exit_code == 1 and "--k must be" in bad.output


def test_experiment_and_report_cli(related_dataset_dir, related_store, tmp_path):
    spec = {
        "datasets": {
            "a": {"dataset": str(related_dataset_dir), "store": str(related_store)},
            "b": {"dataset": str(related_dataset_dir), "store": str(related_store)},
        },
        "repeats": 2,
        "config": {"head": "pooled", "epochs": 2},
    }
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(spec))
    result = _invoke("experiment", path, "--out", tmp_path / "exp", "-q")
    assert result.exit_code == 0, result.output
    assert "report:" in result.output
    rows = json.loads((tmp_path / "exp" / "experiment.json").read_text())["per_species"][0]["rows"]
    assert [r["species"] for r in rows] == ["a", "b"]
    # same data and seeds for both "species": identical rows, and a symmetric matrix
    assert rows[0]["metrics"] == rows[1]["metrics"]
    report = _invoke("report", tmp_path / "exp", "--out", tmp_path / "r.md", "--no-plots")
    assert report.exit_code == 0, report.output
    assert "Plots skipped (disabled)" in (tmp_path / "r.md").read_text()
    with_plots = _invoke("report", tmp_path / "exp", "--out", tmp_path / "p.md")
    assert with_plots.exit_code == 0, with_plots.output
    if importlib.util.find_spec("matplotlib") is not None:  # the `plots` extra
        assert "plot(s) in" in with_plots.output
        assert any((tmp_path / "plots").glob("*.png"))
    else:
        assert "plots skipped" in with_plots.output
    assert "## Experiment" in (tmp_path / "r.md").read_text()
    empty = CliRunner().invoke(main, ["report", str(tmp_path / "nothing")])
    assert empty.exit_code == 1 and "not a results folder" in empty.output


def test_a_file_in_the_way_of_out_is_a_clear_error(
    sweep_dir, related_dataset_dir, related_store, tmp_path
):
    blocker = tmp_path / "taken.txt"
    blocker.write_text("not a folder\n")
    spec = tmp_path / "exp.json"
    spec.write_text(
        json.dumps({"datasets": {"a": {"dataset": str(related_dataset_dir), "store": "x.zarr"}}})
    )
    commands = [
        ["sweep", related_dataset_dir, "--store", related_store, "--out", blocker, "--trials", 1],
        ["baselines", related_dataset_dir, "--out", blocker, "--k", 2],
        ["experiment", spec, "--out", blocker],
        ["report", sweep_dir, "--out", tmp_path],  # --out names the report FILE
    ]
    for args in commands:
        result = _invoke(*args)
        assert result.exit_code == 1, (args[0], result.output)
        assert result.output.startswith("Error: ") and "folder" in result.output, result.output
    assert blocker.read_text() == "not a folder\n"


def test_sweep_where_every_trial_fails_exits_non_zero(related_dataset_dir, related_store, tmp_path):
    config = tmp_path / "too_big.json"
    config.write_text(json.dumps({"train_size": 10**6, "head": "pooled", "epochs": 1}))
    result = _invoke(
        "sweep", related_dataset_dir, "--store", related_store, "--out", tmp_path / "sw",
        "--config", config, "--trials", 2, "--workers", 1, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "FAILED (train_size 1000000 exceeds" in result.output
    assert "Error: no best config (2 trial(s) failed): train_size" in result.output
    assert not (tmp_path / "sw" / "best.json").exists()
