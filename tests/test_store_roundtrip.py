"""Store round trips on both backends (hypothesis), commit visibility, plain zarr/h5py reads."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedhead.errors import ConfigError, IncompatibleError, InputError, StoreWriteError
from embedhead.store import layout, merge_parts, open_store, open_writer, part_paths, parts_dir


def make_attrs(d_model: int = 4, dtype: str = "float16", pooled_only: bool = False, key="k1"):
    return {
        "format_version": layout.FORMAT_VERSION,
        "backbone": {"name": f"bb-{key}", "config": {"d_model": d_model}, "key": key},
        "backbone_key": key,
        "tokenizer": {"name": "test"},
        "dtype": dtype,
        "storage_dtype": layout.STORAGE_DTYPES[dtype],
        "d_model": d_model,
        "pooled_only": pooled_only,
        "max_length": None,
        "command": "test",
        "created": "now",
    }


def expected(values: np.ndarray, dtype: str) -> np.ndarray:
    """What a store of ``dtype`` must return for float32 ``values`` (its exact rounding)."""
    return layout.decode(layout.encode(values, dtype), dtype)


entries = st.lists(
    st.tuples(
        st.text(alphabet="ACGTxyz_-0123456789", min_size=1, max_size=12),
        st.integers(min_value=1, max_value=40),
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda e: e[0],
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    items=entries,
    d_model=st.sampled_from([1, 3, 8]),
    dtype=st.sampled_from(list(layout.DTYPES)),
    pooled_only=st.booleans(),
    commit_every=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_round_trip(suffix, items, d_model, dtype, pooled_only, commit_every, seed):
    rng = np.random.default_rng(seed)
    data = {sid: (rng.standard_normal((n, d_model)) * 10).astype(np.float32) for sid, n in items}
    pooled = {sid: x.mean(axis=0) for sid, x in data.items()}
    folder = Path(tempfile.mkdtemp())
    try:
        path = folder / f"s{suffix}"
        attrs = make_attrs(d_model, dtype, pooled_only)
        with open_writer(path, attrs) as writer:
            for start in range(0, len(items), commit_every):
                ids = [sid for sid, _ in items[start : start + commit_every]]
                writer.write(ids, [data[s] for s in ids], np.stack([pooled[s] for s in ids]))
                writer.commit()
        assert not parts_dir(path).exists()
        with open_store(path) as store:
            assert store.ids() == [sid for sid, _ in items]
            assert len(store) == len(items)
            assert store.d_model == d_model and store.dtype == dtype
            assert store.pooled_only == pooled_only
            assert store.identity["key"] == "k1"
            order = [sid for sid, _ in items][::-1]
            got = store.get_pooled(order)
            assert got.dtype == np.float32 and got.shape == (len(items), d_model)
            np.testing.assert_array_equal(
                got, expected(np.stack([pooled[s] for s in order]), dtype)
            )
            for sid, n in items:
                assert sid in store and store.length(sid) == n
            if pooled_only:
                with pytest.raises(ConfigError):
                    store.get(items[0][0])
            else:
                for sid, _ in items:
                    got_one = store.get(sid)
                    assert got_one.dtype == np.float32
                    np.testing.assert_array_equal(got_one, expected(data[sid], dtype))
                many = store.get_many(order)
                for sid, arr in zip(order, many, strict=True):
                    np.testing.assert_array_equal(arr, expected(data[sid], dtype))
                seen = []
                for chunk in store.iter_chunks(max_positions=50, max_sequences=3):
                    assert len(chunk.ids) <= 3
                    for sid, arr in zip(chunk.ids, chunk.embeddings, strict=True):
                        np.testing.assert_array_equal(arr, expected(data[sid], dtype))
                    seen.extend(chunk.ids)
                assert seen == [sid for sid, _ in items]
            assert "nope" not in store
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_bfloat16_encoding_matches_torch():
    import torch

    values = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 1e3
    values[:3] = [0.0, -0.0, 1e-40]
    ours = layout.encode(values, "bfloat16")
    theirs = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(ours, theirs)
    back = layout.decode(ours, "bfloat16")
    np.testing.assert_array_equal(back, torch.from_numpy(values).to(torch.bfloat16).float().numpy())


def test_uncommitted_writes_are_invisible_and_resumed(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    attrs = make_attrs(4, "float32")
    x = {s: np.full((i + 2, 4), float(i), dtype=np.float32) for i, s in enumerate("abcd")}
    writer = open_writer(path, attrs)
    writer.write(["a", "b"], [x["a"], x["b"]], np.stack([x["a"][0], x["b"][0]]))
    writer.commit()
    writer.write(["c"], [x["c"]], x["c"][:1])  # never committed: the process "dies" here
    writer.abandon()
    if suffix == ".zarr":
        with open_store(path) as store:
            assert store.ids() == ["a", "b"]
    else:
        assert not path.exists()  # the .h5 file only appears when a run finishes
        assert len(part_paths(path)) == 1
    with open_writer(path, attrs) as writer:
        assert "a" in writer and "b" in writer and "c" not in writer
        writer.write(["d"], [x["d"]], x["d"][:1])
    with open_store(path) as store:
        assert store.ids() == ["a", "b", "d"]
        for sid in ("a", "b", "d"):
            np.testing.assert_array_equal(store.get(sid), x[sid])


def test_other_backbone_or_dtype_is_refused(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    with open_writer(path, make_attrs(4)) as writer:
        writer.write(["a"], [np.ones((2, 4), np.float32)], np.ones((1, 4), np.float32))
    with pytest.raises(IncompatibleError, match="backbone"):
        open_writer(path, make_attrs(4, key="other"))
    with pytest.raises(IncompatibleError, match="dtype"):
        open_writer(path, make_attrs(4, dtype="float32"))


def test_merge_parts_folds_shards_first_id_wins(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    attrs = make_attrs(2, "float32")
    one = np.ones((3, 2), np.float32)
    with open_writer(path, attrs) as writer:
        writer.write(["a"], [one], one[:1])
    for rank, ids in ((0, ["b", "a"]), (1, ["c", "b"])):
        with open_writer(path, attrs, part=rank) as shard:
            shard.write(ids, [one * (rank + 2)] * 2, np.stack([one[0] * (rank + 2)] * 2))
    assert len(part_paths(path)) == 2
    assert merge_parts(path) == 2
    assert not parts_dir(path).exists()
    with open_store(path) as store:
        assert sorted(store.ids()) == ["a", "b", "c"]
        np.testing.assert_array_equal(store.get("a"), one)
        np.testing.assert_array_equal(store.get("b"), one * 2)
        np.testing.assert_array_equal(store.get("c"), one * 3)
    assert merge_parts(path) == 0


def test_stores_read_with_plain_zarr_and_h5py(tmp_path):
    """The snippet of docs/store.md, without embedhead's reader."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for suffix in (".zarr", ".h5"):
        with open_writer(tmp_path / f"s{suffix}", make_attrs(4, "bfloat16")) as writer:
            writer.write(["a", "b"], [x[:1], x[1:]], np.stack([x[0], x[1:].mean(0)]))

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    n = root.attrs["n_sequences"]
    ids = [str(s) for s in root["ids"][:n]]
    off, ln = root["offsets"][:n], root["lengths"][:n]
    i = ids.index("b")
    raw = root["positions"][off[i] : off[i] + ln[i]]
    emb = (raw.astype(np.uint32) << 16).view(np.float32)  # bfloat16 bits -> float32
    np.testing.assert_array_equal(emb, x[1:])
    assert root.attrs["backbone"]["name"] == "bb-k1"

    with h5py.File(tmp_path / "s.h5", "r") as f:
        n = json.loads(f.attrs["n_sequences"])
        ids = [s.decode() for s in f["ids"][:n]]
        i = ids.index("b")
        off, ln = f["offsets"][i], f["lengths"][i]
        emb = (f["positions"][off : off + ln].astype(np.uint32) << 16).view(np.float32)
        np.testing.assert_array_equal(emb, x[1:])
        assert json.loads(f.attrs["dtype"]) == "bfloat16"


