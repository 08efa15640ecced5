"""Head datasets: the pairs of one dataset split joined with their embeddings from a store.

Shapes (B = batch size, D = ``store.d_model``, L = longest sequence of the batch)::

    thesis head: x1, x2 (B, L, D) float32 with pads zeroed; m1, m2 (B, L) bool (True = real)
    pooled head: x1, x2 (B, D) float32; m1 = m2 = None
    targets (B,) float32: the label (classification) or ``norm_score`` (regression)

Two ways to feed the thesis head, giving identical batches:

* in memory (:class:`InMemorySequences`): every needed sequence is read once into one flat
  ``(T, D)`` tensor (on CPU or GPU) with offsets; batches are gathered with one index op;
* streamed (:class:`StreamedSequences`): each batch reads just its sequences from the store,
  which is opened once (never per sample); memory stays at one batch.

``load_head_data(..., loader="auto")`` holds data in memory when the estimated size fits the
memory budget and streams otherwise. Pooled vectors ``(U, D)`` are small and always in memory.

Regression uses only pairs whose ``norm_score`` is finite: negatives (and any positive without a
score) have NaN scores and are left out of every split.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from embedhead.dataset import PAIRS_FILE, Dataset, PairRecord
from embedhead.errors import ConfigError, IncompatibleError, InputError
from embedhead.heads.config import LOADERS as LOADERS

READ_BLOCK = 4096  # sequences per bulk store read while loading into memory
MAX_LISTED_MISSING = 5
STORE_OPTIONS = (
    "backbone_key",
    "dtype",
    "precision",
    "max_length",
    "pooled_only",
)  # kept in run.json


@runtime_checkable
class StoreReader(Protocol):
    """The part of ``embedhead.store.EmbeddingStore`` the heads use."""

    @property
    def identity(self) -> dict[str, Any]: ...

    @property
    def d_model(self) -> int: ...

    def __contains__(self, seq_id: object) -> bool: ...

    def length(self, seq_id: str) -> int: ...

    def get(self, seq_id: str) -> np.ndarray: ...

    def get_pooled(self, ids: Sequence[str]) -> np.ndarray: ...


def read_many(store: StoreReader, ids: Sequence[str]) -> list[np.ndarray]:
    """Per-position embeddings of ``ids`` as (L_i, D) float32 arrays, via ``get_many`` if any.

    Used for bulk loading (``get_many`` reads in storage order, contiguous runs at once).
    """
    get_many = getattr(store, "get_many", None)
    arrays = list(get_many(list(ids))) if get_many is not None else [store.get(i) for i in ids]
    return [np.asarray(a, dtype=np.float32) for a in arrays]


@dataclass(frozen=True)
class SplitPairs:
    """The pairs of one split: indices into a shared list of sequence ids, and targets."""

    name: str
    pair_ids: tuple[str, ...]
    left: np.ndarray  # (N,) int64 index of seq1 in the shared id list
    right: np.ndarray  # (N,) int64 index of seq2
    targets: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.pair_ids)

    def subset(self, index: np.ndarray) -> SplitPairs:
        """The pairs at ``index`` (order kept as given)."""
        return SplitPairs(
            self.name,
            tuple(self.pair_ids[i] for i in index),
            self.left[index],
            self.right[index],
            self.targets[index],
            self.labels[index],
        )


def split_records(dataset: Dataset, split: str, task: str) -> list[PairRecord]:
    """Records of a split usable for ``task``; a clear error when there are none."""
    records = dataset.split(split)
    where = dataset.path / PAIRS_FILE
    if not records:
        raise InputError(f"split {split!r} has no pairs", where)
    if task == "regression":
        records = [r for r in records if np.isfinite(r.norm_score)]
        if not records:
            raise InputError(
                f"split {split!r} has no pairs with a finite norm_score (regression needs scored "
                "positives)",
                where,
            )
    return records


@dataclass(frozen=True)
class PairBatch:
    """One batch; see the module docstring for shapes."""

    x1: torch.Tensor
    x2: torch.Tensor
    m1: torch.Tensor | None
    m2: torch.Tensor | None
    targets: torch.Tensor


class SequenceSource(Protocol):
    """Gives embeddings of sequences by their index in the shared id list."""

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """index (B,) -> x (B, L, D) + mask (B, L), or x (B, D) + None for pooled vectors."""
        ...


class InMemorySequences:
    """All sequences in one flat (T, D) tensor with offsets; gathers a padded batch at once."""

    def __init__(self, flat: np.ndarray, lengths: np.ndarray, device: torch.device) -> None:
        """flat (T, D) float32: sequence i is rows offsets[i] : offsets[i] + lengths[i]."""
        lengths = np.asarray(lengths, dtype=np.int64)
        offsets = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        self.flat = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32)).to(device)
        self.lengths = torch.from_numpy(lengths).to(device)
        self.offsets = torch.from_numpy(offsets).to(device)
        self.device = device

    @classmethod
    def from_store(
        cls, store: StoreReader, ids: Sequence[str], d_model: int, device: torch.device
    ) -> InMemorySequences:
        """Read ``ids`` in blocks straight into one preallocated (T, D) array."""
        lengths = np.array([int(store.length(i)) for i in ids], dtype=np.int64)
        flat = np.empty((int(lengths.sum()), d_model), dtype=np.float32)
        row = 0
        for start in range(0, len(ids), READ_BLOCK):
            for array in read_many(store, ids[start : start + READ_BLOCK]):
                flat[row : row + array.shape[0]] = array
                row += array.shape[0]
        if row != flat.shape[0]:
            raise InputError("store lengths disagree with its embeddings (corrupt store?)")
        return cls(flat, lengths, device)

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """index (B,) -> x (B, L, D) with pads zeroed, mask (B, L)."""
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device)
        lengths = self.lengths[idx]  # (B,)
        width = int(lengths.max().item())
        pos = torch.arange(width, device=self.device)  # (L,)
        mask = pos.unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)
        rows = self.offsets[idx].unsqueeze(1) + torch.where(mask, pos.unsqueeze(0), 0)
        x = torch.where(mask.unsqueeze(-1), self.flat[rows], 0.0)  # (B, L, D)
        return x, mask


class StreamedSequences:
    """Reads each batch's sequences from the open store (opened once, never per sample)."""

    def __init__(
        self, store: StoreReader, ids: Sequence[str], d_model: int, device: torch.device
    ) -> None:
        self.store = store
        self.ids = list(ids)
        self.d_model = d_model
        self.device = device

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """index (B,) -> x (B, L, D) with pads zeroed, mask (B, L)."""
        unique, inverse = np.unique(np.asarray(index, dtype=np.int64), return_inverse=True)
        # random access: one read per sequence (bulk range reads would span unrelated rows)
        arrays = [np.asarray(self.store.get(self.ids[i]), dtype=np.float32) for i in unique]
        lengths = np.array([arrays[j].shape[0] for j in inverse], dtype=np.int64)
        width = int(lengths.max())
        x = np.zeros((len(index), width, self.d_model), dtype=np.float32)
        for row, j in enumerate(inverse):
            x[row, : lengths[row]] = arrays[j]
        mask = np.arange(width)[None, :] < lengths[:, None]
        return torch.from_numpy(x).to(self.device), torch.from_numpy(mask).to(self.device)


