"""Every command's outputs are ordinary files (0644) and folders (0755) under umask 022."""

import json
import os
import stat

import pytest
from click.testing import CliRunner

from embedhead.cli.main import main


def _invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root):
    """{relative path: permission bits} of everything under ``root`` (root included)."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        out[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return out


def _assert_ordinary(root):
    wrong = {
        rel: oct(mode)
        for rel, mode in _modes(root).items()
        if mode != (0o755 if (root / rel).is_dir() else 0o644)
    }
    assert not wrong, f"{root}: {wrong}"


def test_every_command_writes_0644_files_and_0755_folders(
    umask_022,
    tmp_path,
    tiny_dataset_dir,
    tiny_backbone_dir,
    heads_tiny_store,
    related_dataset_dir,
    related_store,
):
    fast = ["--epochs", "2", "--batch-size", "8", "--device", "cpu", "--quiet"]
    maf = tmp_path / "sim" / "demo.maf.gz"
    _invoke("simulate", "--out", maf, "--blocks", 12, "--mean-length", 200)
    _invoke("prepare", maf, "--out", tmp_path / "ds")
    _invoke("init-backbone", "--preset", "tiny-1k", tmp_path / "bb")
    _invoke(
        "embed", tiny_dataset_dir, "--backbone", tiny_backbone_dir, "--store",
        tmp_path / "emb" / "s.zarr", "--device", "cpu", "--quiet",
    )  # fmt: skip
    run = tmp_path / "run"
    _invoke("train", tiny_dataset_dir, "--store", heads_tiny_store, "--out", run, *fast)
    _invoke("train", tiny_dataset_dir, "--store", heads_tiny_store, "--out", tmp_path / "rep",
            "--repeats", 2, *fast)  # fmt: skip
    _invoke(
        "predict", run, "--backbone", tiny_backbone_dir, "--pairs",
        tiny_dataset_dir / "pairs.tsv.gz", "--store", heads_tiny_store,
        "--out", tmp_path / "pred" / "p.tsv", "--device", "cpu",
    )  # fmt: skip
    _invoke(
        "sweep", related_dataset_dir, "--store", related_store, "--out", tmp_path / "sweep",
        "--trials", 2, "--head", "pooled", "--epochs", 1, "--workers", 1,
    )  # fmt: skip
    _invoke("baselines", related_dataset_dir, "--out", tmp_path / "base", "--k", "2")
    spec = tmp_path / "spec" / "exp.json"
    spec.parent.mkdir()
    spec.write_text(
        json.dumps(
            {
                "datasets": {
                    "a": {"dataset": str(related_dataset_dir), "store": str(related_store)}
                },
                "repeats": 1,
                "config": {"head": "pooled", "epochs": 1},
            }
        )
    )
    _invoke("experiment", spec, "--out", tmp_path / "exp", "-q")
    _invoke("report", tmp_path, "--out", tmp_path / "rep_md" / "report.md", "--no-plots")
    for name in ("sim", "ds", "bb", "emb", "run", "rep", "pred", "sweep", "base", "exp", "rep_md"):
        assert any((tmp_path / name).iterdir()), name
        _assert_ordinary(tmp_path / name)
