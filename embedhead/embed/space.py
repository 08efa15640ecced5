"""How much disk a store of a dataset needs, and whether its target has that much free.

In: a dataset folder or FASTA file, the backbone's ``d_model``, the storage dtype, the
truncation (``max_length``) and ``pooled_only``; optionally a predicate saying which ids an
existing store already holds. Out: a :class:`SpaceEstimate` with, for the U unique (truncated)
sequences of P positions in all::

    positions  P x d_model x bytes(dtype)      (0 with pooled_only)
    pooled     U x d_model x bytes(dtype)
    index      U x INDEX_BYTES_PER_SEQUENCE    (id, offset, length)

``bytes_total`` is that for the whole dataset, ``bytes_needed`` for the sequences the store
does not hold yet. Both are uncompressed sizes: an upper bound of what the (compressed) store
takes. :func:`check_free_space` raises ConfigError when the target's file system has less free
space than ``bytes_needed``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from embedhead.backbone.config import config_from_file
from embedhead.backbone.load import locate_checkpoint
from embedhead.dataset import sequence_id, source_records
from embedhead.errors import ConfigError
from embedhead.store import layout

#: Index bytes per sequence: a 24-hex-digit id (utf-8), an int64 offset and an int64 length.
INDEX_BYTES_PER_SEQUENCE = 24 + 8 + 8
DTYPE_BYTES: dict[str, int] = {"float16": 2, "bfloat16": 2, "float32": 4}


@dataclass(frozen=True)
class SpaceEstimate:
    """Uncompressed store bytes for a dataset (see the module docstring)."""

    n_sequences: int
    n_positions: int
    n_missing: int
    n_missing_positions: int
    d_model: int
    dtype: str
    pooled_only: bool

    def _bytes(self, n_sequences: int, n_positions: int) -> int:
        width = self.d_model * DTYPE_BYTES[self.dtype]
        positions = 0 if self.pooled_only else n_positions * width
        return positions + n_sequences * (width + INDEX_BYTES_PER_SEQUENCE)

    @property
    def bytes_total(self) -> int:
        """Bytes of a store holding every unique sequence of the dataset."""
        return self._bytes(self.n_sequences, self.n_positions)

    @property
    def bytes_needed(self) -> int:
        """Bytes still to write: the sequences an existing store lacks."""
        return self._bytes(self.n_missing, self.n_missing_positions)

    def describe(self) -> str:
        """One line: what the store needs and how it was computed."""
        what = "pooled only" if self.pooled_only else f"{self.n_positions:,} positions"
        line = (
            f"store size needed: {format_bytes(self.bytes_total)} uncompressed for "
            f"{self.n_sequences:,} unique sequences ({what} x d_model {self.d_model} x "
            f"{DTYPE_BYTES[self.dtype]} B {self.dtype} + pooled + index)"
        )
        if self.n_missing != self.n_sequences:
            line += (
                f"; {format_bytes(self.bytes_needed)} still to write for {self.n_missing:,} "
                "sequences not yet stored"
            )
        return line


def format_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB`` (binary units)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def estimate_store(
    source: str | os.PathLike[str],
    d_model: int,
    dtype: str,
    *,
    max_length: int | None = None,
    pooled_only: bool = False,
    present: Callable[[str], bool] | None = None,
) -> SpaceEstimate:
    """Stream ``source`` once and count unique (truncated) sequences and their positions.

    A unique sequence counts as missing when any id naming it is not ``present`` (all are
    missing without ``present``). Memory: one id per unique sequence.
    """
    if dtype not in DTYPE_BYTES:
        raise ConfigError(f"dtype must be one of {', '.join(layout.DTYPES)}, got {dtype!r}")
    lengths: dict[str, int] = {}
    missing: set[str] = set()
    for sid, seq in source_records(Path(source)):
        if max_length is not None:
            seq = seq[:max_length]
        key = sequence_id(seq)
        lengths[key] = len(seq)
        if present is None or not present(sid):
            missing.add(key)
    return SpaceEstimate(
        n_sequences=len(lengths),
        n_positions=sum(lengths.values()),
        n_missing=len(missing),
        n_missing_positions=sum(lengths[k] for k in missing),
        d_model=d_model,
        dtype=dtype,
        pooled_only=pooled_only,
    )


def backbone_d_model(backbone: str | Path) -> int:
    """``d_model`` from the backbone's config.json (the weights are not read)."""
    return int(config_from_file(locate_checkpoint(backbone).config_path).d_model)


def free_bytes(target: str | os.PathLike[str]) -> int:
    """Free bytes on the file system that holds ``target`` (or its nearest existing parent)."""
    path = Path(target).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_free_space(estimate: SpaceEstimate, target: str | os.PathLike[str]) -> int:
    """ConfigError when ``target``'s file system has less free space than the store needs.

    Returns the free bytes found.
    """
    free = free_bytes(target)
    if free < estimate.bytes_needed:
        raise ConfigError(
            f"not enough free space for the store {target}: it needs up to "
            f"{format_bytes(estimate.bytes_needed)} (uncompressed) and only {format_bytes(free)} "
            "is free there; free some space, choose another --store, use --pooled-only or a "
            "smaller --dtype, or pass --no-space-check (compression often makes it smaller)"
        )
    return free
