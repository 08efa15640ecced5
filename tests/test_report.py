import json
import sys
import types
from unittest import mock

import numpy as np
import pytest

from embedhead.errors import InputError
from embedhead.fileio import to_jsonable
from embedhead.report.render import write_report
from embedhead.stats import mean_std
from embedhead.tables import fmt, fmt_mean_std, markdown_table

SWEEP = {
    "kind": "sweep",
    "metric": "roc_auc",
    "best": {"trial": 1, "config": {"lr": 0.001}},
    "trials": [
        {
            "rank": 1,
            "trial": 1,
            "params": {"lr": 1e-3, "layers": 2},
            "val_mean": 0.9,
            "val_std": 0.01,
            "n_repeats": 2,
        },
        {
            "rank": 2,
            "trial": 0,
            "params": {"lr": 1e-5, "layers": 1},
            "val_mean": 0.6,
            "val_std": 0.02,
            "n_repeats": 2,
        },
    ],
}
EXPERIMENT = {
    "kind": "experiment",
    "per_species": [
        {
            "task": "classification",
            "metrics_order": ["accuracy", "f1"],
            "rows": [
                {
                    "species": "chicken",
                    "n_repeats": 3,
                    "metrics": {
                        "accuracy": {"mean": 0.91, "std": 0.02},
                        "f1": {"mean": 0.9, "std": 0.03},
                    },
                },
                {
                    "species": "zebrafish",
                    "n_repeats": 3,
                    "metrics": {
                        "accuracy": {"mean": 0.81, "std": 0.04},
                        "f1": {"mean": 0.8, "std": 0.05},
                    },
                },
            ],
        },
    ],
    "cross_species": [
        {
            "task": "classification",
            "metric": "accuracy",
            "species": ["chicken", "zebrafish"],
            "matrix": [[0.91, 0.7], [0.6, 0.81]],
        }
    ],
    "learning_curve": [
        {
            "species": "chicken",
            "task": "classification",
            "train_size": n,
            "metric": "accuracy",
            "mean": m,
            "std": 0.01,
        }
        for n, m in ((10, 0.6), (100, 0.8), (1000, 0.9))
    ],
    "roc": {"chicken": {"fpr": [0, 0.1, 1], "tpr": [0, 0.8, 1], "auc": 0.9}},
    "confusion_matrix": {"chicken": [[10, 2], [1, 12]]},
}
BASELINES = {
    "kind": "baselines",
    "results": [
        {
            "model": "kmer",
            "task": "classification",
            "chosen": {"C": 1.0},
            "test": {"accuracy": 0.7, "roc_auc": 0.75},
            "extra": {"roc": {"fpr": [0, 1], "tpr": [0, 1], "auc": 0.5}},
        }
    ],
}
RUN = {
    "seed": 0,
    "history": [
        {"epoch": 1, "train_loss": 0.7, "val_loss": 0.69, "val": {"accuracy": 0.5}},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.55, "val": {"accuracy": 0.7}},
    ],
    "metrics": {
        "val": {"accuracy": 0.7, "roc_auc": None, "confusion_matrix": [[3, 1], [1, 3]]},
        "test": {"accuracy": 0.75, "roc_auc": 0.8, "confusion_matrix": [[3, 1], [1, 3]]},
    },
}


@pytest.fixture
def results_dir(tmp_path):
    for sub, name, payload in (
        ("sweep", "sweep.json", SWEEP),
        ("exp", "experiment.json", EXPERIMENT),
        ("exp/baselines/chicken", "baselines.json", BASELINES),
        ("run", "run.json", RUN),
    ):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / sub / name).write_text(json.dumps(payload))
    return tmp_path


def test_report_without_matplotlib(results_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails like a missing extra
    report = write_report(results_dir)
    text = report.path.read_text()
    assert report.path == results_dir / "report.md"
    assert report.plots_skipped and report.plots == ()
    assert "Plots skipped (matplotlib is not installed)" in text
    assert not (results_dir / "plots").exists()
    # every source made it in, sweep first
    assert len(report.sources) == 4
    assert text.index("## Sweep") < text.index("## Experiment") < text.index("## Baselines")
    assert "| chicken | 3 | 0.9100 ± 0.0200 | 0.9000 ± 0.0300 |" in text
    assert "| zebrafish | 0.6000 | 0.8100 |" in text  # cross-species row
    assert "| 1 | 1 | 2 | 0.0010 | 0.9000 ± 0.0100 | 2 |" in text
    assert "| kmer | C=1 | 0.7000 |" in text
    assert "| val | 0.7000 | n/a |" in text  # undefined metric (null in run.json)
    assert "| test | 0.7500 | 0.8000 |" in text


def test_report_plots_disabled(results_dir):
    report = write_report(results_dir, plots=False)
    assert "Plots skipped (disabled)" in report.path.read_text()


class _FakeFigure:
    def __init__(self):
        self.tight_layout = mock.Mock()
        self.colorbar = mock.Mock()
        self.clf = mock.Mock()

    def subplots(self, rows, cols, squeeze=True):
        axes = np.empty((rows, cols), dtype=object)
        for index in np.ndindex(rows, cols):
            axes[index] = mock.MagicMock()
        return axes

    def savefig(self, path, dpi=None):
        with open(path, "wb") as fh:
            fh.write(b"\x89PNG fake")


@pytest.fixture
def fake_matplotlib(monkeypatch):
    pyplot = types.ModuleType("matplotlib.pyplot")
    pyplot.subplots = lambda figsize=None: (_FakeFigure(), mock.MagicMock())
    pyplot.close = mock.Mock()
    matplotlib = types.ModuleType("matplotlib")
    matplotlib.use = mock.Mock()
    matplotlib.pyplot = pyplot
    monkeypatch.setitem(sys.modules, "matplotlib", matplotlib)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)
    return matplotlib


