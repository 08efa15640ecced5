import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.dataset import Dataset, load_dataset
from embedhead.errors import ConfigError, InputError
from embedhead.heads.config import HeadConfig, TrainConfig
from embedhead.heads.data import (
    BUCKET_BATCHES,
    BUDGET_BUCKETS,
    BlockReader,
    ChunkedSequences,
    InMemorySequences,
    PairSource,
    PlannedReads,
    PooledVectors,
    SplitPairs,
    _decode_into,
    check_identity,
    in_background,
    load_head_data,
    plan_budget,
)
from embedhead.heads.train import fit
from embedhead.store import layout, open_store, open_writer
from tests.conftest import chunk_file


@pytest.fixture(scope="module")
def dataset(tiny_dataset_dir):
    return load_dataset(tiny_dataset_dir)


@pytest.fixture()
def store(dataset, make_signal_store):
    return make_signal_store(dataset, d_model=5)


def _load(dataset, store, loader, **kw):
    kw.setdefault("kind", "thesis")
    kw.setdefault("task", "classification")
    return load_head_data(dataset, store, loader=loader, device="cpu", **kw)


def test_split_contents_and_targets(dataset, store):
    data = _load(dataset, store, "memory")
    assert data.loader == "memory"
    for name in ("train", "val", "test"):
        recs = dataset.split(name)
        pairs = data[name].pairs
        assert pairs.pair_ids == tuple(r.pair_id for r in recs)
        np.testing.assert_array_equal(pairs.targets, [r.label for r in recs])
    batch = data["train"].batch(np.array([0, 1, 2]))
    recs = dataset.split("train")[:3]
    assert batch.x1.shape == (3, max(r.len1 for r in recs), 5)
    assert batch.m1.sum(dim=1).tolist() == [r.len1 for r in recs]
    np.testing.assert_array_equal(batch.x1[0, : recs[0].len1].numpy(), store.get(recs[0].seq1))
    assert float(batch.x1[~batch.m1].abs().sum()) == 0.0  # pads are zero


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 19), min_size=1, max_size=12))
def test_in_memory_and_streamed_batches_are_identical(tiny_dataset_dir, make_signal_store, rows):
    ds = load_dataset(tiny_dataset_dir)
    store = make_signal_store(ds, d_model=3)
    memory = _load(ds, store, "memory")["train"]
    stream = _load(ds, store, "stream")["train"]
    index = np.array([r % len(memory) for r in rows])
    a, b = memory.batch(index), stream.batch(index)
    for x, y in ((a.x1, b.x1), (a.x2, b.x2), (a.m1, b.m1), (a.m2, b.m2), (a.targets, b.targets)):
        assert torch.equal(x, y)


def test_in_memory_and_streamed_training_agree(dataset, store):
    head = HeadConfig(d_model=5, conv_channels=4, hidden_sizes=(8,))
    config = TrainConfig(epochs=3, batch_size=8, device="cpu", seed=3)
    memory = fit(head, config, _load(dataset, store, "memory"))
    stream = fit(head, config, _load(dataset, store, "stream"))
    assert memory.metrics == stream.metrics
    assert memory.history == stream.history


def test_auto_loader_streams_when_over_budget(dataset, store):
    assert _load(dataset, store, "auto", memory_budget=10).loader == "stream"
    assert _load(dataset, store, "auto", memory_budget=1 << 30).loader == "memory"


def test_pooled_vectors(dataset, store):
    data = _load(dataset, store, "auto", kind="pooled")
    batch = data["val"].batch(np.array([0, 1]))
    recs = dataset.split("val")[:2]
    assert batch.x1.shape == (2, 5) and batch.m1 is None
    np.testing.assert_allclose(batch.x2[1].numpy(), store.get(recs[1].seq2).mean(axis=0), 1e-6)


def test_regression_keeps_finite_scores_only(dataset, store):
    data = _load(dataset, store, "memory", task="regression")
    recs = [r for r in dataset.split("train") if np.isfinite(r.norm_score)]
    assert len(recs) < len(dataset.split("train"))
    np.testing.assert_allclose(data["train"].pairs.targets, [r.norm_score for r in recs], 1e-6)


