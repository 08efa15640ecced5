import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.dataset import Dataset, load_dataset
from embedhead.errors import ConfigError, InputError
from embedhead.heads.config import HeadConfig, TrainConfig
from embedhead.heads.data import check_identity, load_head_data
from embedhead.heads.train import fit


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
