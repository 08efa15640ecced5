"""One home for writing and reading the project's files (no torch, no numpy).

Writing:

- :func:`atomic_file` / :func:`atomic_write_text`: a file is written to a temporary file in the
  same folder, flushed and fsync'ed, then renamed onto its name; readers never see half a file
  and an error leaves nothing behind. Final mode 0644 modulo the process umask (not the 0600 of
  :func:`tempfile.mkstemp`).
- :func:`atomic_dir`: a folder is assembled in a temporary sibling folder and renamed into place
  on success (mode 0755 modulo umask, and every file inside 0644 modulo umask, whatever wrote
  it); an error removes the temporary folder.
- :func:`start_writeback`: ask the kernel to start writing a file's dirty pages now, without
  waiting (Linux ``sync_file_range``), so a long write streams to disk as it goes instead of
  piling up dirty pages for one long fsync or writeback burst at the end.
- :func:`write_json`: strict JSON (no NaN: :func:`to_jsonable` turns NaN/inf into ``null``),
  indented by 2, one final newline, written atomically.

Reading:

- :func:`read_json`: :class:`~embedhead.errors.InputError` naming ``path:line`` for invalid JSON
  and ``path`` for a missing file.
- :func:`read_config_file`: JSON, or YAML for ``.yaml``/``.yml`` (PyYAML), with ``path:line``
  errors.
"""

from __future__ import annotations

import csv
import ctypes
import importlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from embedhead.errors import ConfigError, InputError

yaml: Any
try:  # optional: YAML config files need PyYAML; JSON works without it
    yaml = importlib.import_module("yaml")
except ImportError:  # pragma: no cover - depends on the installed extras
    yaml = None

__all__ = [
    "atomic_dir",
    "atomic_file",
    "atomic_write_text",
    "dir_mode",
    "file_mode",
    "make_out_dir",
    "read_config_file",
    "read_json",
    "to_jsonable",
    "write_json",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of an ordinary new file: 0666 minus the umask (0644 under umask 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of an ordinary new folder: 0777 minus the umask (0755 under umask 022)."""
    return 0o777 & ~_umask()


def make_out_dir(path: str | Path) -> Path:
    """Create the output folder ``path`` (and parents); InputError when a file is in the way."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder; choose another --out", path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror}", path) from exc
    return path


@contextmanager
def atomic_file(
    path: str | Path, mode: str = "w", *, newline: str | None = None
) -> Iterator[IO[Any]]:
    """Yield a file open on a temp file beside ``path``; renamed onto ``path`` on success.

    ``mode`` is ``"w"`` (text, UTF-8) or ``"wb"``. The parent folder is created when missing.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder; give a file path", path)
    make_out_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            if not fh.closed:  # a wrapper (e.g. TextIOWrapper) may have closed it already
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """glibc's ``sync_file_range``, or None where there is none (not Linux, or no glibc)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait


def start_writeback(fd: int) -> bool:
    """Start writing the dirty pages of open file ``fd`` to disk, without waiting for them.

    Linux ``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)``: no durability promise (that
    is fsync's job, which then finds little left to write). Returns False, doing nothing,
    where the call does not exist or the file does not support it (a pipe, some filesystems).
    """
    if _SYNC_FILE_RANGE is None:
        return False
    return _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE) == 0


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`); returns ``path``."""
    with atomic_file(path, "w", newline="") as fh:
        fh.write(text)
    return Path(path)


@contextmanager
def atomic_dir(out_dir: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``, renamed to ``out_dir`` only on success.

    ``out_dir`` must not exist or be empty, unless ``replace`` is true: then an existing
    ``out_dir`` is swapped out and removed only once the new folder is complete. Callers check
    emptiness themselves when they want their own error; here it is a FileExistsError.
    """
    out = Path(out_dir)
    if not replace and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(dir_mode())
        yield tmp
        _ordinary_modes(tmp)
        if out.exists() and replace:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if out.exists():
                out.rmdir()  # empty (checked above)
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _ordinary_modes(root: Path) -> None:
    """Give everything under ``root`` the ordinary modes: some writers (safetensors) make 0600."""
    fmode, dmode = file_mode(), dir_mode()
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        path.chmod(dmode if path.is_dir() else fmode)


def to_jsonable(value: Any) -> Any:
    """Numpy scalars/arrays, tuples and paths -> plain JSON types; NaN/inf -> None (strict).

    Numpy values are recognised by their ``tolist``/``item`` methods (this module imports no
    numpy).
    """
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return to_jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return to_jsonable(value.item())
    return value


def dumps_json(payload: Any, *, sort_keys: bool = False) -> str:
    """Strict, indented JSON text of ``payload`` with a final newline."""
    return json.dumps(to_jsonable(payload), indent=2, allow_nan=False, sort_keys=sort_keys) + "\n"


def write_json(path: str | Path, payload: Any, *, sort_keys: bool = False) -> Path:
    """Atomically write ``payload`` as strict, indented JSON (see :func:`to_jsonable`)."""
    return atomic_write_text(path, dumps_json(payload, sort_keys=sort_keys))


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; InputError naming ``path:line`` when invalid, ``path`` when missing."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("file not found", path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", path) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path, exc.lineno) from exc


def read_config_file(path: str | Path) -> Any:
    """Parse a JSON file, or YAML (``.yaml``/``.yml``) when PyYAML is installed."""
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        return read_json(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path) from exc
    if yaml is None:
        raise ConfigError(f"{path}: reading YAML needs PyYAML (or use JSON)")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise InputError(f"invalid YAML: {exc}", path, line) from exc


CSV_FIELD_LIMIT = 2**31 - 1
"""Largest CSV/TSV field accepted: sequences are long (the csv module's default is 131,072)."""


def allow_long_csv_fields() -> None:
    """Raise the csv module's field size limit to :data:`CSV_FIELD_LIMIT` (never lowers it)."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def require_utf8_name(value: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> None:
    """InputError when a file name is not valid UTF-8 (``b'bad\\xff.maf'``, or the
    surrogate-escaped ``str`` Python makes of it from the command line).

    embedhead records file names inside UTF-8 files (``dataset.json``, the pairs table, store
    attributes, ``run.json``), so such a name is refused up front, shown with ``\\xNN`` escapes.
    """
    raw = os.fsencode(value)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        shown = raw.decode("utf-8", "backslashreplace")
        raise InputError(
            "file name is not valid UTF-8; embedhead records file names in UTF-8 files "
            "(dataset.json, stores, runs): rename it",
            shown,
        ) from None
