"""Open an alignment file as text, whatever its compression (plain, gzip, bzip2).

The compression is detected from the file's first bytes (magic numbers), never from its suffix:
``1f 8b`` is gzip, ``BZh`` is bzip2, anything else is read as plain text. Text is decoded as
latin-1 (a superset of ASCII that cannot fail to decode), with universal newlines; a leading
UTF-8 byte order mark is dropped.

Errors a user can cause surface as :class:`embedhead.errors.InputError` naming the file: a file
that does not exist or cannot be read, an empty file (0 bytes, or nothing after decompression),
and a truncated or corrupt compressed stream; the latter is reported while reading, with the
line reached (the last complete line that was decompressed, plus one).

Two ways in: :func:`open_text` (a text stream, for the small readers: CSV, scoring files,
chrom.sizes, BED) and :func:`iter_lines` (the lines of a large alignment file as ``str``
without their line break, read in 128 KiB blocks: what the MAF and AXT parsers stream through).
Both take an optional :class:`ByteCounter`: the bytes read from the file itself (compressed
bytes for gzip/bzip2) are added to it as they are read, so a progress bar can show ``counter.n``
of the file's size.
"""

from __future__ import annotations

import bz2
import io
import os
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from embedhead.errors import InputError

_inflate_module: types.ModuleType
try:  # ISA-L's inflate: the same gzip format, about twice zlib's decompression speed
    from isal import isal_zlib

    _inflate_module = isal_zlib
    _isal_error: type[BaseException] = isal_zlib.error  # type: ignore[assignment]
    _DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
        EOFError, OSError, zlib.error, ValueError, _isal_error,
    )  # fmt: skip
except ImportError:  # pragma: no cover - isal is a dependency; zlib does the same, slower
    _inflate_module = zlib
    _DECOMPRESS_ERRORS = (EOFError, OSError, zlib.error, ValueError)

Compression = Literal["gzip", "bz2", "plain"]

_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
_UTF8_BOM = b"\xef\xbb\xbf"
_ENCODING = "latin-1"
# Small reads keep the line reported for a truncated stream close to the damage.
_CHUNK = 8192
# iter_lines reads this much decompressed text at a time.
_BLOCK = 1 << 17
# compressed bytes read at a time
_RAW_BLOCK = 1 << 17


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


class ByteCounter:
    """Bytes read so far from an input file (``n``), updated while the file is read."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class _CountingFile(io.RawIOBase):
    """The raw file, adding every byte read to a :class:`ByteCounter`."""

    def __init__(self, raw: io.FileIO, counter: ByteCounter) -> None:
        super().__init__()
        self._raw = raw
        self._counter = counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)
        if n:
            self._counter.n += n
        return n or 0

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _open_file(name: str, counter: ByteCounter | None) -> io.BufferedReader:
    raw = open(name, "rb", buffering=0)  # noqa: SIM115 - closed by the returned stream
    if counter is None:
        return io.BufferedReader(raw, buffer_size=1 << 17)
    return io.BufferedReader(_CountingFile(raw, counter), buffer_size=1 << 17)


class _GzipStream:
    """Decompressed bytes of a gzip file (any number of members, zero padding after one), by
    ``read1(n)``: inflated with ISA-L when installed (``isal.isal_zlib``), else zlib; CRC and
    length of every member checked. A stream cut short raises EOFError once everything before
    the cut was returned; corrupt data raises the inflater's error."""

    def __init__(self, fileobj: io.BufferedReader) -> None:
        self._file = fileobj
        self._inflater: Any = None  # None between members
        self._input = b""

    def read1(self, size: int) -> bytes:
        while True:
            if self._inflater is None:  # next member, after any zero padding
                data = self._input.lstrip(b"\0")
                while not data:
                    raw = self._file.read(_RAW_BLOCK)
                    if not raw:
                        return b""
                    data = raw.lstrip(b"\0")
                self._inflater = _inflate_module.decompressobj(wbits=31)
                self._input = data
            at_end = False
            if not self._input:
                self._input = self._file.read(_RAW_BLOCK)
                at_end = not self._input
            out: bytes = self._inflater.decompress(self._input, size)
            if self._inflater.eof:
                self._input = self._inflater.unused_data
                self._inflater = None
            else:
                self._input = self._inflater.unconsumed_tail
            if out:
                return out
            if at_end and self._inflater is not None:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read1(_BLOCK), b""))
        return self.read1(size)

    def close(self) -> None:
        self._inflater = None

    def __enter__(self) -> _GzipStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_decompressed(
    name: str, kind: Compression, counter: ByteCounter | None
) -> tuple[Any, io.BufferedReader]:
    """The decompressed byte stream of ``name`` (``read(n)``) and the (counted) file under it,
    which the caller closes after the stream (GzipFile and BZ2File leave it open)."""
    fileobj = _open_file(name, counter)
    try:
        if kind == "gzip":
            return _GzipStream(fileobj), fileobj
        return bz2.BZ2File(fileobj, "rb"), fileobj
    except BaseException:
        fileobj.close()
        raise