def test_bad_suffix_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\.zarr"):
        open_store(tmp_path / "s.npz")


def test_one_writer_per_store(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    first = open_writer(path, make_attrs(2))
    with pytest.raises(ConfigError, match="another process is writing"):
        open_writer(path, make_attrs(2))
    first.close()
    open_writer(path, make_attrs(2)).close()  # free again once the first one is closed


def test_hdf5_crash_while_assembling_keeps_old_file_and_journal(tmp_path, monkeypatch):
    import embedhead.store.hdf5_backend as hdf5_backend

    path = tmp_path / "s.h5"
    attrs = make_attrs(2, "float32")
    one = np.ones((2, 2), np.float32)
    with open_writer(path, attrs) as writer:
        writer.write(["a"], [one], one[:1])
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(hdf5_backend, "publish", crash)
    writer = open_writer(path, attrs)
    writer.write(["b"], [one * 2], one[:1] * 2)
    with pytest.raises(StoreWriteError, match="simulated"):
        writer.close()
    assert path.read_bytes() == before  # the live file was never touched
    assert not list(tmp_path.glob(".s.h5.tmp-*"))
    assert len(part_paths(path)) == 1  # the journal still holds "b"
    monkeypatch.undo()
    open_writer(path, attrs).close()  # the next run assembles what the journal holds
    with open_store(path) as store:
        assert store.ids() == ["a", "b"]
        np.testing.assert_array_equal(store.get("b"), one * 2)
    assert not parts_dir(path).exists()


def _damage_zarr_attrs(path: Path, key: str, value: object) -> None:
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    if value is _MISSING:
        del doc["attributes"][key]
    else:
        doc["attributes"][key] = value
    meta.write_text(json.dumps(doc))


def _damage_hdf5_attrs(path: Path, key: str, value: object) -> None:
    with h5py.File(path, "a") as fh:
        if value is _MISSING:
            del fh.attrs[key]
        else:
            fh.attrs[key] = json.dumps(value)


_MISSING = object()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_sequences", _MISSING, "'n_sequences' is missing"),
        ("dtype", _MISSING, "'dtype' is missing"),
        ("backbone", _MISSING, "'backbone' is missing"),
        ("n_sequences", "x", "n_sequences='x' is not of type int"),
        ("n_sequences", -1, "n_sequences=-1 is out of range"),
        ("n_sequences", 9, "index holds 2 entries but n_sequences says 9"),
        ("pooled_only", 1, "pooled_only=1 is not of type bool"),
        ("dtype", "int8", "dtype='int8' is unknown"),
        ("dtype", "bfloat16", "dtype='bfloat16' but storage_dtype='float16'"),
        ("d_model", 0, "d_model=0 is out of range"),
    ],
)
def test_damaged_root_attributes_are_clear_errors(tmp_path, suffix, key, value, message):
    from embedhead.store.verify import store_info, verify_store

    path = tmp_path / f"s{suffix}"
    with open_writer(path, make_attrs(4)) as writer:
        x = np.ones((3, 4), np.float32)
        writer.write(["a", "b"], [x, x[:2]], x[:2])
    damage = _damage_zarr_attrs if suffix == ".zarr" else _damage_hdf5_attrs
    damage(path, key, value)
    for read in (open_store, store_info, verify_store):
        with pytest.raises(InputError, match=message):
            read(path)


