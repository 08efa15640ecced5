"""Issue 13 evaluation: random-backbone control, time per pair, calibration/bins in experiment
and report, cross-species test pairs seen in training removed; issue 14 item 10 dropped targets.
"""

import dataclasses
import json
import math

import pytest
from click.testing import CliRunner
from conftest import KmerFakeStore, write_related_dataset

from embedhead.cli.main import main
from embedhead.dataset import load_dataset, write_dataset
from embedhead.embed.random_store import random_backbone_store
from embedhead.errors import ConfigError
from embedhead.experiments.experiment import load_spec, run_experiment
from embedhead.report.render import write_report
from embedhead.store import open_store

CONFIG = {"head": "pooled", "epochs": 3, "hidden_sizes": [16], "patience": 0, "lr": 0.01}


def test_random_backbone_store_has_the_shape_not_the_weights(
    related_dataset_dir, related_store, tiny_dataset_dir, tmp_path
):
    with open_store(related_store) as real:
        attrs = dict(real.attrs)
        n_real = len(real)
    control = random_backbone_store(attrs, related_dataset_dir, tmp_path / "rb")
    assert control.built and control.seconds_per_nt and control.seconds_per_nt > 0
    with open_store(control.store) as store:
        ident = store.identity
        assert ident["random_init"] is True
        assert ident["config"] == attrs["backbone"]["config"]  # same architecture
        assert ident["weight_hash"] != attrs["backbone"]["weight_hash"]  # other weights
        assert len(store) == n_real and store.d_model == real.d_model
        assert store.attrs["dtype"] == attrs["dtype"]
        assert store.attrs["pooled_only"] == attrs["pooled_only"]
    # cached: a second call embeds nothing and keeps the first build's speed
    again = random_backbone_store(attrs, related_dataset_dir, tmp_path / "rb")
    assert not again.built and again.seconds_per_nt == control.seconds_per_nt
    # another dataset into the same folder is appended; the timing covers both builds
    timing = json.loads((tmp_path / "rb" / "timing.json").read_text())
    more = random_backbone_store(attrs, tiny_dataset_dir, tmp_path / "rb")
    after = json.loads((tmp_path / "rb" / "timing.json").read_text())
    new_nt = sum(len(seq) for _, seq in load_dataset(tiny_dataset_dir).sequences())
    assert more.built and after["nucleotides"] == timing["nucleotides"] + new_nt
    assert after["seconds"] > timing["seconds"]
    # a store without a recorded architecture is refused clearly
    with pytest.raises(ConfigError, match="does not record its backbone's architecture"):
        random_backbone_store({"backbone": {}}, related_dataset_dir, tmp_path / "x")