def test_store_lacking_sequences_names_some(dataset, dict_store_cls, store):
    needed = dataset.sequence_ids()
    partial = dict_store_cls({k: store.get(k) for k in needed[3:]})
    with pytest.raises(InputError, match="lacks 3 of") as err:
        _load(dataset, partial, "memory", store_path="x.zarr")
    assert needed[0] in str(err.value) and "x.zarr" in str(err.value)


def test_empty_split_is_a_clear_error(dataset, store):
    no_val = Dataset(
        dataset.path, dataset.info, tuple(p for p in dataset.pairs if p.split != "val")
    )
    with pytest.raises(InputError, match="split 'val' has no pairs"):
        _load(no_val, store, "memory")
    with pytest.raises(InputError, match="unknown split"):
        _load(dataset, store, "memory", splits=("dev",))


def test_regression_without_scores_is_a_clear_error(dataset, store):
    negatives = Dataset(dataset.path, dataset.info, tuple(p for p in dataset.pairs if p.label == 0))
    with pytest.raises(InputError, match="finite norm_score"):
        _load(negatives, store, "memory", task="regression")


def test_bad_loader(dataset, store):
    with pytest.raises(ConfigError, match="loader"):
        _load(dataset, store, "disk")


def test_identity_comparison():
    a = {"name": "/a/bb", "config": {"d": 1}, "weight_hash": "x", "random_init": True}
    check_identity(a, {**a, "name": "/moved/bb"}, "s.zarr")  # a moved folder is the same backbone
    with pytest.raises(Exception, match="weights"):
        check_identity(a, {**a, "weight_hash": "y"}, "s.zarr")


# --- the chunk-granular reader on real stores (issue 10) ---------------------------------------
def _write_real_store(path, dict_store, dtype="float16", compression="zstd", seed=1):
    """A real store holding ``dict_store``'s arrays in a shuffled storage order, several commits."""
    ids = dict_store.ids()
    random.Random(seed).shuffle(ids)
    attrs = {
        "format_version": layout.FORMAT_VERSION,
        "backbone": dict_store.identity,
        "backbone_key": "signal",
        "tokenizer": {"name": "test"},
        "dtype": dtype,
        "storage_dtype": layout.STORAGE_DTYPES[dtype],
        "d_model": dict_store.d_model,
        "pooled_only": False,
        "max_length": None,
        "compression": compression,
        "command": "test",
        "created": "now",
    }
    with open_writer(path, attrs) as writer:
        for start in range(0, len(ids), 7):
            part = ids[start : start + 7]
            arrays = [dict_store.get(s) for s in part]
            writer.write(part, arrays, np.stack([a.mean(axis=0) for a in arrays]))
            writer.commit()
    return open_store(path)


@pytest.fixture(
    params=[
        (".zarr", "float16", "zstd"),
        (".h5", "float16", "zstd"),
        (".zarr", "bfloat16", "lz4"),
        (".zarr", "float32", "none"),
        (".h5", "bfloat16", "none"),
    ],
    ids=lambda p: "-".join(p),
)
def real_store(request, dataset, make_signal_store, tmp_path, monkeypatch):
    suffix, dtype, compression = request.param
    monkeypatch.setattr(layout, "TARGET_CHUNK_BYTES", 1024)  # small chunks: ~10 in this store
    store = _write_real_store(
        tmp_path / f"s{suffix}", make_signal_store(dataset, d_model=5), dtype, compression
    )
    yield store
    store.close()


