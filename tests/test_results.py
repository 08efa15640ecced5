"""Result files carry kind + version; old files (no version, or no stamp) keep opening."""

import json
from pathlib import Path

import pytest

from embedhead.errors import IncompatibleError, InputError
from embedhead.experiments.baselines import run_and_write
from embedhead.report.render import write_report
from embedhead.results import RESULT_VERSION, read_result

ARCHIVE = Path(__file__).parent / "data" / "archives" / "results"
KIND_FILES = {
    "sweep": "sweep/sweep.json",
    "experiment": "experiment/experiment.json",
    "baselines": "baselines/baselines.json",
    "summary": "summary/summary.json",
    "run": "run/run.json",
}


@pytest.mark.parametrize("kind", sorted(KIND_FILES))
def test_archived_results_still_open(kind):
    data = read_result(ARCHIVE / KIND_FILES[kind], kind)
    assert "version" not in data or data["version"] == 1
    assert data["metrics" if kind in ("summary", "run") else next(iter(data))] is not None


def test_archived_results_make_a_report(tmp_path):
    report = write_report(ARCHIVE, out=tmp_path / "report.md", plots=False)
    assert {p.name for p in report.sources} == {Path(f).name for f in KIND_FILES.values()}
    text = report.path.read_text()
    for heading in ("## Sweep", "## Experiment", "## Baselines", "## Repeated runs", "## Run"):
        assert heading in text


def test_wrong_kind_newer_version_and_non_results_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="holds a 'sweep' result, expected 'experiment'"):
        read_result(ARCHIVE / KIND_FILES["sweep"], "experiment")
    newer = tmp_path / "sweep.json"
    newer.write_text(json.dumps({"kind": "sweep", "version": RESULT_VERSION + 1, "trials": []}))
    with pytest.raises(IncompatibleError, match="newer than this embedhead reads"):
        read_result(newer, "sweep")
    spec = tmp_path / "experiment.json"
    spec.write_text(json.dumps({"datasets": {}}))
    with pytest.raises(InputError, match="not an embedhead result file"):
        read_result(spec, "experiment")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "kind": "sweep",\n  oops\n}\n')
    with pytest.raises(InputError, match=r"bad\.json:3: invalid JSON"):
        read_result(bad, "sweep")


def test_written_results_carry_kind_and_version(related_dataset_dir, tmp_path):
    run_and_write(related_dataset_dir, tmp_path / "b")
    data = read_result(tmp_path / "b" / "baselines.json", "baselines")
    assert (data["kind"], data["version"]) == ("baselines", RESULT_VERSION)
