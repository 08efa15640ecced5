"""``store info`` and ``store verify``: what a store holds, and whether it is sound.

``store_info(path) -> StoreInfo`` (counts, bytes on disk per nucleotide, backbone, dtype).
Both accept a local store or the fsspec URL of a ``.zarr`` store (``s3://bucket/cache.zarr``).
``verify_store(path, source=None) -> VerifyReport``: the index is consistent (unique ids,
positive lengths, increasing non-overlapping offsets within ``positions``; a damaged index is a
StoreDamaged on open), every stored chunk of every array reads back (checksum, codec, present:
one problem per damaged chunk, by array and row range), every value of ``positions`` and
``pooled`` is finite, each ``positions`` chunk is the one written there (its crc32c trailer is
the one ``chunk_crcs`` records: catches a chunk copied over another, a valid checksum in the
wrong place), each pooled vector is the mean of its sequence's rows (the same in stores without
``chunk_crcs``, and copied ``pooled`` chunks), and, given a dataset folder or FASTA file,
every one of its sequences is present with the right length (truncation to ``max_length``
included).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

from embedhead.dataset import source_records
from embedhead.errors import StoreDamaged
from embedhead.store import layout
from embedhead.store.access import backend_of, open_store, part_paths
from embedhead.store.zarr_backend import is_url, storage_options


@dataclass(frozen=True)
class StoreInfo:
    """Summary of a store (``bytes_per_nucleotide`` = bytes on disk / stored positions)."""

    path: str
    backend: str
    n_sequences: int
    n_positions: int
    bytes_on_disk: int
    dtype: str
    d_model: int
    pooled_only: bool
    backbone: dict[str, Any]
    format_version: int
    pending_parts: int
    command: str

    @property
    def bytes_per_nucleotide(self) -> float:
        return self.bytes_on_disk / self.n_positions if self.n_positions else 0.0

    def describe(self) -> str:
        name = self.backbone.get("name", "?")
        key = self.backbone.get("key", "?")
        random = " (RANDOM weights)" if self.backbone.get("random_init") else ""
        lines = [
            f"store          {self.path} ({self.backend}, format {self.format_version})",
            f"sequences      {self.n_sequences}",
            f"positions      {self.n_positions}",
            f"bytes on disk  {self.bytes_on_disk} ({self.bytes_per_nucleotide:.1f} per nucleotide)",
            f"dtype          {self.dtype}, d_model {self.d_model}"
            + (", pooled only" if self.pooled_only else ""),
            f"backbone       {name} [{key}]{random}",
            f"command        {self.command}",
        ]
        if self.pending_parts:
            lines.append(
                f"pending shards {self.pending_parts} (run `embedhead store merge {self.path}`)"
            )
        return "\n".join(lines)


def disk_usage(path: str | Path) -> int:
    """Bytes of a file, or of every file under a folder (or under an fsspec URL)."""
    if is_url(path):
        fs, root = fsspec.core.url_to_fs(str(path), **storage_options(str(path)))
        return int(fs.du(root, total=True))
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += (Path(root) / name).stat().st_size
    return total


def store_info(path: str | Path) -> StoreInfo:
    """Counts, size on disk, backbone and dtype of a store."""
    with open_store(path) as store:
        attrs = store.attrs
        return StoreInfo(
            path=str(path),
            backend=backend_of(path),
            n_sequences=len(store),
            n_positions=int(store.lengths().sum()),
            bytes_on_disk=disk_usage(path),
            dtype=store.dtype,
            d_model=store.d_model,
            pooled_only=store.pooled_only,
            backbone=store.identity,
            format_version=int(attrs["format_version"]),
            pending_parts=0 if is_url(path) else len(part_paths(path)),
            command=str(attrs.get("command", "")),
        )


@dataclass(frozen=True)
class VerifyReport:
    """Problems found (empty when the store is sound)."""

    path: str
    n_checked: int
    problems: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())
    """What could not be checked (e.g. content hashes of a store written before they existed)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self, limit: int = 20) -> str:
        notes = [f"  note: {n}" for n in self.notes]
        if self.ok:
            return "\n".join([f"{self.path}: OK ({self.n_checked} sequences checked)", *notes])
        shown = list(self.problems[:limit])
        if len(self.problems) > limit:
            shown.append(f"... and {len(self.problems) - limit} more")
        head = f"{self.path}: {len(self.problems)} problem(s) in {self.n_checked} sequences"
        return "\n".join([head, *("  " + p for p in shown), *notes])