def test_experiment_reports_random_backbone_calibration_and_bins(
    related_dataset_dir, related_store, tmp_path
):
    spec_path = tmp_path / "exp.json"
    spec_path.write_text(
        json.dumps(
            {
                "datasets": {
                    "toy": {"dataset": str(related_dataset_dir), "store": str(related_store)}
                },
                "tasks": ["classification", "regression"],
                "repeats": 1,
                "random_backbone": True,
                "config": CONFIG,
            }
        )
    )
    messages: list[str] = []
    result = run_experiment(load_spec(spec_path), tmp_path / "out", progress=messages.append)
    res = result.results
    # one control per real store (species sharing a store share it), named after it
    control = tmp_path / "out" / "random_backbone" / related_store.name / "store.zarr"
    assert control.is_dir()
    # built once, reused by the second task
    assert sum("building the random-backbone store" in m for m in messages) == 1
    assert len(res["random_backbone"]) == 2
    for table in res["random_backbone"]:
        (row,) = table["rows"]
        assert row["store"] == str(control) and row["backbone"].startswith("random-")
        assert math.isfinite(
            row["metrics"][("accuracy" if table["task"] == "classification" else "mse")]["mean"]
        )
    for beside in res["beside_head"]:
        models = [r["model"] for r in beside["rows"]]
        assert models == ["head (mean of 1)", "random backbone (mean of 1)"]
        for r in beside["rows"]:
            assert 0 < r["seconds_per_pair"] < r["seconds_per_pair_with_embedding"]
    # calibration of classification, scatter of regression, bins for both
    curve = res["calibration"]["toy"]
    assert len(curve["bins"]) == 10 and sum(b["n"] for b in curve["bins"]) == curve["n"]
    head_row = res["per_species"][0]["rows"][0]
    assert curve["brier"] == pytest.approx(head_row["metrics"]["brier"]["mean"])
    scatter = res["scatter"]["toy"]
    assert len(scatter["true"]) == len(scatter["predicted"]) == scatter["n"]
    r2 = res["per_species"][1]["rows"][0]["metrics"]["r2"]["mean"]
    assert scatter["r2"] == pytest.approx(r2, nan_ok=True)  # toy targets are all equal: NaN
    test_scores = sorted(
        r.norm_score for r in load_dataset(related_dataset_dir).split("test") if r.label == 1
    )
    assert sorted(scatter["true"]) == pytest.approx(test_scores, rel=1e-6)
    tasks = {b["task"]: b for b in res["by_bin"]}
    n_test = head_row["n_pairs"]["test"]
    assert sum(r["n"] for r in tasks["classification"]["by_length"]) == n_test
    # identity: every positive has identity 0.9 (mutation rate 0.1): one bin, positives only
    (only,) = tasks["classification"]["by_identity"]
    assert (only["lo"], only["hi"]) == (0.9, 1.0) and only["n"] == n_test // 2
    assert res["dropped_non_finite"] == [
        {"species": "toy", "task": "regression", "dropped": {"train": 0, "val": 0, "test": 0}}
    ]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "random backbone (mean of 1)" in report and "ms/pair (with embedding)" in report
    assert "### Calibration" in report and "Brier" in report
    assert "predicted vs true norm_score" in report and "by identity" in report
    assert "by max length (nt)" in report
    names = {p.name.split("_")[0] for p in result.report.plots}
    assert result.report.plots_skipped or {"reliability", "scatter"} <= names


def test_cross_species_removes_test_pairs_seen_in_training(tmp_path):
    root = tmp_path
    write_related_dataset(root / "chicken", n_positives=30, seed=1)
    other = load_dataset(write_related_dataset(root / "zeb0", n_positives=30, seed=2))
    chicken = load_dataset(root / "chicken")
    # zebrafish's test split reuses 5 of chicken's training pairs (as hg38 sequences were)
    reused = [r for r in chicken.split("train") if r.label == 1][:5]
    records = list(other.pairs) + [
        dataclasses.replace(r, pair_id=f"reused{i}", split="test") for i, r in enumerate(reused)
    ]
    seqs = dict(other.sequences()) | dict(chicken.sequences())
    write_dataset(root / "zebrafish", seqs.values(), records, {"command": "test"})
    spec = {
        "datasets": {n: {"dataset": n, "store": f"{n}.fake"} for n in ("chicken", "zebrafish")},
        "repeats": 1,
        "config": CONFIG,
    }
    (root / "exp.json").write_text(json.dumps(spec))
    stores = {n: KmerFakeStore(root / n) for n in ("chicken", "zebrafish")}
    messages: list[str] = []
    result = run_experiment(
        load_spec(root / "exp.json"),
        root / "out",
        progress=messages.append,
        open_store_fn=lambda p: stores[p.name.split(".")[0]],
    )
    (cross,) = result.results["cross_species"]

    def expected_removed(a: str, b: str) -> tuple[int, int]:
        seen = {
            s
            for r in load_dataset(root / a).pairs
            if r.split in ("train", "val")
            for s in (r.seq1, r.seq2)
        }
        test = load_dataset(root / b).split("test")
        cut = sum(r.seq1 in seen or r.seq2 in seen for r in test)
        return cut, len(test) - cut

    assert cross["removed"][0][0] == cross["removed"][1][1] == 0  # the diagonal is untouched
    cut, kept = expected_removed("chicken", "zebrafish")
    assert cut >= 5 and (cross["removed"][0][1], cross["n_test"][0][1]) == (cut, kept)
    cut_back, kept_back = expected_removed("zebrafish", "chicken")
    assert (cross["removed"][1][0], cross["n_test"][1][0]) == (cut_back, kept_back)
    assert any(f"removed {cut} of {cut + kept} zebrafish test pair(s)" in m for m in messages)
    md = (root / "out" / "experiment.md").read_text()
    assert f"chicken → zebrafish: {cut} removed, {kept} kept" in md


