"""Shared fixtures, by topic. Real alignment files live in ../shared/realdata (skipped when absent).

Topics, in file order: session settings (hypothesis profile, offline hub, torch threads) and real
data; store backends; dataset folders (tiny, related); in-memory stores for heads (DictStore,
signal stores, k-mer stores); simulated alignments; backbone checkpoints and real stores built
from them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
# CI runs must be reproducible: hypothesis draws the same examples every time there.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real-data folder; skips the test cleanly when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real alignment data not found at {REALDATA}")
    return REALDATA


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Every test process uses one torch thread (2 shared cores; xdist runs 2 processes)."""
    import torch

    torch.set_num_threads(1)


# --- store backends ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    """A store backend as the tests name it: ``name`` (zarr, hdf5) and the path ``suffix``."""

    name: str
    suffix: str


BACKENDS = (Backend("zarr", ".zarr"), Backend("hdf5", ".h5"))


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Runs the test once per store backend."""
    return request.param


@pytest.fixture
def suffix(backend: Backend) -> str:
    """The store path suffix of the current :func:`backend` (".zarr" or ".h5")."""
    return backend.suffix


def row_chunk_key(fs: Any, store: str, name: str, k: int) -> str:
    """The key of row chunk ``k`` of the (rows, D) array ``name`` of the Zarr store at
    ``store`` on the fsspec filesystem ``fs``, by the array's own chunk key encoding (read
    from its zarr.json)."""
    import json

    meta = json.loads(fs.cat_file(f"{store}/{name}/zarr.json"))
    sep = meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/")
    return f"{store}/{name}/c{sep}{k}{sep}0"


def chunk_file(store: Path, name: str, k: int) -> Path:
    """The file of chunk ``k`` (along rows) of array ``name`` of a local Zarr store, named by
    the array's own chunk key encoding (``c.<k>.0`` in new stores, ``c/<k>/0`` in older)."""
    import zarr

    array = zarr.open_array(str(store / name), mode="r")
    return store / name / array.metadata.encode_chunk_key((k,) + (0,) * (array.ndim - 1))


# ---------------------------------------------------------------------------------------------
# dataset folders: a tiny dataset folder written with embedhead.dataset's
# write_dataset, so stages after `prepare` can be tested without it. Session-scoped, deterministic.
# `tiny_dataset_dir` layout: 40 unique random sequences (lengths 20..120), 60 pairs (30
# positives, 30 negatives that reuse the same sequences), train/val/test each with both labels.
# ---------------------------------------------------------------------------------------------
TINY_DATASET_SEQUENCES = 40
TINY_DATASET_PAIRS = 60


def write_tiny_dataset(
    out_dir: Path, *, n_sequences: int = TINY_DATASET_SEQUENCES, seed: int = 0
) -> Path:
    """Write a small valid dataset folder (sequences.fa.gz, pairs.tsv.gz, dataset.json)."""
    import random

    from embedhead.dataset import PairRecord, pair_of_sequences, sequence_id, write_dataset

    rng = random.Random(seed)
    seqs: dict[str, str] = {}
    while len(seqs) < n_sequences:
        seq = "".join(rng.choice("ACGT") for _ in range(rng.randint(20, 120)))
        seqs.setdefault(sequence_id(seq), seq)
    ids = list(seqs)
    half = n_sequences // 2
    records: list[PairRecord] = []
    splits = ("train", "val", "test")
    for i in range(half):  # positives: sequence i with sequence half + i
        a, b = seqs[ids[i]], seqs[ids[half + i]]
        records.append(
            pair_of_sequences(
                f"p{i:04d}",
                1,
                a,
                b,
                split=splits[i % 3],
                score=float(rng.randint(10, 200)),
                identity=rng.random(),
                db1="hg38",
                chrom1="chr1",
                start1=1000 * i,
                end1=1000 * i + len(a),
                db2="galGal6",
                chrom2="chr2",
                start2=2000 * i,
                end2=2000 * i + len(b),
                block_id=f"b{i:04d}",
            )
        )
    for i in range(half):  # negatives: the same sequences, shuffled partners (1:1)
        a, b = seqs[ids[i]], seqs[ids[half + (i + 1 + rng.randrange(half - 1)) % half]]
        records.append(
            pair_of_sequences(f"n{i:04d}", 0, a, b, split=splits[i % 3], db1="hg38", db2="galGal6")
        )
    info = {
        "command": "tests/conftest.py write_tiny_dataset",
        "seed": seed,
        "counts": {
            s: {
                "positives": sum(r.split == s and r.label == 1 for r in records),
                "negatives": sum(r.split == s and r.label == 0 for r in records),
            }
            for s in splits
        },
        "n_sequences": len(seqs),
    }
    return write_dataset(out_dir, seqs.values(), records, info)


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid dataset folder (see write_tiny_dataset); treat it as read-only."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_dataset") / "ds")