def test_report_with_plots(results_dir, fake_matplotlib):
    report = write_report(results_dir)
    names = sorted(p.name for p in report.plots)
    fake_matplotlib.use.assert_called_with("Agg")
    assert not report.plots_skipped
    for prefix in (
        "sweep_",
        "cross_species_",
        "learning_curve_",
        "roc_exp",
        "confusion_exp",
        "roc_baselines_",
        "history_run",
        "confusion_run",
    ):
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    text = report.path.read_text()
    for p in report.plots:
        assert p.is_file() and f"(plots/{p.name})" in text


def test_report_with_real_matplotlib(results_dir):
    pytest.importorskip("matplotlib")  # the `plots` extra (part of `dev`)
    report = write_report(results_dir)
    assert not report.plots_skipped
    assert len(report.plots) >= 8
    for p in report.plots:
        data = p.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000, p


def test_report_skips_files_that_are_not_results(results_dir):
    spec = {"datasets": {"a": {"dataset": "ds", "store": "s.zarr"}}, "repeats": 2}
    (results_dir / "experiment.json").write_text(json.dumps(spec))  # a spec, not a result
    (results_dir / "run" / "sub").mkdir()
    (results_dir / "run" / "sub" / "run.json").write_text("[1, 2]")
    report = write_report(results_dir, plots=False)
    assert len(report.sources) == 4
    assert "## Experiment `.`" not in report.path.read_text()


def test_report_errors(tmp_path):
    with pytest.raises(InputError, match="no result files"):
        write_report(tmp_path)
    with pytest.raises(InputError, match="not a results folder"):
        write_report(tmp_path / "missing")
    (tmp_path / "sweep.json").write_text('{\n "kind": \n')
    with pytest.raises(InputError, match=r"sweep\.json:3: invalid JSON"):
        write_report(tmp_path)


def test_helpers():
    assert fmt(0.5) == "0.5000" and fmt(None) == "-" and fmt(float("nan")) == "n/a"
    assert fmt(1e-5) == "1e-05" and fmt(3) == "3"
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2**0.5))
    assert mean_std([2.0]) == (2.0, 0.0)
    assert fmt_mean_std(float("nan"), 0.1) == "n/a" and fmt_mean_std(0.5, 0.25) == "0.5000 ± 0.2500"
    data = {"a": (np.float32(1.5), float("nan")), "b": np.array([1, 2]), "c": np.float64("inf")}
    assert to_jsonable(data) == {"a": [1.5, None], "b": [1, 2], "c": None}
    table = markdown_table(["a", "b"], [["x", 1.0]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x | 1.0000 |"]


def test_report_summarises_a_repeats_folder(results_dir):
    summary = {
        "kind": "summary",
        "repeats": 2,
        "seeds": [0, 1],
        "metrics": {
            "test": {
                "accuracy": {"mean": 0.8, "std": 0.05, "values": [0.75, 0.85]},
                "roc_auc": {"mean": 0.9, "std": 0.01, "values": [0.89, 0.91]},
            }
        },
    }
    (results_dir / "rep").mkdir()
    (results_dir / "rep" / "summary.json").write_text(json.dumps(summary))
    (results_dir / "other").mkdir()
    (results_dir / "other" / "summary.json").write_text(json.dumps({"repeats": 2}))  # not ours
    report = write_report(results_dir, plots=False)
    text = report.path.read_text()
    assert "## Repeated runs `rep`" in text and "2 seeds (0, 1)" in text
    assert "| test | 0.8000 ± 0.0500 | 0.9000 ± 0.0100 |" in text
    assert results_dir / "rep" / "summary.json" in report.sources
    assert results_dir / "other" / "summary.json" not in report.sources
