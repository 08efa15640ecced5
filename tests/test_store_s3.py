"""Zarr stores in object storage: a local S3-compatible server (moto's server mode on 127.0.0.1,
started by the fixture, stopped at teardown) holds copies of real stores; info, verify, train,
evaluate and sweep read them by ``s3://`` URL and agree with the local store. ``embed`` writes
into ``s3://`` (two real processes, one killed mid-way) and ``memory://`` stores, equal to a
local run bit for bit; the writer lock object and never-overwritten records are checked. A
store written at a URL gets the local store's damage checks: a deleted, bit-flipped or
copied-over chunk object is a StoreDamaged naming the array and rows, for every reader and verify.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import numpy as np
import pytest
import s3fs
import torch
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from embedhead.cli.main import main
from embedhead.embed.config import EmbedConfig
from embedhead.embed.run import SLOW_ENV, embed_dataset
from embedhead.errors import ConfigError, InputError, StoreDamaged
from embedhead.store import backend_of, layout, open_store
from embedhead.store.verify import store_info, verify_store
from embedhead.store.zarr_backend import (
    LOCK_OBJECT,
    STORAGE_OPTIONS_ENV,
    is_url,
    lock_object,
    put_object,
    read_records,
    storage_options,
    store_exists,
    url_fs,
)
from tests.conftest import row_chunk_key
from tests.test_store_integrity import build, read_everything

torch.set_num_threads(1)

BUCKET = "embedhead-test"
FAST = ["--epochs", "2", "--batch-size", "8", "--device", "cpu", "--quiet"]
BATCH_TOKENS = 150


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with one bucket; the AWS_* environment points at it."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.delenv(STORAGE_OPTIONS_ENV, raising=False)
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        try:
            yield endpoint
        finally:
            server.stop()


def _upload(local, name: str, endpoint: str) -> str:
    """Copy a local .zarr folder into the bucket; returns its s3:// URL."""
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    fs.put(str(local), f"{BUCKET}/{name}", recursive=True)
    return f"s3://{BUCKET}/{name}"


@pytest.fixture(scope="module")
def s3_store(s3_endpoint, heads_tiny_store):
    return _upload(heads_tiny_store, "tiny.zarr", s3_endpoint)


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_url_store_reads_like_the_local_store(s3_store, heads_tiny_store):
    assert is_url(s3_store) and backend_of(s3_store) == "zarr"
    with open_store(s3_store) as remote, open_store(heads_tiny_store) as local:
        assert remote.ids() == local.ids() and len(remote) > 0
        assert remote.attrs == local.attrs
        np.testing.assert_array_equal(remote.lengths(), local.lengths())
        for sid in local.ids():
            np.testing.assert_array_equal(remote.get(sid), local.get(sid))
        np.testing.assert_array_equal(remote.get_pooled(local.ids()), local.get_pooled(local.ids()))
        for k in range(local.n_blocks()):
            np.testing.assert_array_equal(remote.read_block(k), local.read_block(k))


def test_info_and_verify_by_url(s3_store, heads_tiny_store, tiny_dataset_dir):
    remote, local = store_info(s3_store), store_info(heads_tiny_store)
    assert (remote.backend, remote.n_sequences, remote.n_positions) == (
        "zarr",
        local.n_sequences,
        local.n_positions,
    )
    assert remote.bytes_on_disk == local.bytes_on_disk  # the same files, uploaded
    report = verify_store(s3_store, tiny_dataset_dir)
    assert report.ok, report.describe()
    result = _invoke("store", "info", s3_store)
    assert result.exit_code == 0 and f"sequences      {local.n_sequences}" in result.output
    result = _invoke("store", "verify", s3_store, "--dataset", tiny_dataset_dir)
    assert result.exit_code == 0 and "OK" in result.output