def verify_store(path: str | Path, source: str | Path | None = None) -> VerifyReport:
    """Check index consistency, finiteness, and (with ``source``) presence and lengths."""
    problems: list[str] = []
    try:
        opened = open_store(path)
    except StoreDamaged as exc:  # a damaged index: the store cannot even be listed
        where = f"{exc.array} {exc.rows}: {exc.reason}" if exc.rows else exc.message
        return VerifyReport(path=str(path), n_checked=0, problems=(where,))
    with opened as store:
        ids = store.ids()
        offsets, lengths = store.offsets(), store.lengths()
        if len(set(ids)) != len(ids):
            problems.append("duplicate ids in the index")
        for sid, n in zip(ids, lengths, strict=True):
            if n <= 0:
                problems.append(f"{sid}: length {n}")
        if not store.pooled_only and len(ids):
            # format 2: increasing, non-overlapping (chunk-aligned batches leave gaps between)
            least = np.concatenate(([0], (offsets + lengths)[:-1]))
            for sid, off, exp in zip(ids, offsets, least, strict=True):
                if off < exp:
                    problems.append(f"{sid}: offset {off}, expected at least {exp}")
                    break
        damage = store.chunk_problems()
        problems.extend(damage)
        if damage:  # values of damaged chunks cannot be read; the list above says where
            return VerifyReport(path=str(path), n_checked=len(ids), problems=tuple(problems))
        tolerance = _MEAN_TOLERANCE[store.dtype]
        for chunk in store.iter_chunks(positions=not store.pooled_only):
            for i, sid in enumerate(chunk.ids):
                if not np.isfinite(chunk.pooled[i]).all():
                    problems.append(f"{sid}: non-finite pooled embedding")
            for i, (sid, emb, n) in enumerate(
                zip(chunk.ids, chunk.embeddings, chunk.lengths, strict=False)
            ):
                if emb.shape != (n, store.d_model):
                    problems.append(f"{sid}: positions shape {emb.shape}, expected {n} rows")
                elif not np.isfinite(emb).all():
                    problems.append(f"{sid}: non-finite per-position embeddings")
                elif not _mean_matches(emb, chunk.pooled[i], tolerance):
                    problems.append(
                        f"{sid}: pooled vector is not the mean of its positions rows (rows "
                        "overwritten or a chunk copied over another)"
                    )
        notes: list[str] = []
        if not store.pooled_only and not store.chunk_identity_known():
            notes.append(
                "chunk identity check unavailable for this store (it has no chunk_crcs / "
                "chunk_checksums record): "
                "a valid positions chunk copied over another is caught only by the pooled = "
                "mean(rows) check above, and not by the other readers"
            )
        if source is not None:
            hashes = store.content_hashes()
            if hashes is None:
                notes.append(
                    "store has no content hashes (written before they existed): a reused id "
                    "naming other content of the same length cannot be detected"
                )
            problems.extend(_check_presence(store, Path(source), hashes or {}))
        return VerifyReport(
            path=str(path), n_checked=len(ids), problems=tuple(problems), notes=tuple(notes)
        )


_MEAN_TOLERANCE = {"float32": 1e-4, "float16": 4e-3, "bfloat16": 3e-2}
"""Relative tolerance of pooled vs the mean of the stored rows (both rounded to the dtype)."""


def _mean_matches(rows: np.ndarray, pooled: np.ndarray, tolerance: float) -> bool:
    """pooled (D,) equals the mean of rows (L, D) within the storage dtype's rounding."""
    mean = rows.astype(np.float64).mean(axis=0)
    scale = float(np.abs(rows).max(initial=0.0)) or 1.0
    return bool(np.abs(mean - pooled).max(initial=0.0) <= tolerance * scale)


def _check_presence(store: Any, source: Path, hashes: dict[str, str]) -> list[str]:
    max_length = store.attrs.get("max_length")
    problems: list[str] = []
    for sid, seq in source_records(source):
        if max_length is not None:
            seq = seq[: int(max_length)]
        if sid not in store:
            problems.append(f"{sid}: missing from the store")
        elif store.length(sid) != len(seq):
            problems.append(f"{sid}: {store.length(sid)} positions stored, expected {len(seq)}")
        elif sid in hashes and hashes[sid] != layout.content_hash(seq):
            problems.append(
                f"{sid}: the store holds another sequence under this id (content hash "
                f"{hashes[sid]}, the dataset's {layout.content_hash(seq)})"
            )
    return problems
