"""The embed stage with the real (tiny, random) backbone: values, pooling, dedup, refusals."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.dataset import iter_fasta, load_dataset
from embedhead.embed.config import EmbedConfig
from embedhead.embed.plan import Unique, plan_batches
from embedhead.embed.run import embed_dataset, embed_sequences, store_attrs
from embedhead.errors import ConfigError, IncompatibleError, InputError
from embedhead.store import open_store, open_writer

QUIET = {"progress": False, "device": "cpu", "batch_tokens": 600}


@pytest.fixture(scope="module")
def model(tiny_backbone_dir):
    from embedhead.backbone import load_backbone

    return load_backbone(tiny_backbone_dir)


@pytest.fixture(scope="module")
def f32_store(tmp_path_factory, tiny_dataset_dir, tiny_backbone_dir):
    path = tmp_path_factory.mktemp("embed") / "s.zarr"
    summary = embed_dataset(
        tiny_dataset_dir, path, tiny_backbone_dir, EmbedConfig(dtype="float32", **QUIET)
    )
    assert summary.stats.n_embedded == summary.stats.n_unique == 40
    return path


class CountingModel(torch.nn.Module):
    """Wraps the backbone and counts calls and sequences forwarded."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.identity = inner.identity
        self.calls = 0
        self.rows = 0

    def forward(self, ids):
        self.calls += 1
        self.rows += ids.shape[0]
        return self.inner(ids)


def test_every_sequence_stored_with_its_length_and_exact_values(f32_store, tiny_dataset_dir, model):
    seqs = dict(load_dataset(tiny_dataset_dir).sequences())
    from embedhead.backbone.tokenizer import tokenize

    with open_store(f32_store) as store:
        assert sorted(store.ids()) == sorted(seqs)
        assert store.identity["key"] == model.identity.key
        assert store.attrs["tokenizer"]["pad_id"] == 4
        for sid in list(seqs)[:8]:
            assert store.length(sid) == len(seqs[sid])
            ids, _ = tokenize([seqs[sid]])  # alone, unpadded
            with torch.inference_mode():
                alone = model(ids)[0].numpy()
            np.testing.assert_allclose(store.get(sid), alone, rtol=1e-4, atol=1e-5)


def test_pooled_is_masked_mean_of_stored_positions(f32_store):
    with open_store(f32_store) as store:
        ids = store.ids()
        pooled = store.get_pooled(ids)
        for sid, row in zip(ids, pooled, strict=True):
            np.testing.assert_allclose(row, store.get(sid).mean(axis=0), rtol=1e-5, atol=1e-6)


def test_float16_and_bfloat16_stores_round_the_float32_values(
    f32_store, tmp_path, tiny_dataset_dir, tiny_backbone_dir
):
    with open_store(f32_store) as ref:
        ids = ref.ids()[:10]
        for dtype, tol in (("float16", 2e-3), ("bfloat16", 1e-2)):
            path = tmp_path / f"{dtype}.h5"
            embed_dataset(
                tiny_dataset_dir, path, tiny_backbone_dir, EmbedConfig(dtype=dtype, **QUIET)
            )
            with open_store(path) as store:
                assert store.dtype == dtype
                for sid in ids:
                    got = store.get(sid)
                    np.testing.assert_allclose(got, ref.get(sid), rtol=tol, atol=tol)
                    np.testing.assert_allclose(
                        store.get_pooled([sid])[0], got.mean(axis=0), rtol=2 * tol, atol=2 * tol
                    )


def test_backbone_runs_once_per_unique_sequence(tmp_path, model):
    rng = np.random.default_rng(1)
    uniques = ["".join(rng.choice(list("ACGT"), size=n)) for n in (30, 45, 45, 60, 12)]
    items = [(f"r{i}", uniques[i % 5]) for i in range(20)]  # every sequence under 4 names
    counting = CountingModel(model)
    path = tmp_path / "s.zarr"
    with open_writer(path, store_attrs(model, EmbedConfig(dtype="float32"))) as writer:
        stats = embed_sequences(items, writer, counting, batch_tokens=100)
    assert counting.rows == 5 and stats.n_embedded == 5 and stats.n_written == 20
    assert stats.backbone_calls == counting.calls
    with open_store(path) as store:
        assert len(store) == 20
        np.testing.assert_array_equal(store.get("r0"), store.get("r5"))
    counting.rows = counting.calls = 0
    with open_writer(path, store_attrs(model, EmbedConfig(dtype="float32"))) as writer:
        again = embed_sequences([*items, ("extra", uniques[0])], writer, counting, batch_tokens=100)
    assert counting.calls == 1 and counting.rows == 1  # only the sequence with a new name
    assert again.n_written == 1 and again.n_skipped == 20