def _with_nan_targets(src, out, n_nan):
    ds = load_dataset(src)
    done = 0
    records = []
    for r in ds.pairs:
        if r.label == 1 and r.split == "test" and done < n_nan:
            r = dataclasses.replace(r, score=math.nan, norm_score=math.nan)
            done += 1
        records.append(r)
    return write_dataset(out, (s for _, s in ds.sequences()), records, {"command": "test"})


def test_nan_targets_are_dropped_with_a_count(related_dataset_dir, related_store, tmp_path):
    ds = _with_nan_targets(related_dataset_dir, tmp_path / "ds", 3)
    runner = CliRunner()
    out = runner.invoke(
        main,
        ["baselines", str(ds), "--out", str(tmp_path / "b"), "--task", "regression",
         "--models", "length"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    payload = json.loads((tmp_path / "b" / "baselines.json").read_text())
    assert payload["results"][0]["extra"]["n_dropped_non_finite"] == {
        "train": 0,
        "val": 0,
        "test": 3,
    }
    assert "dropped 3 positive(s) with a NaN/inf norm_score" in out.output
    run = tmp_path / "run"
    trained = runner.invoke(
        main,
        ["train", str(ds), "--store", str(related_store), "--out", str(run), "--task",
         "regression", "--head", "pooled", "--epochs", "2"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    info = json.loads((run / "run.json").read_text())
    assert info["dropped_non_finite_targets"]["test"] == 3
    assert info["metrics"]["test"]["n_dropped_non_finite"] == 3
    assert info["metrics"]["val"]["n_dropped_non_finite"] == 0
    evaluated = runner.invoke(
        main, ["evaluate", str(run), "--dataset", str(ds), "--store", str(related_store), "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.output)
    assert metrics["n_dropped_non_finite"] == 3 and metrics["by_length"]


def test_baselines_with_store_add_head_and_random_backbone_rows(
    related_dataset_dir, related_store, tmp_path
):
    out = CliRunner().invoke(
        main,
        ["baselines", str(related_dataset_dir), "--out", str(tmp_path / "b"), "--models",
         "length,aligner", "--store", str(related_store), "--head", "pooled", "--config",
         str(_config_file(tmp_path))],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    payload = json.loads((tmp_path / "b" / "baselines.json").read_text())
    rows = {r["model"]: r for r in payload["results"]}
    assert list(rows) == ["length", "aligner", "head", "random_backbone"]
    head, control = rows["head"], rows["random_backbone"]
    assert control["extra"]["random_init"] is True and head["extra"]["random_init"] is True
    assert control["extra"]["backbone"] != head["extra"]["backbone"]
    for r in (head, control):
        assert 0 < r["extra"]["seconds_per_pair"] < r["extra"]["seconds_per_pair_with_embedding"]
        assert r["n_test"] == rows["length"]["n_test"]  # the same test pairs
    assert (tmp_path / "b" / "random_backbone" / "store.zarr").is_dir()
    md = (tmp_path / "b" / "baselines.md").read_text()
    assert "ms/pair (no embedding) | ms/pair (with embedding) |" in md
    assert "| random_backbone |" in md
    report = write_report(tmp_path / "b", plots=False).path.read_text()
    (line,) = [x for x in report.splitlines() if x.startswith("| random_backbone |")]
    with_embedding = line.strip("|").split("|")[-1].strip()
    assert float(with_embedding) == pytest.approx(
        1000 * control["extra"]["seconds_per_pair_with_embedding"], rel=0.01
    )
    # without --store the head options are refused (they would be silently ignored)
    bad = CliRunner().invoke(
        main,
        ["baselines", str(related_dataset_dir), "--out", str(tmp_path / "c"), "--head", "pooled"],
    )
    assert bad.exit_code != 0 and "give --store" in bad.output


def _config_file(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"epochs": 2, "hidden_sizes": [16], "patience": 0}))
    return path