# ---------------------------------------------------------------------------------------------
# dataset folders: a *learnable* toy dataset folder. Positives
# pair a random sequence with a mutated copy of itself (substitutions at `mutation_rate`),
# negatives pair two unrelated random sequences of equal length, so k-mer similarity (not
# length) separates the labels.
# Lengths 60..140, splits assigned round-robin so every split holds both labels.
# ---------------------------------------------------------------------------------------------
def write_related_dataset(
    out_dir: Path,
    *,
    n_positives: int = 60,
    mutation_rate: float = 0.1,
    gc: float = 0.5,
    seed: int = 0,
) -> Path:
    """Write a dataset folder whose labels are learnable from sequence similarity."""
    import math
    import random

    from embedhead.dataset import PairRecord, pair_of_sequences, sequence_id, write_dataset

    rng = random.Random(seed)
    weights = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]

    def random_seq(length: int | None = None) -> str:
        k = rng.randint(60, 140) if length is None else length
        return "".join(rng.choices("ACGT", weights=weights, k=k))

    def mutate(seq: str) -> str:
        return "".join(
            rng.choice([b for b in "ACGT" if b != c]) if rng.random() < mutation_rate else c
            for c in seq
        )

    seqs: dict[str, str] = {}
    records: list[PairRecord] = []
    splits = ("train", "val", "test")

    def add(i: int, label: int, a: str, b: str) -> None:
        seqs[sequence_id(a)], seqs[sequence_id(b)] = a, b
        records.append(
            pair_of_sequences(
                f"{'p' if label else 'n'}{i:05d}",
                label,
                a,
                b,
                split=splits[i % 3],
                score=float(len(a)) * (1 - 2 * mutation_rate) if label else math.nan,
                identity=1 - mutation_rate if label else math.nan,
                db1="ref",
                chrom1="chr1" if label else "",
                db2="qry",
                chrom2="chr1" if label else "",
                block_id=f"b{i:05d}" if label else "",
            )
        )

    for i in range(n_positives):
        a = random_seq()
        add(i, 1, a, mutate(a))
    for i in range(n_positives):  # same lengths as positives: length alone tells nothing
        a = random_seq()
        add(i, 0, a, random_seq(len(a)))
    info = {"command": "tests/conftest.py write_related_dataset", "seed": seed}
    return write_dataset(out_dir, seqs.values(), records, info)


@pytest.fixture(scope="session")
def related_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learnable toy dataset folder (see write_related_dataset); treat it as read-only."""
    return write_related_dataset(tmp_path_factory.mktemp("related_dataset") / "ds")


# ---------------------------------------------------------------------------------------------
# in-memory stores: a stand-in for an embedding store, so head training can be
# tested on plain arrays. `DictStore` has the reader API the heads use (identity, d_model, ids,
# __contains__, length, get, get_many, get_pooled, close). `signal_store(dataset)` gives each
# positive pair a shared random direction, so pairs are learnable (positives close, negatives not).
# ---------------------------------------------------------------------------------------------
class DictStore:
    """Embedding store backed by a dict of (L, D) float32 arrays."""

    def __init__(self, arrays, identity=None, path="dict-store"):
        import numpy as np

        self.arrays = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        self.path = path
        self._identity = dict(identity or {"name": "fake", "config": {"d": 1}, "weight_hash": "0"})
        self.closed = False

    @property
    def identity(self):
        return dict(self._identity)

    @property
    def d_model(self):
        return next(iter(self.arrays.values())).shape[1]

    def ids(self):
        return list(self.arrays)

    def __contains__(self, sid):
        return sid in self.arrays

    def __len__(self):
        return len(self.arrays)

    def length(self, sid):
        return self.arrays[sid].shape[0]

    def get(self, sid):
        return self.arrays[sid].copy()

    def get_many(self, sids):
        return [self.get(s) for s in sids]

    def get_pooled(self, sids):
        import numpy as np

        return np.stack([self.arrays[s].mean(axis=0) for s in sids]).astype(np.float32)

    def close(self):
        self.closed = True


def signal_store(dataset, d_model=8, seed=0, noise=0.3, identity=None):
    """DictStore for a dataset: sequences of a positive pair share a random direction."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = {}
    for p in dataset.pairs:
        if p.label == 1:
            v = rng.normal(size=d_model)
            base[p.seq1] = v
            base[p.seq2] = v
    arrays = {}
    for p in dataset.pairs:
        for sid, n in ((p.seq1, p.len1), (p.seq2, p.len2)):
            if sid not in arrays:
                v = base.get(sid, rng.normal(size=d_model))
                arrays[sid] = v[None, :] + noise * rng.normal(size=(n, d_model))
    return DictStore(arrays, identity=identity)