def test_batches_respect_the_token_budget(tmp_path, model):
    rng = np.random.default_rng(2)
    items = [(f"s{i}", "".join(rng.choice(list("ACGT"), size=10 + 7 * i))) for i in range(12)]
    shapes = []

    class Spy(CountingModel):
        def forward(self, ids):
            shapes.append(tuple(ids.shape))
            return super().forward(ids)

    with open_writer(tmp_path / "s.zarr", store_attrs(model, EmbedConfig())) as writer:
        embed_sequences(items, writer, Spy(model), batch_tokens=200)
    assert all(b * length <= 200 or b == 1 for b, length in shapes)
    assert sum(b for b, _ in shapes) == 12
    assert len(shapes) < 12  # sequences were batched together


def test_other_backbone_is_refused(f32_store, tmp_path, tiny_dataset_dir):
    from embedhead.backbone.presets import write_random_checkpoint

    other = write_random_checkpoint(
        tmp_path / "other", seed=7, d_model=16, n_layer=2, d_inner=32, max_seq_len=512
    )
    with pytest.raises(IncompatibleError, match="backbone"):
        embed_dataset(tiny_dataset_dir, f32_store, other, EmbedConfig(dtype="float32", **QUIET))
    with open_store(f32_store) as store:
        assert len(store) == 40


def test_precision_recorded_and_mixing_refused(f32_store, tiny_dataset_dir, tiny_backbone_dir):
    from embedhead.store import check_compatible

    with open_store(f32_store) as store:
        attrs = dict(store.attrs)
    assert attrs["precision"] == "float32"
    with pytest.raises(IncompatibleError, match="precision"):
        check_compatible(attrs, {**attrs, "precision": "bfloat16"}, f32_store)
    legacy = {k: v for k, v in attrs.items() if k != "precision"}  # older stores lack the key
    check_compatible(legacy, attrs, f32_store)
    with pytest.raises(ConfigError, match="precision"):
        EmbedConfig(precision="int8").validate()
    if not torch.cuda.is_available():  # half precision is a CUDA-only autocast
        with pytest.raises(ConfigError, match="--precision bfloat16 is an autocast"):
            embed_dataset(
                tiny_dataset_dir,
                f32_store,
                tiny_backbone_dir,
                EmbedConfig(dtype="float32", precision="bfloat16", **QUIET),
            )


def write_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    with gzip.open(path, "wt") as fh:
        for name, seq in records:
            fh.write(f">{name} description\n{seq}\n")
    return path


def test_too_long_sequences_named_or_truncated(tmp_path, tiny_backbone_dir):
    fasta = write_fasta(
        tmp_path / "x.fa.gz", [("short", "ACGT" * 10), ("long1", "A" * 600), ("long2", "C" * 700)]
    )
    with pytest.raises(ConfigError, match=r"long1 \(600 nt\).*long2 \(700 nt\).*--max-length"):
        embed_dataset(fasta, tmp_path / "s.zarr", tiny_backbone_dir, EmbedConfig(**QUIET))
    assert not (tmp_path / "s.zarr").exists()
    config = EmbedConfig(max_length=100, **QUIET)
    summary = embed_dataset(fasta, tmp_path / "t.zarr", tiny_backbone_dir, config)
    with open_store(tmp_path / "t.zarr") as store:
        assert {s: store.length(s) for s in store.ids()} == {
            "short": 40,
            "long1": 100,
            "long2": 100,
        }
        assert store.attrs["max_length"] == 100
    assert summary.stats.n_embedded == 3
    with pytest.raises(IncompatibleError, match="max_length"):
        embed_dataset(
            fasta, tmp_path / "t.zarr", tiny_backbone_dir, EmbedConfig(max_length=200, **QUIET)
        )


def test_fasta_input_normalised_and_bad_records_named(tmp_path, tiny_backbone_dir):
    fasta = write_fasta(tmp_path / "x.fa.gz", [("a", "acgtRYacgt"), ("b", "ACGTNNACGT")])
    embed_dataset(fasta, tmp_path / "s.zarr", tiny_backbone_dir, EmbedConfig(**QUIET))
    with open_store(tmp_path / "s.zarr") as store:  # a normalises to b: one sequence, two ids
        np.testing.assert_array_equal(store.get("a"), store.get("b"))
    bad = write_fasta(tmp_path / "bad.fa.gz", [("ok", "ACGT"), ("weird", "ACGT!!")])
    with pytest.raises(InputError, match="weird"):
        embed_dataset(bad, tmp_path / "u.zarr", tiny_backbone_dir, EmbedConfig(**QUIET))
    clash = write_fasta(tmp_path / "clash.fa.gz", [("x", "ACGT"), ("x", "GGGG")])
    with pytest.raises(InputError, match="two different sequences"):
        embed_dataset(clash, tmp_path / "v.zarr", tiny_backbone_dir, EmbedConfig(**QUIET))


def test_pooled_only_store(tmp_path, tiny_dataset_dir, tiny_backbone_dir, f32_store):
    path = tmp_path / "p.zarr"
    config = EmbedConfig(dtype="float32", pooled_only=True, **QUIET)
    embed_dataset(tiny_dataset_dir, path, tiny_backbone_dir, config)
    with open_store(path) as store, open_store(f32_store) as ref:
        assert store.pooled_only and len(store) == 40
        ids = ref.ids()
        np.testing.assert_allclose(store.get_pooled(ids), ref.get_pooled(ids), rtol=1e-5, atol=1e-6)
        assert [store.length(s) for s in ids] == [ref.length(s) for s in ids]
        with pytest.raises(ConfigError, match="pooled-only"):
            store.get(ids[0])