def test_real_store_reads_whole_chunks(dataset, real_store):
    assert real_store.n_blocks() >= 4
    memory = _load(dataset, real_store, "memory")
    stream = _load(dataset, real_store, "stream")
    assert isinstance(stream["train"].sequences, ChunkedSequences)
    for split in ("train", "val", "test"):
        recs = dataset.split(split)
        index = np.arange(len(recs))[::-1].copy()
        a, b = memory[split].batch(index), stream[split].batch(index)
        for x, y in ((a.x1, b.x1), (a.x2, b.x2), (a.m1, b.m1), (a.m2, b.m2)):
            assert torch.equal(x, y)
        for row, i in enumerate(index):
            want = real_store.get(recs[i].seq2)
            np.testing.assert_array_equal(b.x2[row, : len(want)].numpy(), want)
            assert float(b.x2[row, len(want) :].abs().sum()) == 0.0
    # sequences cross chunk boundaries in this store: the spanning reads were exercised
    offsets, lengths = real_store.offsets(), real_store.lengths()
    rows = real_store.block_rows
    assert ((offsets // rows) != ((offsets + lengths - 1) // rows)).any()


@pytest.mark.parametrize("pick", ["all-reversed", "every-other-shuffled"])
def test_in_memory_load_holds_exactly_the_stored_rows(real_store, monkeypatch, pick):
    ids = real_store.ids()
    if pick == "all-reversed":
        ids = ids[::-1]
    else:
        ids = ids[::2]
        random.Random(3).shuffle(ids)
    filled = []  # read_block calls that filled the caller's rows of the flat array
    read_block = type(real_store).read_block

    def spy(self, k, out=None):
        got = read_block(self, k, out)
        filled.append(out is not None and got is out)
        return got

    monkeypatch.setattr(type(real_store), "read_block", spy)
    memory = InMemorySequences.from_store(real_store, ids, real_store.d_model, torch.device("cpu"))
    assert memory.flat.shape[0] == sum(real_store.length(s) for s in ids)  # no padding held
    x, mask = memory.gather(np.arange(len(ids)))
    for row, sid in enumerate(ids):
        want = real_store.get(sid)
        np.testing.assert_array_equal(x[row, : len(want)].numpy(), want)
        assert int(mask[row].sum()) == len(want)
    # chunks wholly of needed rows are read into the flat rows; others (commit padding,
    # rows not needed, the last chunk) read apart and their pieces copied
    assert any(filled) and (pick == "every-other-shuffled" or not all(filled))


def test_real_store_training_identical_in_memory_and_streamed(dataset, real_store):
    head = HeadConfig(d_model=5, conv_channels=4, hidden_sizes=(8,))
    config = TrainConfig(epochs=3, batch_size=2, device="cpu", seed=5)
    memory = fit(head, config, _load(dataset, real_store, "memory"))
    stream = fit(head, config, _load(dataset, real_store, "stream"))
    assert memory.metrics == stream.metrics
    assert memory.history == stream.history


def test_streamed_batches_are_float32_for_a_cpu_model_and_raw_for_an_accelerator(
    dataset, real_store
):
    """CPU: rows widened as they are copied in (float32, equal to in memory); another device
    type: the storage dtype, half the bytes to move, widened there, to the same values."""
    memory = _load(dataset, real_store, "memory")["train"]
    seq_ids = list(_load(dataset, real_store, "memory").seq_ids)
    index = np.arange(len(memory))[::-1].copy()
    groups = [(memory.pairs.left[index[s : s + 3]], memory.pairs.right[index[s : s + 3]])
              for s in range(0, len(index), 3)]  # fmt: skip
    stored = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    cpu = ChunkedSequences(real_store, seq_ids, 5, torch.device("cpu"))
    other = ChunkedSequences(real_store, seq_ids, 5, torch.device("meta"))
    for s, cpu_step, raw_step in zip(
        range(0, len(index), 3), cpu.stream(groups), other.stream(groups), strict=True
    ):
        want = memory.batch(index[s : s + 3])
        for (x, m), (r, rm), wx, wm in zip(
            cpu_step, raw_step, (want.x1, want.x2), (want.m1, want.m2), strict=True
        ):
            assert x.dtype == torch.float32 and torch.equal(x, wx) and torch.equal(m, wm)
            assert r.dtype == stored[real_store.dtype] and r.device.type == "cpu"
            assert torch.equal(r.to(torch.float32), wx) and torch.equal(rm, wm)


def test_streamed_epoch_reads_each_chunk_once_and_cache_stays_bounded(dataset, real_store):
    source = _load(dataset, real_store, "stream")["train"]
    seqs = source.sequences
    reader = seqs.reader
    order = source.epoch_order(torch.Generator().manual_seed(0), 4)
    needed = {
        k
        for i in np.concatenate([source.pairs.left, source.pairs.right])
        for k in reader.blocks_of(
            int(source.sequences.offsets[i]), int(source.sequences.lengths[i])
        )
    }
    n = sum(1 for _ in source.batches(4, order))
    assert n == -(-len(source) // 4)
    assert reader.blocks_read == len(needed)  # a cache larger than the data: one read per chunk
    small = ChunkedSequences(
        real_store, list(_load(dataset, real_store, "memory").seq_ids), 5, torch.device("cpu"),
        cache_bytes=1,
    )  # fmt: skip
    ref = source.batch(order[:6])
    got = small.gather(source.pairs.left[order[:6]])
    assert torch.equal(got[0], ref.x1)
    assert len(small.reader._cache) <= 1  # bounded: never more than the budget (or one chunk)


def test_damaged_chunk_is_a_clear_error_from_the_reader_threads(
    dataset, tmp_path, make_signal_store
):
    store = _write_real_store(tmp_path / "bad.zarr", make_signal_store(dataset, d_model=5))
    chunk = chunk_file(tmp_path / "bad.zarr", "positions", 0)
    assert chunk.is_file()
    chunk.write_bytes(b"not a blosc frame")
    source = _load(dataset, store, "stream")["train"]
    with pytest.raises(InputError, match=r"damaged store: positions rows 0\.\."):
        list(source.batches(2))


def _synthetic_source(n, keys):
    pairs = SplitPairs(
        "train",
        tuple(f"p{i}" for i in range(n)),
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.float32),
        np.zeros(n, dtype=np.int64),
        np.asarray(keys, dtype=np.int64),
    )
    return PairSource(
        pairs, PooledVectors(np.zeros((1, 2)), torch.device("cpu")), torch.device("cpu")
    )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 300),
    batch_size=st.integers(1, 9),
    seed=st.integers(0, 10),
    data=st.data(),
)
def test_epoch_order_is_shuffled_buckets_of_neighbours(n, batch_size, seed, data):
    keys = np.array(data.draw(st.lists(st.integers(0, 50), min_size=n, max_size=n)))
    source = _synthetic_source(n, keys)
    gen = torch.Generator().manual_seed(seed)
    first, second = source.epoch_order(gen, batch_size), source.epoch_order(gen, batch_size)
    for order in (first, second):
        assert sorted(order.tolist()) == list(range(n))  # a permutation
    again = torch.Generator().manual_seed(seed)
    assert np.array_equal(source.epoch_order(again, batch_size), first)  # seeded, deterministic
    size = BUCKET_BATCHES * batch_size
    if n <= size:
        return
    full = n - n % batch_size
    ranked = np.sort(keys[first[:full]])
    bounds = [(ranked[s], ranked[min(s + size, full) - 1]) for s in range(0, full, size)]
    for start in range(0, full, batch_size):
        batch = keys[first[start : start + batch_size]]
        assert any(lo <= batch.min() and batch.max() <= hi for lo, hi in bounds)