class _GuardedReader(io.RawIOBase):
    """Raw stream over a decompressor that turns decompression errors into InputError.

    It counts the newlines it has delivered so that an error can name the line reached.
    """

    def __init__(self, inner: Any, fileobj: io.BufferedReader, path: str, kind: str) -> None:
        super().__init__()
        self._inner = inner
        self._fileobj = fileobj
        self._path = path
        self._kind = kind
        self._newlines = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(min(len(view), _CHUNK))
        except _DECOMPRESS_ERRORS as exc:
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
            try:
                self._fileobj.close()  # GzipFile/BZ2File leave a given fileobj open
            finally:
                super().close()


def _skip_bom(stream: io.BufferedReader[Any]) -> None:
    """Drop a leading UTF-8 byte order mark (spreadsheet CSV exports write one)."""
    if stream.peek(len(_UTF8_BOM))[: len(_UTF8_BOM)] == _UTF8_BOM:
        stream.read(len(_UTF8_BOM))


def _check_path(name: str) -> Compression:
    if Path(name).is_dir():
        raise InputError("is a directory, not an alignment file", name)
    kind = sniff_compression(name)
    if os.path.getsize(name) == 0:  # magic bytes imply >0 bytes for gzip/bzip2
        raise InputError("file is empty", name)
    return kind


def open_text(path: str | os.PathLike[str], counter: ByteCounter | None = None) -> TextIO:
    """Open ``path`` for reading as text, decompressing gzip/bzip2 detected by magic bytes.

    Raises InputError (naming the file) when it is missing, unreadable or empty; a truncated
    compressed stream raises InputError when the damaged part is read. ``counter`` counts the
    bytes read from the file.
    """
    name = str(path)
    kind = _check_path(name)
    if kind == "plain":
        plain = _open_file(name, counter)
        _skip_bom(plain)
        return io.TextIOWrapper(plain, encoding=_ENCODING, newline=None)
    inner, fileobj = _open_decompressed(name, kind, counter)  # closed by the returned stream
    raw = _GuardedReader(inner, fileobj, name, kind)
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


def iter_lines(path: str | os.PathLike[str], counter: ByteCounter | None = None) -> Iterator[str]:
    """The lines of ``path`` (plain, gzip or bzip2) without their line breaks, streaming.

    Exactly the lines of :func:`open_text` (latin-1, universal newlines: ``\\r\\n`` and
    ``\\r`` end a line too, a leading UTF-8 BOM dropped), read 128 KiB at a time. The same
    errors, raised on the first ``next()``; a truncated or corrupt stream names the line
    reached.
    """
    name = str(path)
    kind = _check_path(name)
    if kind == "plain":
        stream: Any = _open_file(name, counter)
        fileobj = stream
    else:
        stream, fileobj = _open_decompressed(name, kind, counter)
    with fileobj, stream:
        yield from _lines(stream, name, kind)


def _read_block(stream: Any, name: str, kind: Compression, n_lines: int) -> bytes:
    try:
        data: bytes = stream.read1(_BLOCK)  # read1: what was decompressed before damage is kept
    except _DECOMPRESS_ERRORS as exc:
        line = n_lines + 1
        raise InputError(
            f"{kind} data is truncated or corrupt at or after line {line} ({exc})", name, line
        ) from exc
    return data


def _lines(stream: Any, name: str, kind: Compression) -> Iterator[str]:
    rest = ""  # an unfinished last line (or a lone trailing \r) carried to the next block
    n_lines = 0
    data = _read_block(stream, name, kind, 0)
    if not data:
        raise InputError(f"file is empty (nothing after {kind} decompression)", name)
    while len(data) < len(_UTF8_BOM) and (more := _read_block(stream, name, kind, 0)):
        data += more
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :] or _read_block(stream, name, kind, 0)
    while data:
        text = rest + data.decode(_ENCODING)
        if "\r" in text:
            hold = text.endswith("\r")  # may be the first half of \r\n
            if hold:
                text = text[:-1]
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if hold:
                text += "\r"
        lines = text.split("\n")
        rest = lines.pop()
        n_lines += len(lines)
        yield from lines
        data = _read_block(stream, name, kind, n_lines)
    if rest:
        yield rest.replace("\r", "")  # a lone \r at the very end ends the last line