@pytest.fixture(scope="session")
def dict_store_cls():
    """The DictStore class (tests build their own stores)."""
    return DictStore


@pytest.fixture(scope="session")
def make_signal_store():
    """signal_store(dataset, d_model=8, seed=0, noise=0.3, identity=None) -> DictStore."""
    return signal_store


# --- simulated alignments (prepare & simulate) -------------------------------------------------


@pytest.fixture(scope="session")
def simulated_maf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded synthetic multi-species MAF (gzip) written by `embedhead simulate`."""
    from embedhead.prepare.simulate import SimulateConfig, write_maf

    path = tmp_path_factory.mktemp("simulated") / "sim.maf.gz"
    write_maf(path, SimulateConfig(n_blocks=60, seed=7, mean_length=300, long_fraction=0.1))
    return path


# --- in-memory stores: a k-mer "store" for fast head training (sweeps, experiments) -------------
class KmerFakeStore:
    """An in-memory stand-in for an embedding store (the heads' StoreReader protocol).

    Per-position embedding of position i = one-hot of the 3-mer starting at i, times 8
    (shape (L, 64) float32; the last 2 positions repeat the last full 3-mer); pooled vector =
    their mean. Similar sequences get similar vectors, so heads can learn `related_dataset_dir`
    without a backbone.
    """

    d_model = 64

    def __init__(self, dataset_dir: Path, identity: dict | None = None) -> None:
        import numpy as np

        from embedhead.dataset import load_dataset

        self.identity = identity or {"name": "kmer-fake", "weight_hash": "fake", "config": {}}
        self._arrays: dict[str, np.ndarray] = {}
        codes = {c: i for i, c in enumerate("ACGT")}
        for sid, seq in load_dataset(dataset_dir).sequences():
            idx = [
                16 * codes.get(seq[i], 0) + 4 * codes.get(seq[i + 1], 0) + codes.get(seq[i + 2], 0)
                for i in range(len(seq) - 2)
            ]
            idx += idx[-1:] * 2
            arr = np.zeros((len(seq), 64), dtype=np.float32)
            arr[np.arange(len(seq)), idx] = 8.0
            self._arrays[sid] = arr
        self.n_get = 0

    def __contains__(self, sid: object) -> bool:
        return sid in self._arrays

    def length(self, sid: str) -> int:
        return int(self._arrays[sid].shape[0])

    def get(self, sid: str):
        self.n_get += 1
        return self._arrays[sid]

    def get_pooled(self, sids):
        import numpy as np

        self.n_get += len(sids)
        return np.stack([self._arrays[s].mean(axis=0) for s in sids])

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def related_fake_store(related_dataset_dir: Path) -> KmerFakeStore:
    """KmerFakeStore over `related_dataset_dir` (in memory, no backbone)."""
    return KmerFakeStore(related_dataset_dir)


# --- backbone checkpoints and real stores: tiny random HyenaDNA -----------------------------------
TINY_BACKBONE = {"d_model": 16, "n_layer": 2, "d_inner": 32, "max_seq_len": 512}


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny RANDOM checkpoint folder (-hf layout; d_model 16, 2 layers, max_seq_len 512).

    Load it with ``embedhead.backbone.load_backbone(tiny_backbone_dir)``; for other shapes call
    ``embedhead.backbone.presets.write_random_checkpoint(out_dir, seed=..., **overrides)``.
    """
    from embedhead.backbone.presets import write_random_checkpoint

    return write_random_checkpoint(
        tmp_path_factory.mktemp("backbone") / "tiny", preset="tiny-1k", seed=0, **TINY_BACKBONE
    )


@pytest.fixture(scope="session")
def heads_tiny_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_dataset_dir: Path, tiny_backbone_dir: Path
) -> Path:
    """A real .zarr store of `tiny_dataset_dir` embedded by `tiny_backbone_dir`."""
    from embedhead.embed.run import EmbedConfig, embed_dataset

    path = tmp_path_factory.mktemp("heads_store") / "tiny.zarr"
    embed_dataset(
        tiny_dataset_dir, path, tiny_backbone_dir, EmbedConfig(progress=False, device="cpu")
    )
    return path


# --- real stores: a .zarr store of `related_dataset_dir` (sweeps, experiments) --------------------
@pytest.fixture(scope="session")
def related_store(
    tmp_path_factory: pytest.TempPathFactory, related_dataset_dir: Path, tiny_backbone_dir: Path
) -> Path:
    """`related_dataset_dir` embedded by the tiny RANDOM backbone into a .zarr store."""
    from embedhead.embed.run import EmbedConfig, embed_dataset

    path = tmp_path_factory.mktemp("related_store") / "related.zarr"
    embed_dataset(
        related_dataset_dir, path, tiny_backbone_dir, EmbedConfig(progress=False, device="cpu")
    )
    return path
