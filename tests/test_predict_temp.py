"""``predict`` without ``--store`` works in a private temporary folder
(``$TMPDIR/embedhead-predict-*`` with an owner file): removed on success and on errors, and a
folder left by a killed run (kill -9 of a real subprocess) is removed by the next run."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from embedhead.embed.run import SLOW_ENV
from embedhead.errors import IncompatibleError
from embedhead.heads.config import HeadConfig, TrainConfig
from embedhead.heads.predict import OWNER_FILE, TEMP_PREFIX, predict_pairs, remove_stale_temp_dirs
from embedhead.heads.train import train_head

HEAD = HeadConfig(d_model=16, conv_channels=8, kernel_size=3, hidden_sizes=(16, 8))


@pytest.fixture(scope="module")
def run_dir(tiny_dataset_dir, heads_tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict_temp") / "run"
    config = TrainConfig(epochs=1, device="cpu")
    train_head(tiny_dataset_dir, heads_tiny_store, config, out, head=HEAD)
    return out


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """A private $TMPDIR for this process and its children."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_killed_predict_leaves_a_folder_the_next_run_removes(
    run_dir, tiny_dataset_dir, tiny_backbone_dir, own_tmp, tmp_path
):
    cmd = [
        sys.executable, "-m", "embedhead", "predict", str(run_dir), "--backbone",
        str(tiny_backbone_dir), "--pairs", str(tiny_dataset_dir / "pairs.tsv.gz"), "--out",
        str(tmp_path / "killed.tsv"), "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, SLOW_ENV: "60", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if list(own_tmp.glob(f"{TEMP_PREFIX}*/predict.zarr/zarr.json")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[0].decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    left = list(own_tmp.glob(f"{TEMP_PREFIX}*"))
    assert left  # the store's folder (and the one of the FASTA being embedded)
    for folder in left:
        assert (folder / OWNER_FILE).read_text().split() == [socket.gethostname(), str(proc.pid)]

    alive = own_tmp / f"{TEMP_PREFIX}alive"  # a live process's folder is left alone
    alive.mkdir()
    (alive / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    rows = predict_pairs(
        run_dir, tiny_backbone_dir, tiny_dataset_dir / "pairs.tsv.gz", device="cpu"
    )
    with gzip.open(tiny_dataset_dir / "pairs.tsv.gz", "rt") as fh:
        assert len(rows) == sum(1 for _ in fh) - 1  # every pair of the table (header aside)
    assert sorted(p.name for p in own_tmp.iterdir()) == [alive.name]  # leftover and own gone
    assert not (tmp_path / "killed.tsv").exists()


def test_temp_folder_is_removed_when_predict_fails(run_dir, tmp_path, own_tmp):
    from embedhead.backbone.presets import write_random_checkpoint

    other = write_random_checkpoint(tmp_path / "bb", preset="tiny-1k", seed=9, d_model=16,
                                    n_layer=2, d_inner=32, max_seq_len=512)  # fmt: skip
    with pytest.raises(IncompatibleError):
        predict_pairs(run_dir, other, [("ACGTACGTAA", "ACGTACGTTT")], device="cpu")
    assert list(own_tmp.iterdir()) == []


def test_orphan_without_owner_file_is_removed_only_when_old(own_tmp):
    fresh, old = own_tmp / f"{TEMP_PREFIX}fresh", own_tmp / f"{TEMP_PREFIX}old"
    fresh.mkdir()
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    foreign = own_tmp / f"{TEMP_PREFIX}foreign"
    foreign.mkdir()
    (foreign / OWNER_FILE).write_text("another-host 1\n")
    assert remove_stale_temp_dirs() == [old]
    assert sorted(p.name for p in own_tmp.iterdir()) == sorted([fresh.name, foreign.name])