class PooledVectors:
    """Pooled vectors (U, D) in memory."""

    def __init__(self, vectors: np.ndarray, device: torch.device) -> None:
        self.vectors = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
        self.device = device

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, None]:
        """index (B,) -> x (B, D), None."""
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device)
        return self.vectors[idx], None


@dataclass(frozen=True)
class PairSource:
    """A split's pairs plus where their embeddings come from; yields :class:`PairBatch`."""

    pairs: SplitPairs
    sequences: SequenceSource
    device: torch.device

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, index: np.ndarray) -> PairBatch:
        """The pairs at positions ``index`` (B,) of this split."""
        x1, m1 = self.sequences.gather(self.pairs.left[index])
        x2, m2 = self.sequences.gather(self.pairs.right[index])
        targets = torch.from_numpy(self.pairs.targets[index]).to(self.device)
        return PairBatch(x1, x2, m1, m2, targets)

    def batches(self, batch_size: int, order: np.ndarray | None = None) -> Iterator[PairBatch]:
        """Batches in ``order`` (default: table order)."""
        order = np.arange(len(self)) if order is None else order
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size])

    def subset(self, index: np.ndarray) -> PairSource:
        """Same sequences, only the pairs at ``index``."""
        return PairSource(self.pairs.subset(index), self.sequences, self.device)


@dataclass(frozen=True)
class HeadData:
    """Splits loaded once for many trainings: what :func:`embedhead.heads.train.fit` consumes."""

    kind: str
    task: str
    d_model: int
    splits: dict[str, PairSource]
    identity: dict[str, Any] = field(default_factory=dict)
    loader: str = "memory"
    store_options: dict[str, Any] = field(default_factory=dict)
    seq_ids: tuple[str, ...] = ()  # the shared id list that SplitPairs.left/right index

    def __getitem__(self, split: str) -> PairSource:
        if split not in self.splits:
            raise ConfigError(f"split {split!r} was not loaded (have {', '.join(self.splits)})")
        return self.splits[split]


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(device)


