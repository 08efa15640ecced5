"""Zarr stores in object storage: a local S3-compatible server (moto's server mode on 127.0.0.1,
started by the fixture, stopped at teardown) holds copies of real stores; info, verify, train,
evaluate and sweep read them by ``s3://`` URL and agree with the local store.
"""

from __future__ import annotations

import json
import socket

import boto3
import numpy as np
import pytest
import s3fs
import torch
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from embedhead.cli.main import main
from embedhead.errors import ConfigError, InputError
from embedhead.store import backend_of, open_store
from embedhead.store.verify import store_info, verify_store
from embedhead.store.zarr_backend import STORAGE_OPTIONS_ENV, is_url, storage_options

torch.set_num_threads(1)

BUCKET = "embedhead-test"
FAST = ["--epochs", "2", "--batch-size", "8", "--device", "cpu", "--quiet"]


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


def test_embedding_into_a_url_is_refused_without_writing_anything(
    s3_endpoint, tiny_dataset_dir, tiny_backbone_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    url = f"s3://{BUCKET}/new.zarr"
    result = CliRunner().invoke(
        main, ["embed", str(tiny_dataset_dir), "--backbone", str(tiny_backbone_dir), "--store",
               url, "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "object storage is not supported yet" in result.output
    assert list(tmp_path.iterdir()) == []  # no local "s3:" folder either
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    assert not fs.exists(f"{BUCKET}/new.zarr")
