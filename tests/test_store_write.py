"""The Zarr write path: chunk files written in place once, rewrites atomic, and embed runs
whose write units flush many times store exactly what one flush per unit stores, readable by
plain zarr for every codec."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import zarr

from embedhead.embed import run as embed_run
from embedhead.embed.config import EmbedConfig
from embedhead.embed.run import embed_sequences, store_attrs
from embedhead.store import layout, open_store, open_writer
from embedhead.store.zarr_backend import ZarrStoreWriter
from tests.conftest import chunk_file


def _attrs(d_model: int, compression: str) -> dict[str, object]:
    return {
        "format_version": layout.FORMAT_VERSION,
        "backbone": {"name": "bb", "config": {"d_model": d_model}, "key": "k"},
        "backbone_key": "k",
        "tokenizer": {"name": "test"},
        "dtype": "float16",
        "storage_dtype": "float16",
        "compression": compression,
        "d_model": d_model,
        "pooled_only": False,
        "max_length": None,
        "command": "test",
        "created": "now",
    }


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_a_rewritten_chunk_is_replaced_atomically(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "s.zarr"
    writer = open_writer(path, _attrs(8, compression))
    assert isinstance(writer, ZarrStoreWriter)
    rows = writer.chunk_rows
    base = writer.reserve(2 * rows)
    first = np.random.default_rng(0).standard_normal((2 * rows, 8)).astype(np.float16)
    writer.write_region(base, first)
    chunk = chunk_file(path, layout.POSITIONS, base // rows)
    inode = chunk.stat().st_ino
    second = (first[:rows] + 1).astype(np.float16)
    writer.write_region(base, second)  # the padded last chunk of a unit that grew
    assert chunk.stat().st_ino != inode  # a new file renamed over the old one, not truncated
    assert not list(path.rglob("*.partial"))
    plain = zarr.open_array(str(path / layout.POSITIONS), mode="r")  # readers need no lock
    np.testing.assert_array_equal(plain[base : base + rows], second)
    np.testing.assert_array_equal(plain[base + rows : base + 2 * rows], first[rows:])
    writer.abandon()  # nothing committed: the store this writer created goes with it
    assert not path.exists()


def _items(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"s{i}", "".join(rng.choices("ACGT", k=rng.randint(300, 500)))) for i in range(n)]


def _embed(path: Path, model, items, compression: str) -> None:
    config = EmbedConfig(dtype="float16", compression=compression, progress=False)
    with open_writer(path, store_attrs(model, config)) as writer:
        embed_sequences(items, writer, model, batch_tokens=2048)


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_units_flushed_at_every_batch_store_the_same_rows(
    tmp_path: Path, tiny_backbone_dir: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    from embedhead.backbone import load_backbone

    model = load_backbone(tiny_backbone_dir)
    items = _items(90, seed=3)  # ~36k rows: write units of small batches cross a chunk boundary
    _embed(tmp_path / "once.zarr", model, items, compression)
    monkeypatch.setattr(embed_run, "COMMIT_SECONDS", -1.0)  # flush (and commit) every batch
    _embed(tmp_path / "often.zarr", model, items, compression)
    with open_store(tmp_path / "once.zarr") as once, open_store(tmp_path / "often.zarr") as often:
        assert sorted(once.ids()) == sorted(often.ids()) == sorted(i for i, _ in items)
        for sid, seq in items:
            a, b = once.get(sid), often.get(sid)
            assert a.shape == (len(seq), model.config.d_model)
            np.testing.assert_array_equal(a, b)
        ids = once.ids()
        np.testing.assert_array_equal(once.get_pooled(ids), often.get_pooled(ids))
    root = zarr.open_group(str(tmp_path / "often.zarr"), mode="r")  # plain zarr, no embedhead
    n = root.attrs["n_sequences"]
    ids = [str(s) for s in root["ids"][:n]]
    offsets, lengths = root["offsets"][:n], root["lengths"][:n]
    assert int(lengths.sum()) > int(root["positions"].chunks[0])  # more than one chunk
    with open_store(tmp_path / "often.zarr") as store:
        for i, sid in enumerate(ids):
            raw = root["positions"][offsets[i] : offsets[i] + lengths[i]]
            np.testing.assert_array_equal(raw.astype(np.float32), store.get(sid))
    assert not list((tmp_path / "often.zarr").rglob("*.partial"))


class _NullWriter:
    """The attributes a writer pool reads before it is handed any batch."""

    def __init__(self) -> None:
        self.attrs = {"dtype": "float16"}
        self.chunk_rows = 256


def test_new_write_units_take_turns_over_idle_lanes() -> None:
    # equal units used to be laned by their first chunk: 8-chunk units over 2 or 4 lanes all
    # went to lane 0 and one writer thread did every write
    pool = embed_run._WriterPool(_NullWriter(), threads=2)  # type: ignore[arg-type]
    try:
        assert [pool.lane() for _ in range(4)] == [0, 1, 0, 1]
    finally:
        pool.finish()


def test_a_new_write_unit_avoids_a_busy_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    release, started = threading.Event(), threading.Event()

    def hold(self: object, task: object, units: object, dtype: str) -> None:
        started.set()
        release.wait(10)

    monkeypatch.setattr(embed_run._WriterPool, "_do", hold)
    pool = embed_run._WriterPool(_NullWriter(), threads=2)  # type: ignore[arg-type]
    try:
        assert pool.lane() == 0
        pool.put(object(), 0)  # type: ignore[arg-type]  # lane 0 busy until released
        assert started.wait(10)
        assert [pool.lane() for _ in range(3)] == [1, 1, 1]
        release.set()
    finally:
        release.set()
        pool.finish()
