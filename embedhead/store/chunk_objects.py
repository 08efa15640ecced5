"""Where the chunk objects of one Zarr array live: files under a local folder, or keys under a
prefix of an fsspec filesystem (a store at a URL such as ``s3://bucket/cache.zarr``).

One interface for the raw chunk reader and the whole-chunk writer of
:mod:`embedhead.store.zarr_backend`, so a store at a URL gets the same checks as a local one
(an absent chunk of committed rows is damage, every crc32c trailer is checked, a chunk copied
over another is refused). Keys are the array's own chunk keys (``c.<k>.0``; older stores
``c/<k>/0``); bytes in and out are the stored chunk bytes, codecs applied by the caller. An
absent chunk raises FileNotFoundError from :meth:`ChunkObjects.read` and :meth:`ChunkObjects.tail`.

Writes: :meth:`ChunkObjects.write_new` puts a chunk in place (a local file is opened, written
and closed: no temporary file, see the writer for why that is safe); :meth:`ChunkObjects.replace`
swaps a chunk atomically (a local temporary file + rename; an object PUT, atomic by itself).
A new local chunk file starts its writeback as soon as it is written
(:func:`embedhead.fileio.start_writeback`): the disk writes while the writer lanes encode the
next chunks, so neither a final fsync nor the kernel's dirty-page limits find a backlog.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import fsspec

from embedhead.fileio import start_writeback


@dataclass(frozen=True)
class ChunkObjects:
    """The chunk objects of one array: ``folder`` (local) or ``fs`` + ``prefix`` (a URL)."""

    folder: Path | None = None
    fs: fsspec.AbstractFileSystem | None = None
    prefix: str = ""
    _dirs: set[str] = field(default_factory=set, compare=False, repr=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @staticmethod
    def local(folder: Path) -> ChunkObjects:
        return ChunkObjects(folder=folder)

    @staticmethod
    def at_url(fs: fsspec.AbstractFileSystem, prefix: str) -> ChunkObjects:
        return ChunkObjects(fs=fs, prefix=prefix.rstrip("/"))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def read(self, key: str) -> bytes:
        """The whole stored bytes of chunk ``key`` (FileNotFoundError when absent)."""
        if self.folder is not None:
            return (self.folder / key).read_bytes()
        assert self.fs is not None
        return bytes(self.fs.cat_file(self._key(key)))

    def exists(self, key: str) -> bool:
        if self.folder is not None:
            return (self.folder / key).is_file()
        assert self.fs is not None
        return bool(self.fs.exists(self._key(key)))

    def tail(self, key: str, n: int) -> bytes:
        """The last ``n`` bytes of chunk ``key`` (fewer when it is shorter), read alone."""
        if self.folder is not None:
            return last_bytes(self.folder / key, n)
        assert self.fs is not None
        size = int(self.fs.size(self._key(key)))
        if size <= n:
            return bytes(self.fs.cat_file(self._key(key)))
        return bytes(self.fs.cat_file(self._key(key), start=size - n, end=size))

    def write_new(self, key: str, data: Chunk) -> None:
        """Write chunk ``key`` whole, in place (its folder made once per writer)."""
        self._put(key, data, write_file)

    def replace(self, key: str, data: Chunk) -> None:
        """Swap chunk ``key`` for ``data`` in one step (readers see the old or the new bytes)."""
        self._put(key, data, replace_file)

    def _put(self, key: str, data: Chunk, local: Callable[[Path, Chunk], None]) -> None:
        """One object PUT at a URL (atomic by itself); ``local(path, data)`` in a folder."""
        if self.folder is None:
            assert self.fs is not None
            self.fs.pipe_file(self._key(key), b"".join(_pieces(data)))
            return
        path = self.folder / key
        self._ensure_dir(path.parent)
        local(path, data)

    def _ensure_dir(self, folder: Path) -> None:
        name = str(folder)
        if name in self._dirs:
            return
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass
        except FileNotFoundError:
            folder.mkdir(parents=True, exist_ok=True)
        with self._mutex:
            self._dirs.add(name)


Chunk = bytes | memoryview | tuple[bytes | memoryview, ...]
"""Stored chunk bytes, whole or as pieces stored one after another (body, crc32c trailer):
pieces are written by one ``writev``, never joined into a fresh buffer first."""


def _pieces(data: Chunk) -> list[memoryview]:
    return [memoryview(p).cast("B") for p in (data if isinstance(data, tuple) else (data,))]


def write_file(path: Path, data: Chunk) -> None:
    """Write ``data`` as the whole content of ``path`` in place (open, writev, start its
    writeback, close)."""
    pieces = _pieces(data)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        while pieces:
            done = os.writev(fd, pieces)
            while pieces and done >= len(pieces[0]):
                done -= len(pieces.pop(0))
            if pieces:
                pieces[0] = pieces[0][done:]
        start_writeback(fd)  # the disk works while the writer encodes the next chunks
    finally:
        os.close(fd)


def replace_file(path: Path, data: Chunk) -> None:
    """Replace ``path`` by a file holding ``data`` in one step (temporary file + rename; no
    stray temporary file on disk full, permission error or interrupt)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with open(tmp, "wb") as fh:
            for piece in _pieces(data):
                fh.write(piece)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def last_bytes(path: Path, n: int) -> bytes:
    """The last ``n`` bytes of a local file (fewer when it is shorter), read alone."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        return os.pread(fh.fileno(), min(n, size), max(0, size - n))