def test_missing_array_or_unreadable_attribute_is_a_clear_error(tmp_path, suffix):
    from embedhead.store.verify import verify_store

    path = tmp_path / f"s{suffix}"
    with open_writer(path, make_attrs(4)) as writer:
        writer.write(["a"], [np.ones((3, 4), np.float32)], np.ones((1, 4), np.float32))
    if suffix == ".zarr":
        shutil.rmtree(path / layout.POSITIONS)
    else:
        with h5py.File(path, "a") as fh:
            del fh[layout.POSITIONS]
    with pytest.raises(InputError, match="lacks its 'positions'"):
        verify_store(path)
    if suffix == ".h5":
        with h5py.File(path, "a") as fh:
            fh.attrs["dtype"] = "not json{"
        with pytest.raises(InputError, match="unreadable root attribute"):
            open_store(path)


def _write_format1_zarr(path: Path, attrs: dict, data: dict[str, np.ndarray]) -> None:
    """A format-1 store key for key (contiguous rows, prefix marker), written with plain zarr."""
    d = attrs["d_model"]
    root = zarr.open_group(str(path), mode="w")
    ids = list(data)
    lengths = np.array([data[s].shape[0] for s in ids], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    rows = layout.rows_per_chunk(d, attrs["dtype"])
    positions = np.concatenate([data[s] for s in ids]).astype(np.float32)
    for name, values, chunks in (
        ("positions", positions, (rows, d)),
        ("pooled", np.stack([data[s].mean(0) for s in ids]).astype(np.float32), (rows, d)),
        ("ids", np.asarray(ids, dtype=str), (layout.INDEX_CHUNK,)),
        ("offsets", offsets, (layout.INDEX_CHUNK,)),
        ("lengths", lengths, (layout.INDEX_CHUNK,)),
    ):
        kind = str if name == "ids" else values.dtype
        arr = root.create_array(name, shape=values.shape, chunks=chunks, dtype=kind)
        arr[...] = values
    root.attrs.update(
        {**attrs, "format_version": 1, "n_sequences": len(ids), "n_positions": int(lengths.sum())}
    )


def test_format1_store_reads_and_is_upgraded_on_append(tmp_path):
    path = tmp_path / "old.zarr"
    attrs = make_attrs(3, "float32")
    rng = np.random.default_rng(1)
    old = {s: rng.standard_normal((n, 3)).astype(np.float32) for s, n in (("a", 5), ("b", 2))}
    _write_format1_zarr(path, attrs, old)
    with open_store(path) as store:
        assert store.ids() == ["a", "b"] and store.attrs["format_version"] == 1
        np.testing.assert_array_equal(store.get("b"), old["b"])
    new = rng.standard_normal((4, 3)).astype(np.float32)
    with open_writer(path, attrs) as writer:
        assert "a" in writer
        writer.write(["c"], [new], new.mean(0, keepdims=True))
    with open_store(path) as store:
        assert store.attrs["format_version"] == 2
        assert store.ids() == ["a", "b", "c"]
        for sid, x in (*old.items(), ("c", new)):
            np.testing.assert_array_equal(store.get(sid), x)
        assert int(store.offsets()[2]) % layout.rows_per_chunk(3, "float32") == 0


def test_batches_committed_in_any_order_are_exactly_what_a_resume_skips(tmp_path, suffix):
    """Planned writes: regions reserved up front, batches written and committed out of order
    (as writer threads or ranks do); a writer that dies keeps exactly the committed batches."""
    path = tmp_path / f"s{suffix}"
    attrs = make_attrs(2, "float32")
    writer = open_writer(path, attrs)
    chunk = writer.chunk_rows
    base = writer.reserve(3 * chunk)
    x = {k: np.full((chunk, 2), float(k + 1), dtype=np.float32) for k in range(3)}
    for k in (2, 0):  # batch 1 never commits: the process "dies" with its rows half written
        start = base + k * chunk
        writer.write_region(start, x[k])
        writer.commit_batch(f"b{k}", [f"s{k}"], np.array([start]), np.array([chunk]), x[k][:1])
    writer.write_region(base + chunk, x[1])
    writer.abandon()
    if suffix == ".zarr":
        with open_store(path) as store:  # readers see the committed batches, in offset order
            assert store.ids() == ["s0", "s2"]
            np.testing.assert_array_equal(store.get("s2"), x[2])
            np.testing.assert_array_equal(store.get_pooled(["s2", "s0"]), [x[2][0], x[0][0]])
    with open_writer(path, attrs) as writer:
        assert "s0" in writer and "s2" in writer and "s1" not in writer
        start = writer.reserve(chunk)
        assert start >= base + 3 * chunk  # a resumed run writes into a fresh region
        writer.write_region(start, x[1])
        writer.commit_batch("b1", ["s1"], np.array([start]), np.array([chunk]), x[1][:1])
    with open_store(path) as store:
        assert store.ids() == ["s0", "s2", "s1"]
        for k in range(3):
            np.testing.assert_array_equal(store.get(f"s{k}"), x[k])
            np.testing.assert_array_equal(store.get_pooled([f"s{k}"]), x[k][:1])
    if suffix == ".zarr":
        assert not list((path / layout.COMMITS).glob("*.npz"))  # folded into the index
        root = zarr.open_group(str(path), mode="r")
        assert root.attrs["n_sequences"] == 3 and root.attrs["format_version"] == 2


def test_records_left_by_a_kill_after_folding_are_not_counted_twice(tmp_path):
    """fold = index arrays, then the marker, then delete the records: a kill before the delete
    leaves records whose entries are folded already."""
    path = tmp_path / "s.zarr"
    attrs = make_attrs(2, "float32")
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    writer = open_writer(path, attrs)
    writer.write(["a", "b"], [x[:1], x[1:]], np.stack([x[0], x[1:].mean(0)]))
    writer.commit()
    kept = tmp_path / "kept"
    shutil.copytree(path / layout.COMMITS, kept)
    writer.close()
    shutil.copytree(kept, path / layout.COMMITS, dirs_exist_ok=True)  # the "kill"
    with open_store(path) as store:
        assert store.ids() == ["a", "b"]
        np.testing.assert_array_equal(store.get("b"), x[1:])
    open_writer(path, attrs).close()
    assert not list((path / layout.COMMITS).glob("*.npz"))
    with open_store(path) as store:
        assert store.ids() == ["a", "b"]