def default_memory_budget(device: torch.device) -> int:
    """Bytes of embeddings we are willing to hold: half of free GPU or available host memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 8 << 30
    return int(available // 2)


def check_store_has(store: StoreReader, ids: Sequence[str], where: str | Path | None) -> None:
    """InputError listing a few ids when the store lacks any of ``ids``."""
    missing = [i for i in ids if i not in store]
    if missing:
        shown = ", ".join(missing[:MAX_LISTED_MISSING])
        more = "" if len(missing) <= MAX_LISTED_MISSING else ", ..."
        raise InputError(
            f"store lacks {len(missing)} of the {len(ids)} sequences needed ({shown}{more}); "
            "run `embedhead embed DATASET --backbone ... --store ...` for this dataset",
            where,
        )


def check_identity(trained: dict[str, Any], store: dict[str, Any], where: str | Path) -> None:
    """IncompatibleError when two backbone identities differ.

    Compares ``weight_hash`` and ``config`` when both identities have them (the backbone's name
    may be a local path that moved), the whole dicts otherwise.
    """
    keys = ("weight_hash", "config")
    if all(k in trained and k in store for k in keys):
        same = all(trained[k] == store[k] for k in keys)
    else:
        same = trained == store
    if not same:
        raise IncompatibleError(
            f"{where}: store was built by backbone {_describe(store)}, but the head was trained "
            f"on embeddings of {_describe(trained)}"
        )


def _describe(identity: dict[str, Any]) -> str:
    name = identity.get("name", "?")
    digest = str(identity.get("weight_hash", ""))[:12]
    return f"{name!r} (weights {digest or 'unknown'})"


@dataclass(frozen=True)
class PairSpec:
    """One pair to load: its id, the store ids of both sequences, target and label."""

    pair_id: str
    seq1: str
    seq2: str
    target: float
    label: int


def load_head_data(
    dataset: Dataset,
    store: StoreReader,
    *,
    kind: str,
    task: str,
    splits: Sequence[str] = ("train", "val", "test"),
    loader: str = "auto",
    device: str | torch.device = "cpu",
    memory_budget: int | None = None,
    store_path: str | Path | None = None,
) -> HeadData:
    """Join the pairs of ``splits`` with their embeddings (see module docstring).

    Raises InputError for an empty split or a store lacking sequences, ConfigError for a bad
    ``loader``.
    """
    specs = {
        name: [
            PairSpec(
                r.pair_id,
                r.seq1,
                r.seq2,
                float(r.label if task == "classification" else r.norm_score),
                r.label,
            )
            for r in split_records(dataset, name, task)
        ]
        for name in splits
    }
    return load_pairs(
        store,
        specs,
        kind=kind,
        task=task,
        loader=loader,
        device=device,
        memory_budget=memory_budget,
        store_path=store_path,
    )


def load_pairs(
    store: StoreReader,
    specs: dict[str, list[PairSpec]],
    *,
    kind: str,
    task: str,
    loader: str = "auto",
    device: str | torch.device = "cpu",
    memory_budget: int | None = None,
    store_path: str | Path | None = None,
) -> HeadData:
    """Like :func:`load_head_data` for pairs given directly (``{split name: [PairSpec]}``)."""
    if loader not in LOADERS:
        raise ConfigError(f"loader must be one of {LOADERS}, not {loader!r}")
    dev = resolve_device(device)
    ids: dict[str, int] = {}
    for group in specs.values():
        for spec in group:
            ids.setdefault(spec.seq1, len(ids))
            ids.setdefault(spec.seq2, len(ids))
    id_list = list(ids)
    check_store_has(store, id_list, store_path)
    d_model = int(store.d_model)
    sequences: SequenceSource
    used = "memory"
    if kind == "pooled":
        blocks = [
            np.asarray(store.get_pooled(id_list[i : i + READ_BLOCK]), dtype=np.float32)
            for i in range(0, len(id_list), READ_BLOCK)
        ]
        sequences = PooledVectors(np.concatenate(blocks, axis=0), dev)
    else:
        budget = default_memory_budget(dev) if memory_budget is None else memory_budget
        needed = sum(int(store.length(i)) for i in id_list) * d_model * 4
        if loader == "stream" or (loader == "auto" and needed > budget):
            sequences, used = StreamedSequences(store, id_list, d_model, dev), "stream"
        else:
            sequences = InMemorySequences.from_store(store, id_list, d_model, dev)
    sources = {}
    for name, group in specs.items():
        pairs = SplitPairs(
            name=name,
            pair_ids=tuple(p.pair_id for p in group),
            left=np.array([ids[p.seq1] for p in group], dtype=np.int64),
            right=np.array([ids[p.seq2] for p in group], dtype=np.int64),
            targets=np.array([p.target for p in group], dtype=np.float32),
            labels=np.array([p.label for p in group], dtype=np.int64),
        )
        sources[name] = PairSource(pairs, sequences, dev)
    attrs = getattr(store, "attrs", {})
    options = {k: attrs[k] for k in STORE_OPTIONS if k in attrs}
    return HeadData(
        kind, task, d_model, sources, dict(store.identity), used, options, tuple(id_list)
    )
