"""Open an alignment file as text, whatever its compression (plain, gzip, bzip2).

The compression is detected from the file's first bytes (magic numbers), never from its suffix:
``1f 8b`` is gzip, ``BZh`` is bzip2, anything else is read as plain text. Text is decoded as
latin-1 (a superset of ASCII that cannot fail to decode), with universal newlines; a leading
UTF-8 byte order mark is dropped.

Errors a user can cause surface as :class:`embedhead.errors.InputError` naming the file: a file
that does not exist or cannot be read, an empty file (0 bytes, or nothing after decompression),
and a truncated or corrupt compressed stream; the latter is reported while reading, with the
line reached (the last complete line that was decompressed, plus one).
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import zlib
from pathlib import Path
from typing import Any, Literal, TextIO

from embedhead.errors import InputError

Compression = Literal["gzip", "bz2", "plain"]

_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
_UTF8_BOM = b"\xef\xbb\xbf"
_ENCODING = "latin-1"
# Small reads keep the line reported for a truncated stream close to the damage.
_CHUNK = 8192


def sniff_compression(path: str | os.PathLike[str]) -> Compression:
    """Return the compression of ``path`` judged by its magic bytes.

    Raises InputError when the file cannot be opened.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(3)
    except OSError as exc:
        raise InputError(f"cannot open file: {exc.strerror or exc}", str(path)) from exc
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_BZ2_MAGIC):
        return "bz2"
    return "plain"


class _GuardedReader(io.RawIOBase):
    """Raw stream over a decompressor that turns decompression errors into InputError.

    It counts the newlines it has delivered so that an error can name the line reached.
    """

    def __init__(self, inner: io.BufferedIOBase, path: str, kind: str) -> None:
        super().__init__()
        self._inner = inner
        self._path = path
        self._kind = kind
        self._newlines = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(min(len(view), _CHUNK))
        except (EOFError, OSError, zlib.error, ValueError) as exc:
            line = self._newlines + 1
            raise InputError(
                f"{self._kind} data is truncated or corrupt at or after line {line} ({exc})",
                self._path,
                line,
            ) from exc
        n = len(data)
        view[:n] = data
        self._newlines += data.count(b"\n")
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def _skip_bom(stream: io.BufferedReader[Any]) -> None:
    """Drop a leading UTF-8 byte order mark (spreadsheet CSV exports write one)."""
    if stream.peek(len(_UTF8_BOM))[: len(_UTF8_BOM)] == _UTF8_BOM:
        stream.read(len(_UTF8_BOM))


def open_text(path: str | os.PathLike[str]) -> TextIO:
    """Open ``path`` for reading as text, decompressing gzip/bzip2 detected by magic bytes.

    Raises InputError (naming the file) when it is missing, unreadable or empty; a truncated
    compressed stream raises InputError when the damaged part is read.
    """
    name = str(path)
    if Path(name).is_dir():
        raise InputError("is a directory, not an alignment file", name)
    kind = sniff_compression(name)
    if kind == "plain":
        if os.path.getsize(name) == 0:
            raise InputError("file is empty", name)
        plain = open(name, "rb")  # noqa: SIM115 - closed by the returned stream
        _skip_bom(plain)
        return io.TextIOWrapper(plain, encoding=_ENCODING, newline=None)
    if os.path.getsize(name) == 0:  # pragma: no cover - magic bytes imply >0 bytes
        raise InputError("file is empty", name)
    opener = gzip.open if kind == "gzip" else bz2.open
    inner: io.BufferedIOBase = opener(name, "rb")  # closed by the returned stream
    raw = _GuardedReader(inner, name, kind)
    buffered = io.BufferedReader(raw, buffer_size=1 << 16)
    try:
        empty = not buffered.peek(1)
    except InputError:
        buffered.close()
        raise
    if empty:
        buffered.close()
        raise InputError(f"file is empty (nothing after {kind} decompression)", name)
    _skip_bom(buffered)
    return io.TextIOWrapper(buffered, encoding=_ENCODING, newline=None)