def test_zarr_and_hdf5_hold_the_same_values(
    f32_store, tmp_path, tiny_dataset_dir, tiny_backbone_dir
):
    path = tmp_path / "s.h5"
    embed_dataset(tiny_dataset_dir, path, tiny_backbone_dir, EmbedConfig(dtype="float32", **QUIET))
    with open_store(path) as h5, open_store(f32_store) as zr:
        assert sorted(h5.ids()) == sorted(zr.ids())
        for sid in zr.ids():
            np.testing.assert_array_equal(h5.get(sid), zr.get(sid))


def test_fasta_source_shared_with_dataset(tiny_dataset_dir):
    names = [name for name, _ in iter_fasta(tiny_dataset_dir / "sequences.fa.gz")]
    assert len(names) == len(set(names)) == 40


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=300), min_size=0, max_size=60),
    budget=st.integers(min_value=1, max_value=1000),
    window=st.integers(min_value=1, max_value=5000),
)
def test_plan_covers_every_sequence_once_within_the_budget(lengths, budget, window):
    uniques = [Unique("A" * n, (f"id{i}",)) for i, n in enumerate(lengths)]
    batches = list(plan_batches(uniques, budget, window))
    assert sorted(u.ids[0] for b in batches for u in b) == sorted(u.ids[0] for u in uniques)
    for batch in batches:
        longest = max(len(u.seq) for u in batch)
        assert len(batch) == 1 or len(batch) * longest <= budget
        assert [len(u.seq) for u in batch] == sorted((len(u.seq) for u in batch), reverse=True)
    again = list(plan_batches(list(uniques), budget, window))
    assert [[u.ids for u in b] for b in again] == [[u.ids for u in b] for b in batches]


def test_every_compression_is_lossless(tmp_path, tiny_dataset_dir, tiny_backbone_dir, suffix):
    stores = {}
    for codec in ("zstd", "lz4", "none"):
        path = tmp_path / f"{codec}{suffix}"
        embed_dataset(
            tiny_dataset_dir,
            path,
            tiny_backbone_dir,
            EmbedConfig(dtype="float16", compression=codec, **QUIET),
        )
        with open_store(path) as store:
            assert store.attrs["compression"] == codec
            stores[codec] = {i: store.get(i) for i in store.ids()}
    assert stores["zstd"].keys() == stores["none"].keys() == stores["lz4"].keys()
    for key, value in stores["none"].items():
        np.testing.assert_array_equal(stores["zstd"][key], value)
        np.testing.assert_array_equal(stores["lz4"][key], value)
    with pytest.raises(ConfigError, match="compression"):
        EmbedConfig(compression="brotli").validate()


def test_id_reused_for_another_sequence_in_a_later_run_is_refused(
    tmp_path, tiny_backbone_dir, suffix
):
    store = tmp_path / f"s{suffix}"
    first = write_fasta(tmp_path / "one.fa.gz", [("a", "ACGT")])
    embed_dataset(first, store, tiny_backbone_dir, EmbedConfig(**QUIET))
    later = write_fasta(tmp_path / "two.fa.gz", [("a", "TTTTTT"), ("b", "CC")])
    with pytest.raises(InputError, match=r"'a' is stored .* 4 positions .* 6 nt"):
        embed_dataset(later, store, tiny_backbone_dir, EmbedConfig(**QUIET))
    with open_store(store) as reader:  # nothing of the refused run was written
        assert reader.ids() == ["a"] and reader.length("a") == 4
    again = write_fasta(tmp_path / "three.fa.gz", [("a", "ACGT"), ("b", "CC")])
    summary = embed_dataset(again, store, tiny_backbone_dir, EmbedConfig(**QUIET))
    assert summary.stats.n_skipped == 1 and summary.store_sequences == 2


def test_sequence_of_only_gaps_is_refused_before_anything_is_written(tmp_path, tiny_backbone_dir):
    fasta = write_fasta(tmp_path / "gaps.fa.gz", [("ok", "ACGT"), ("gaps", "--..--")])
    with pytest.raises(InputError, match=r"'gaps' \(record 2\) holds no nucleotides"):
        embed_dataset(fasta, tmp_path / "s.zarr", tiny_backbone_dir, EmbedConfig(**QUIET))
    assert not (tmp_path / "s.zarr").exists()


def test_embed_sequences_refuses_an_empty_sequence(tmp_path, model):
    with (
        open_writer(tmp_path / "s.zarr", store_attrs(model, EmbedConfig(**QUIET))) as writer,
        pytest.raises(InputError, match="'e' is empty"),
    ):
        embed_sequences([("a", "ACGT"), ("e", "")], writer, model)
