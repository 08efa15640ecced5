"""Opening stores for reading and writing, compatibility checks, and per-rank shards.

``open_store(path) -> EmbeddingStore`` (backend from the suffix), ``open_writer(path, attrs)``
(create or append after :func:`check_compatible`), ``merge_parts(path)`` (fold the
``STORE.parts/`` shards in). :class:`Hdf5JournalWriter` writes an ``.h5`` store through a Zarr
journal shard and re-assembles the file on ``close()``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from embedhead.errors import ConfigError, IncompatibleError
from embedhead.store import layout
from embedhead.store.base import EmbeddingStore, StoreWriter, select_block
from embedhead.store.hdf5_backend import Hdf5EmbeddingStore, assemble_hdf5, raw_blocks
from embedhead.store.zarr_backend import (
    ZarrEmbeddingStore,
    ZarrStoreWriter,
    create_zarr_store,
    is_url,
    lock_folder,
    store_exists,
)

_MUST_MATCH = ("backbone_key", "d_model", "dtype", "pooled_only", "max_length", "precision")
# Attributes that stores written before they existed lack; they read as these values.
_ATTR_DEFAULTS: dict[str, Any] = {"precision": "float32"}


def backend_of(path: str | Path, *, write: bool = False) -> str:
    """'zarr' or 'hdf5' from the path's (or URL's) suffix; ConfigError for anything else.

    An object-storage URL must name a ``.zarr`` store (HDF5 stores are local files; that holds
    for ``write=True`` too: Zarr stores at a URL are written in place).
    """
    if is_url(path):
        name = str(path).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        suffix = Path(name).suffix.lower()
        if suffix in layout.ZARR_SUFFIXES:
            return "zarr"
        raise ConfigError(
            f"{path}: a store at a URL must be a .zarr store (HDF5 stores are local files), "
            f"not {suffix!r}"
        )
    suffix = Path(path).suffix.lower()
    if suffix in layout.ZARR_SUFFIXES:
        return "zarr"
    if suffix in layout.HDF5_SUFFIXES:
        return "hdf5"
    raise ConfigError(
        f"{path}: store path must end in .zarr (folder) or .h5/.hdf5 (file), not {suffix!r}"
    )


def refuse_url_writes(path: str | Path) -> None:
    """ConfigError for a store URL where only local stores work (``store merge``: shards of
    format-1 distributed runs are local folders)."""
    if is_url(path):
        raise ConfigError(
            f"{path}: a store at a URL has no local shards to merge (runs write into it "
            "directly); `store merge` is for local stores"
        )


def open_store(path: str | Path, mode: str = "r") -> EmbeddingStore:
    """Open a store for reading (``mode='r'``; writing goes through :func:`open_writer`).

    ``path``: a local ``.zarr`` folder or ``.h5``/``.hdf5`` file, or an fsspec URL of a
    ``.zarr`` store (``s3://bucket/cache.zarr``; pass URLs as ``str``, not ``Path``).
    """
    if mode != "r":
        raise ConfigError(f"open_store mode must be 'r' (use open_writer to write), not {mode!r}")
    if backend_of(path) == "zarr":
        return ZarrEmbeddingStore(path)
    return Hdf5EmbeddingStore(path)


_S = TypeVar("_S")


@contextmanager
def use_store(store: _S | str | Path) -> Iterator[_S | EmbeddingStore]:
    """An open store for ``store`` (a path, or an already open store / reader).

    A path is opened with :func:`open_store` and closed on exit; an open store is yielded as
    is and left open (whoever opened it closes it).
    """
    if not isinstance(store, str | Path):
        yield store
        return
    opened = open_store(store)
    try:
        yield opened
    finally:
        opened.close()


def check_compatible(existing: dict[str, Any], wanted: dict[str, Any], path: str | Path) -> None:
    """Refuse to mix: another backbone (IncompatibleError), or other dtype / layout options."""
    if existing.get("backbone_key") != wanted.get("backbone_key"):
        old = existing.get("backbone", {})
        new = wanted.get("backbone", {})
        raise IncompatibleError(
            f"{path}: store was built by backbone {old.get('name')!r} "
            f"(identity {existing.get('backbone_key')}), not by {new.get('name')!r} "
            f"(identity {wanted.get('backbone_key')}); use another --store"
        )
    for key in _MUST_MATCH[1:]:
        have = existing.get(key, _ATTR_DEFAULTS.get(key))
        if have != wanted.get(key, _ATTR_DEFAULTS.get(key)):
            raise IncompatibleError(
                f"{path}: store has {key}={have!r} but this run asks for "
                f"{key}={wanted.get(key)!r}; use the same options or another --store"
            )


def parts_dir(path: str | Path) -> Path:
    """Sidecar folder ``STORE.parts/`` (per-rank shards, HDF5 journal)."""
    path = Path(path)
    return path.with_name(path.name + layout.PARTS_SUFFIX)


def part_paths(path: str | Path) -> list[Path]:
    """Committed shard folders waiting in ``STORE.parts/`` (sorted by name)."""
    folder = parts_dir(path)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("rank-*.zarr") if (p / "zarr.json").is_file())


def _stored_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k not in (layout.N_SEQUENCES, layout.N_POSITIONS)}


def open_zarr_writer(
    path: str | Path, attrs: dict[str, Any], *, owner: bool = True
) -> ZarrStoreWriter:
    """Create (atomically) or reopen a ``.zarr`` store for appending, checking compatibility.

    ``owner=False``: a torchrun rank other than 0 writing into the store rank 0 holds.
    A URL (``s3://bucket/x.zarr``, pass it as ``str``) is created under its lock object.
    """
    created = False  # a failed first run removes a store it created (local stores only)
    if is_url(path):
        if owner and not store_exists(path):
            create_zarr_store(path, attrs)
    elif not Path(path).exists():
        path = Path(path)
        try:
            create_zarr_store(path, attrs)
            created = True
        except OSError:
            if not path.exists():
                raise
    writer = ZarrStoreWriter(path, owner=owner)
    writer.created = created
    try:
        check_compatible(writer.attrs, attrs, path)
    except BaseException:
        writer.abandon()
        raise
    return writer


def open_writer(path: str | Path, attrs: dict[str, Any], *, part: int | None = None) -> StoreWriter:
    """Writer appending to ``path``, or to its shard ``STORE.parts/rank-PART.zarr``.

    HDF5 stores always write through a journal shard and are re-assembled on ``close()``
    (single writer). Zarr stores are written in place (torchrun ranks too: see
    :func:`open_zarr_writer` with ``owner=False``); ``part`` is for HDF5 journals.
    Raises IncompatibleError when the store (or a shard) was built with another backbone or
    other options.
    """
    backend = backend_of(path)
    if is_url(path):  # a .zarr store (backend_of refuses anything else at a URL)
        if store_exists(path):
            with open_store(path) as existing:
                check_compatible(existing.attrs, attrs, path)
        return open_zarr_writer(path, attrs)
    path = Path(path)
    if backend == "hdf5" and path.exists():
        with open_store(path) as existing:
            check_compatible(existing.attrs, attrs, path)
            existing.check_chunk_identity()  # an append rewrites the file from these chunks
    if backend == "zarr" and path.exists():
        with open_store(path) as existing:
            check_compatible(existing.attrs, attrs, path)
    if part is None and backend == "zarr":
        return open_zarr_writer(path, attrs)
    shard = parts_dir(path) / f"rank-{part or 0:05d}.zarr"
    shard.parent.mkdir(parents=True, exist_ok=True)
    journal = open_zarr_writer(shard, attrs)
    if part is None:
        return Hdf5JournalWriter(path, journal)
    return journal


def merge_parts(path: str | Path) -> int:
    """Fold every shard of ``STORE.parts/`` into the store (first occurrence of an id wins).

    Cheap compared with embedding (a sequential copy, no backbone). Safe to rerun after a
    crash: already merged ids are skipped, and the parts folder is renamed away atomically
    before it is deleted. Returns the number of sequences added.
    """
    refuse_url_writes(path)
    path = Path(path)
    backend = backend_of(path)
    shards = part_paths(path)
    folder = parts_dir(path)
    if not shards:
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        return 0
    readers = [open_store(s) for s in shards]
    try:
        attrs = _stored_attrs(readers[0].attrs)
        for reader in readers[1:]:
            check_compatible(reader.attrs, attrs, reader.path)
        if backend == "zarr":
            added = _merge_into_zarr(path, attrs, readers)
        else:
            added = _merge_into_hdf5(path, attrs, readers)
    finally:
        for reader in readers:
            reader.close()
    done = folder.with_name(f".{folder.name}.done-{uuid.uuid4().hex[:8]}")
    os.rename(folder, done)
    shutil.rmtree(done, ignore_errors=True)
    return added


def merge_store(path: str | Path) -> int:
    """``embedhead store merge``: :func:`merge_parts` under the lock of every shard, so a shard
    that a running ``embed`` still writes (an HDF5 journal, a rank's shard) is refused with a
    clear ConfigError instead of being merged half-written. Returns the sequences added."""
    refuse_url_writes(path)
    locks: list[int] = []
    try:
        for shard in part_paths(path):
            fd = lock_folder(shard)
            assert isinstance(fd, int)  # local shards only (URLs refused above)
            locks.append(fd)
        return merge_parts(path)
    finally:
        for fd in locks:
            os.close(fd)


def _merge_into_zarr(path: Path, attrs: dict[str, Any], readers: list[EmbeddingStore]) -> int:
    writer = open_zarr_writer(path, attrs)
    added = 0
    try:
        for reader in readers:
            for block in raw_blocks(reader):
                ids, lengths, positions, pooled = select_block(
                    block, [sid not in writer for sid in block[0]]
                )
                if ids:
                    writer.write_raw(ids, lengths, positions, pooled)
                    writer.commit()
                    added += len(ids)
    except BaseException:
        writer.abandon()
        raise
    writer.close()
    return added


def _merge_into_hdf5(path: Path, attrs: dict[str, Any], readers: list[EmbeddingStore]) -> int:
    if not path.exists():
        return assemble_hdf5(path, attrs, readers)[0]
    with open_store(path) as existing:
        check_compatible(existing.attrs, attrs, path)
        before = len(existing)
        if not any(sid not in existing for reader in readers for sid in reader.ids()):
            return 0  # nothing new (a rerun on a complete file): the file is not rewritten
        n, _ = assemble_hdf5(path, _stored_attrs(existing.attrs), [existing, *readers])
    return n - before


class Hdf5JournalWriter(StoreWriter):
    """Writes new sequences to a Zarr journal shard; ``close()`` re-assembles the ``.h5`` file."""

    def __init__(self, path: str | Path, journal: ZarrStoreWriter) -> None:
        self.path = Path(path)
        self._journal = journal
        self.chunk_rows = journal.chunk_rows
        self.attrs = dict(journal.attrs)
        self._existing: set[str] = set()
        if self.path.exists():
            with Hdf5EmbeddingStore(self.path) as store:
                self._existing = set(store.ids())

    def __contains__(self, sid: object) -> bool:
        return sid in self._existing or sid in self._journal

    def set_content_hashes(self, hashes: dict[str, str]) -> None:
        self._journal.set_content_hashes(hashes)

    def write_raw(
        self,
        ids: Sequence[str],
        lengths: Sequence[int] | np.ndarray,
        positions: np.ndarray | None,
        pooled: np.ndarray,
    ) -> None:
        self._journal.write_raw(ids, lengths, positions, pooled)

    def reserve(self, rows: int) -> int:
        return self._journal.reserve(rows)

    def write_region(self, start: int, region: np.ndarray) -> None:
        self._journal.write_region(start, region)

    def commit_batch(
        self,
        key: str,
        ids: Sequence[str],
        offsets: np.ndarray,
        lengths: np.ndarray,
        pooled: np.ndarray,
    ) -> None:
        self._journal.commit_batch(key, ids, offsets, lengths, pooled)

    def commit(self) -> None:
        """Commit to the journal (crash-safe); the ``.h5`` file changes only on ``close()``."""
        self._journal.commit()

    def close(self) -> None:
        """Fold the journal and rebuild the ``.h5`` file, holding the journal's lock until the
        new file is in place (a second ``embed`` started meanwhile is refused, and never sees
        or deletes this one's temporary file)."""
        self._journal.close(keep_lock=True)
        try:
            merge_parts(self.path)
        finally:
            self._journal.abandon()  # releases the lock

    def abandon(self) -> None:
        self._journal.abandon()
        folder = parts_dir(self.path)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # the journal was removed: a failed first run leaves nothing