def test_train_and_evaluate_from_s3_equal_local(
    s3_store, heads_tiny_store, tiny_dataset_dir, tmp_path
):
    runs = {}
    for name, store in (("local", heads_tiny_store), ("s3", s3_store)):
        out = tmp_path / name
        result = _invoke("train", tiny_dataset_dir, "--store", store, "--out", out, *FAST)
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((out / "run.json").read_text())
    assert runs["s3"]["metrics"] == runs["local"]["metrics"]
    assert runs["s3"]["store"]["path"] == s3_store
    result = _invoke(
        "evaluate", tmp_path / "local", "--dataset", tiny_dataset_dir, "--store", s3_store,
        "--json", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = runs["local"]["metrics"]["test"]
    assert {k: v for k, v in json.loads(result.output).items() if k in stored} == stored


def test_sweep_reads_from_s3(s3_endpoint, related_store, related_dataset_dir, tmp_path):
    url = _upload(related_store, "related.zarr", s3_endpoint)
    out = {}
    for name, store in (("local", related_store), ("s3", url)):
        result = _invoke(
            "sweep", related_dataset_dir, "--store", store, "--out", tmp_path / name,
            "--trials", 2, "--head", "pooled", "--epochs", 2, "--workers", 1, "--seed", 1,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        out[name] = json.loads((tmp_path / name / "best.json").read_text())
    assert out["s3"] == out["local"]


def test_missing_url_store_and_bad_options_are_clear_errors(s3_endpoint, monkeypatch):
    with pytest.raises(InputError, match="not an embedding store"):
        open_store(f"s3://{BUCKET}/absent.zarr")
    with pytest.raises(ConfigError, match=r"\.zarr store"):
        backend_of(f"s3://{BUCKET}/cache.h5")
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, "{not json")
    with pytest.raises(ConfigError, match=STORAGE_OPTIONS_ENV):
        storage_options(f"s3://{BUCKET}/x.zarr")
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, '{"anon": false}')
    assert storage_options(f"s3://{BUCKET}/x.zarr") == {
        "anon": False,
        "client_kwargs": {"endpoint_url": s3_endpoint},
    }
    result = _invoke("store", "info", f"s3://{BUCKET}/absent.zarr")
    assert result.exit_code != 0 and "absent.zarr" in result.output


def _s3fs(endpoint: str) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)


def _committed(url: str) -> int:
    """Sequences a reader sees in the store at ``url`` (folded + commit records), 0 if none."""
    try:
        with open_store(url) as store:
            return len(store)
    except (InputError, OSError):
        return 0


def _embed_cmd(dataset, backbone, store) -> list[str]:
    return [
        sys.executable, "-m", "embedhead", "embed", str(dataset), "--backbone", str(backbone),
        "--store", str(store), "--device", "cpu", "--dtype", "float32",
        "--batch-tokens", str(BATCH_TOKENS), "--quiet",
    ]  # fmt: skip


def _assert_same_store(got: str | Path, ref: str | Path) -> None:
    """Same ids, and bit-identical positions and pooled rows per id."""
    with open_store(got) as a, open_store(ref) as b:
        assert sorted(a.ids()) == sorted(b.ids()) and len(b) > 0
        differ = [s for s in b.ids() if not np.array_equal(a.get(s), b.get(s))]
        assert not differ, f"{len(differ)} sequences differ: {differ[:5]}"
        np.testing.assert_array_equal(a.get_pooled(b.ids()), b.get_pooled(b.ids()))


