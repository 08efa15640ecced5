"""Result files: their ``kind``/``version`` stamp and the one reader (no torch, no numpy).

Result files written by the commands:

==================  ======================  ==========================================
file                written by              stamp
==================  ======================  ==========================================
``sweep.json``      ``embedhead sweep``     ``{"kind": "sweep", "version": 1}``
``experiment.json`` ``embedhead experiment``  ``{"kind": "experiment", "version": 1}``
``baselines.json``  ``embedhead baselines`` ``{"kind": "baselines", "version": 1}``
``summary.json``    ``train --repeats``     ``{"kind": "summary", "version": 1}``
``run.json``        ``embedhead train``     ``{"format": "embedhead-head-run", "version": 1}``
==================  ======================  ==========================================

:func:`read_result` (path, expected kind) -> the parsed dict, after checking the stamp. Files
written before ``version`` existed carry only ``kind`` and are read as version 1; a ``run.json``
is recognised by its ``format``; the oldest ``run.json``/``summary.json`` had no stamp and are
recognised by shape (``metrics``; ``repeats`` + ``seeds`` for a summary). A newer version
than this code knows is an :class:`~embedhead.errors.IncompatibleError`; another kind, or a JSON
that is no result at all, an :class:`~embedhead.errors.InputError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedhead.errors import IncompatibleError, InputError
from embedhead.fileio import read_json

RESULT_VERSION = 1
KINDS = ("sweep", "experiment", "baselines", "summary", "run")
RUN_FORMAT = "embedhead-head-run"


def result_kind(data: Any) -> str | None:
    """The kind of parsed result JSON ``data`` ('sweep', ..., 'run'), or None if it is none."""
    if not isinstance(data, dict):
        return None
    if data.get("format") == RUN_FORMAT:
        return "run"
    kind = data.get("kind")
    if isinstance(kind, str) and kind in KINDS:
        return kind
    if "kind" in data or "format" in data or not isinstance(data.get("metrics"), dict):
        return None
    if "repeats" in data and "seeds" in data:
        return "summary"  # summary.json of the first releases: no stamp
    return "run"  # run.json of the first releases: no stamp
    return None


def check_result(data: Any, kind: str, path: str | Path) -> dict[str, Any]:
    """``data`` when it is a result of ``kind`` this code reads; clear errors otherwise."""
    if kind not in KINDS:
        raise ValueError(f"unknown result kind {kind!r} (one of {', '.join(KINDS)})")
    found = result_kind(data)
    if found is None:
        raise InputError(f"not an embedhead result file (expected kind {kind!r})", path)
    if found != kind:
        raise InputError(f"holds a {found!r} result, expected {kind!r}", path)
    assert isinstance(data, dict)
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(f"invalid version {version!r}", path)
    if version > RESULT_VERSION:
        raise IncompatibleError(
            f"{path}: {kind} result version {version} is newer than this embedhead reads "
            f"(up to {RESULT_VERSION}); upgrade embedhead"
        )
    return data


def read_result(path: str | Path, kind: str) -> dict[str, Any]:
    """Read the result file ``path`` and check it is a ``kind`` result (see module docstring)."""
    return check_result(read_json(path), kind, path)