def test_epoch_order_varies_between_epochs_and_seeds():
    source = _synthetic_source(400, np.arange(400))
    gen = torch.Generator().manual_seed(0)
    a, b = source.epoch_order(gen, 4), source.epoch_order(gen, 4)
    c = source.epoch_order(torch.Generator().manual_seed(1), 4)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a, np.sort(a))  # shuffled, not storage order


# --- planned streamed reads and background batches (issue 10, read side) ----------------------
@pytest.fixture(scope="module")
def planned_store(tmp_path_factory, tiny_dataset_dir, make_signal_store):
    """A real float16 zstd store of the tiny dataset with ~1 KiB chunks (many chunks, spans)."""
    ds = load_dataset(tiny_dataset_dir)
    saved = layout.TARGET_CHUNK_BYTES
    layout.TARGET_CHUNK_BYTES = 1024
    try:
        store = _write_real_store(
            tmp_path_factory.mktemp("planned") / "s.zarr", make_signal_store(ds, d_model=5)
        )
    finally:
        layout.TARGET_CHUNK_BYTES = saved
    yield ds, store
    store.close()


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.lists(st.integers(0, 10_000), min_size=1, max_size=6), max_size=25),
    budget_rows=st.integers(0, 400),
)
def test_planned_reads_give_exact_rows_within_budget(planned_store, steps, budget_rows):
    _, store = planned_store
    ids = store.ids()
    offsets, lengths = store.offsets(), store.lengths()
    row_bytes = store.d_model * 2
    reader = BlockReader(store, cache_bytes=0)
    try:
        plan_steps = [np.array([q % len(ids) for q in s]) for s in steps]
        plan = PlannedReads(
            reader, offsets, lengths, plan_steps, budget_rows * row_bytes, row_bytes
        )
        for t, qs in enumerate(plan_steps):
            got = plan.take(t)
            assert sorted(got) == sorted(set(qs.tolist()))
            for q, pieces in got.items():
                rows = np.concatenate(pieces)
                decoded = np.zeros(rows.shape, dtype=np.float32)
                _decode_into(decoded, rows, store.dtype)
                np.testing.assert_array_equal(decoded, store.get(ids[q]))
        step_bytes = [int(lengths[np.unique(s)].sum()) * row_bytes for s in plan_steps]
        assert plan.peak <= max([budget_rows * row_bytes, *step_bytes])  # bounded
        needed = {
            k
            for s in plan_steps
            for q in s.tolist()
            for k in reader.blocks_of(int(offsets[q]), int(lengths[q]))
        }
        if budget_rows * row_bytes >= int(lengths.sum()) * row_bytes:
            assert reader.blocks_read == len(needed)  # room for every row: each chunk once
        else:
            assert reader.blocks_read >= len(needed)
    finally:
        reader.close()