@pytest.mark.slow
def test_embed_into_s3_two_processes_kill_resume_then_read_back(
    s3_endpoint, tiny_dataset_dir, tiny_backbone_dir, tmp_path, monkeypatch
):
    """Two real `embedhead embed` processes on one s3:// store: the second is refused while
    the first holds the lock; the first is killed mid-way; a rerun takes over the dead
    process's lock, resumes, and equals a local clean run bit for bit; every reading command
    then works on it."""
    monkeypatch.chdir(tmp_path)  # a URL mistaken for a path would show up as ./s3:
    url = f"s3://{BUCKET}/killed.zarr"
    fs = _s3fs(s3_endpoint)
    env = {**os.environ, SLOW_ENV: "2.5", "OMP_NUM_THREADS": "1"}  # ~26 batches: > 60 s
    cmd = _embed_cmd(tiny_dataset_dir, tiny_backbone_dir, url)
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600  # a loaded machine starts python + torch slowly
    while _committed(url) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    second = subprocess.run(cmd, env={**env, SLOW_ENV: "0"}, capture_output=True, text=True)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "another process is writing this store" in second.stderr
    assert f"{BUCKET}/killed.zarr/{LOCK_OBJECT}" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.poll() is None, "the first run ended before the kill"
    os.kill(first.pid, signal.SIGKILL)
    out = first.communicate()[0].decode()
    assert first.returncode == -signal.SIGKILL, out
    done = _committed(url)
    assert 0 < done < 40, f"kill landed outside the run ({done} committed): {out}"
    assert fs.exists(f"{BUCKET}/killed.zarr/{LOCK_OBJECT}")  # left behind by the killed run
    assert fs.ls(f"{BUCKET}/killed.zarr/commits")  # its batches, committed as records

    rerun = subprocess.run(cmd, env={**env, SLOW_ENV: "0"}, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    fs.invalidate_cache()
    assert not fs.exists(f"{BUCKET}/killed.zarr/{LOCK_OBJECT}")
    assert not fs.find(f"{BUCKET}/killed.zarr/commits")  # folded into the index
    assert list(tmp_path.iterdir()) == []

    clean = tmp_path.parent / f"{tmp_path.name}-clean.zarr"
    config = EmbedConfig(dtype="float32", device="cpu", batch_tokens=BATCH_TOKENS, progress=False)
    embed_dataset(tiny_dataset_dir, clean, tiny_backbone_dir, config)
    _assert_same_store(url, clean)
    with open_store(url) as remote, open_store(clean) as local:
        assert remote.attrs["backbone_key"] == local.attrs["backbone_key"]
        assert remote.attrs["n_sequences"] == 40

    again = embed_dataset(tiny_dataset_dir, url, tiny_backbone_dir, config)
    assert again.stats.n_embedded == 0 and again.store_sequences == 40

    result = _invoke("store", "info", url)
    assert result.exit_code == 0 and "sequences      40" in result.output
    result = _invoke("store", "verify", url, "--dataset", tiny_dataset_dir)
    assert result.exit_code == 0 and "OK" in result.output
    runs = {}
    for name, store in (("local", clean), ("s3", url)):
        out = tmp_path.parent / f"{tmp_path.name}-run-{name}"
        result = _invoke("train", tiny_dataset_dir, "--store", store, "--out", out, *FAST)
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((out / "run.json").read_text())
    assert runs["s3"]["metrics"] == runs["local"]["metrics"]
    result = _invoke(
        "evaluate", tmp_path.parent / f"{tmp_path.name}-run-local", "--dataset",
        tiny_dataset_dir, "--store", url, "--json", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = runs["local"]["metrics"]["test"]  # evaluate adds bins and the reliability curve
    assert {k: v for k, v in json.loads(result.output).items() if k in stored} == stored
    sweeps = {}
    for name, store in (("local", clean), ("s3", url)):
        out = tmp_path.parent / f"{tmp_path.name}-sweep-{name}"
        result = _invoke(
            "sweep", tiny_dataset_dir, "--store", store, "--out", out, "--trials", 1,
            "--head", "pooled", "--epochs", 1, "--workers", 1, "--seed", 1,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        sweeps[name] = json.loads((out / "best.json").read_text())
    assert sweeps["s3"] == sweeps["local"]


def test_embed_into_a_memory_url_equals_local_and_leaves_no_lock(
    tiny_dataset_dir, tiny_backbone_dir, heads_tiny_store
):
    url = f"memory://embedhead-{uuid.uuid4().hex[:8]}/tiny.zarr"
    config = EmbedConfig(progress=False, device="cpu")  # heads_tiny_store's options
    summary = embed_dataset(tiny_dataset_dir, url, tiny_backbone_dir, config)
    assert summary.stats.n_embedded == 40 and summary.store_sequences == 40
    _assert_same_store(url, heads_tiny_store)
    fs, root = url_fs(url)
    names = {k.rsplit("/", 1)[-1] for k in fs.ls(root, detail=False)}
    assert names == {
        "zarr.json", "positions", "pooled", "ids", "offsets", "lengths", "hashes", "chunk_crcs",
        "pooled_crcs",
    }  # fmt: skip
    assert read_records(url).n == 0


def test_a_live_lock_refuses_a_dead_local_one_is_taken_over(tiny_dataset_dir, tiny_backbone_dir):
    url = f"memory://embedhead-{uuid.uuid4().hex[:8]}/locked.zarr"
    fs, root = url_fs(url)
    key = f"{root}/{LOCK_OBJECT}"
    config = EmbedConfig(progress=False, device="cpu", pooled_only=True)
    other_host = {"host": "another-machine", "pid": os.getpid(), "since": "then", "token": "t"}
    fs.pipe_file(key, json.dumps(other_host).encode())
    with pytest.raises(ConfigError, match=r"another process is writing.*another-machine"):
        embed_dataset(tiny_dataset_dir, url, tiny_backbone_dir, config)
    assert not store_exists(url) and fs.cat_file(key) == json.dumps(other_host).encode()
    lock = lock_object(url + "-other")  # this process holds it: alive, so refused
    with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
        lock_object(url + "-other")
    lock.release()
    lock_object(url + "-other").release()  # free again

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone = {"host": socket.gethostname(), "pid": int(dead.stdout), "since": "then", "token": "d"}
    fs.pipe_file(key, json.dumps(gone).encode())
    summary = embed_dataset(tiny_dataset_dir, url, tiny_backbone_dir, config)
    assert summary.store_sequences == 40 and not fs.exists(key)


def test_records_are_never_overwritten_at_a_url():
    url = f"memory://embedhead-{uuid.uuid4().hex[:8]}/r.zarr/commits/b1.npz"
    put_object(url, b"first")
    with pytest.raises(FileExistsError):
        put_object(url, b"second")
    fs, key = url_fs(url)
    assert fs.cat_file(key) == b"first"


def test_store_merge_of_a_url_is_a_clear_error():
    result = _invoke("store", "merge", f"s3://{BUCKET}/x.zarr")
    assert result.exit_code != 0 and "store merge" in result.output


@pytest.mark.slow
def test_two_torchrun_ranks_write_into_one_s3_store(
    s3_endpoint, tiny_dataset_dir, tiny_backbone_dir, tmp_path
):
    """Both ranks write chunks and records straight into the s3:// store (rank 0 holds the lock
    object and folds); the result equals a one-process local run bit for bit."""
    url = f"s3://{BUCKET}/torchrun.zarr"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        *_embed_cmd(tiny_dataset_dir, tiny_backbone_dir, url)[1:],
    ]  # fmt: skip
    result = subprocess.run(
        cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    fs = _s3fs(s3_endpoint)
    assert not fs.exists(f"{BUCKET}/torchrun.zarr/{LOCK_OBJECT}")
    assert not fs.find(f"{BUCKET}/torchrun.zarr/commits")
    clean = tmp_path / "one.zarr"
    config = EmbedConfig(dtype="float32", device="cpu", batch_tokens=BATCH_TOKENS, progress=False)
    embed_dataset(tiny_dataset_dir, clean, tiny_backbone_dir, config)
    _assert_same_store(url, clean)
    assert list(tmp_path.iterdir()) == [clean]  # no local "s3:" folder


def _damage_object(fs: s3fs.S3FileSystem, key: str, how: str, source: str) -> None:
    if how == "deleted":
        fs.rm_file(key)
    elif how == "flipped":
        blob = bytearray(fs.cat_file(key))
        blob[len(blob) // 3] ^= 0x10
        fs.pipe_file(key, bytes(blob))
    else:  # copied: a valid chunk of the same array, crc32c trailer intact
        fs.pipe_file(key, fs.cat_file(source))


@pytest.mark.parametrize("how", ["deleted", "flipped", "copied"])
def test_damaged_chunk_objects_at_a_url_are_refused(s3_endpoint, how):
    """A store written straight into s3:// (three positions chunks): damage chunk 1's object;
    every read path and verify refuse it, naming the store, the array and rows of chunk 1."""
    url = f"s3://{BUCKET}/damaged-{how}.zarr"
    build(url)  # type: ignore[arg-type]
    read_everything(url)  # sound before the damage
    fs = _s3fs(s3_endpoint)
    root = f"{BUCKET}/damaged-{how}.zarr"
    _damage_object(
        fs,
        row_chunk_key(fs, root, layout.POSITIONS, 1),
        how,
        row_chunk_key(fs, root, layout.POSITIONS, 0),
    )
    with pytest.raises(StoreDamaged) as err:
        read_everything(url)
    text = str(err.value)
    assert err.value.array == layout.POSITIONS and f"{BUCKET}/damaged-{how}.zarr" in text
    found = re.search(r"positions rows (\d+)\.\.(\d+)", text)
    assert found and int(found[1]) <= 2047 and int(found[2]) >= 1024, text
    report = verify_store(url)
    assert any(p.startswith("positions rows 1024..2047") for p in report.problems), report.problems
    result = _invoke("store", "verify", url)
    assert result.exit_code == 1 and "positions rows 1024..2047" in result.output


def test_a_deleted_pooled_object_at_a_url_is_refused(s3_endpoint):
    url = f"s3://{BUCKET}/pooled-gone.zarr"
    build(url)  # type: ignore[arg-type]
    fs = _s3fs(s3_endpoint)
    fs.rm_file(row_chunk_key(fs, f"{BUCKET}/pooled-gone.zarr", layout.POOLED, 0))
    with pytest.raises(StoreDamaged, match=r"pooled rows 0\.\.5"), open_store(url) as store:
        store.get_pooled(store.ids())  # refused on open already, or here