def test_planned_reads_start_the_next_steps_chunks_while_this_step_is_used(planned_store):
    """Read-ahead: the chunks step t + 1 reads are submitted by take(t) (step 0's by the plan
    itself), exactly those and each once, so reading overlaps the caller's work on step t."""
    _, store = planned_store
    offsets, lengths = store.offsets(), store.lengths()
    row_bytes = store.d_model * 2
    reader = BlockReader(store, cache_bytes=0)
    submitted: list[int] = []
    real_submit = reader.submit

    def spy(k: int):
        submitted.append(k)
        return real_submit(k)

    reader.submit = spy  # type: ignore[method-assign]
    n = len(store.ids())
    steps = [np.array([0, 1]), np.array([n // 2, n // 2 + 1]), np.array([n - 1]), np.array([0])]

    def chunks(qs: np.ndarray) -> list[int]:
        return sorted(
            {k for q in qs.tolist() for k in reader.blocks_of(int(offsets[q]), int(lengths[q]))}
        )

    try:
        plan = PlannedReads(reader, offsets, lengths, steps, 0, row_bytes)  # budget 0: keep none
        assert submitted == chunks(steps[0])  # before the first take
        for t in range(len(steps)):
            before = len(submitted)
            plan.take(t)
            following = chunks(steps[t + 1]) if t + 1 < len(steps) else []
            assert submitted[before:] == following  # nothing for step t itself: read ahead
        assert reader.blocks_read == sum(len(chunks(s)) for s in steps)  # each read once
    finally:
        plan.close()
        reader.close()


def test_small_budget_reads_more_chunks_and_gives_the_same_batches(planned_store):
    ds, store = planned_store
    memory = _load(ds, store, "memory")["train"]
    order = memory.epoch_order(torch.Generator().manual_seed(2), 3)
    want = list(memory.batches(3, order))
    seq_ids = list(_load(ds, store, "memory").seq_ids)
    reads = {}
    for budget in (1, 1 << 30):
        chunked = ChunkedSequences(store, seq_ids, 5, torch.device("cpu"), cache_bytes=budget)
        source = PairSource(memory.pairs, chunked, torch.device("cpu"))
        got = list(source.batches(3, order))
        assert len(got) == len(want)
        for a, b in zip(want, got, strict=True):
            for x, y in ((a.x1, b.x1), (a.x2, b.x2), (a.m1, b.m1), (a.m2, b.m2)):
                assert torch.equal(x, y)
            assert torch.equal(a.targets, b.targets)
        reads[budget] = chunked.reader.blocks_read
        assert chunked.last_plan is not None and chunked.last_plan.used == 0  # all released
    assert reads[1] > reads[1 << 30]  # the budget is what saves re-reads


def test_default_budget_follows_the_plan_not_the_dataset():
    steps = np.array([10, 20, 30, 40] * 20)
    window = BUCKET_BATCHES * BUDGET_BUCKETS
    assert plan_budget(steps, 1 << 40) == int(np.convolve(steps, np.ones(window), "valid").max())
    assert plan_budget(np.tile(steps, 50), 1 << 40) == plan_budget(steps, 1 << 40)  # 50x data
    assert plan_budget(steps, 7) == 7  # never above the ceiling
    assert plan_budget(np.array([5, 6]), 1 << 40) == 11  # fewer steps than a window


def test_background_prefetch_trains_bit_identically(planned_store):
    ds, store = planned_store
    head = HeadConfig(d_model=5, conv_channels=4, hidden_sizes=(8,))
    config = TrainConfig(epochs=3, batch_size=2, device="cpu", seed=9)
    results = []
    for depth in (0, 1, 3):
        data = _load(ds, store, "stream")
        sequences = data["train"].sequences
        assert isinstance(sequences, ChunkedSequences)
        sequences.prefetch = depth  # 0: built in the training thread
        results.append(fit(head, config, data))
    first = results[0]
    for other in results[1:]:
        assert other.history == first.history and other.metrics == first.metrics
        a, b = first.head.state_dict(), other.head.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_in_background_keeps_order_bounds_lookahead_and_raises():
    made: list[int] = []
    closed: list[bool] = []

    def items(n, fail_at=None):
        try:
            for i in range(n):
                if i == fail_at:
                    raise InputError("broken item", "x.zarr")
                made.append(i)
                yield i
        finally:
            closed.append(True)

    seen = []
    for item in in_background(items(20), 2):
        seen.append(item)
        assert len(made) - len(seen) <= 3  # queue of 2 plus the one being put
    assert seen == list(range(20)) and closed == [True]
    with pytest.raises(InputError, match="broken item"):
        list(in_background(items(10, fail_at=4), 2))
    made.clear()
    closed.clear()
    stream = in_background(items(1000), 2)
    assert next(stream) == 0
    stream.close()  # the consumer leaves early: the producer stops and the source is closed
    assert closed == [True] and len(made) <= 5


def test_in_memory_rows_keep_the_storage_dtype_and_batches_match_the_stream(planned_store):
    ds, store = planned_store
    ids = _load(ds, store, "memory").seq_ids  # every sequence the splits use
    values = sum(store.length(i) for i in ids) * store.d_model
    # a budget between the float16 and the float32 size: float16 rows are held in memory
    data = _load(ds, store, "auto", memory_budget=3 * values)
    assert data.loader == "memory"
    sequences = data["train"].sequences
    assert isinstance(sequences, InMemorySequences) and sequences.flat.dtype == torch.float16
    assert _load(ds, store, "auto", memory_budget=values).loader == "stream"  # 2 bytes/value
    stream = _load(ds, store, "stream")["train"]
    index = np.arange(min(8, len(data["train"])))
    a, b = data["train"].batch(index), stream.batch(index)
    assert a.x1.dtype == torch.float32 and torch.equal(a.x1, b.x1) and torch.equal(a.x2, b.x2)
    streamed = next(iter(stream.batches(len(index), index)))
    assert torch.equal(streamed.x1, a.x1) and streamed.x1.dtype == torch.float32
