"""Error types shared by the whole library.

Every error a user can cause (bad input file, bad option value, incompatible store) is an
:class:`EmbedheadError`; the CLI turns these into a clean message and a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path


class EmbedheadError(Exception):
    """Base class for every user-facing error of embedhead."""


class InputError(EmbedheadError):
    """A problem in an input file, located by path and (1-based) line when known.

    ``str(err)`` reads ``path:line: message`` (or ``path: message`` without a line).
    """

    def __init__(
        self, message: str, path: str | Path | None = None, line: int | None = None
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


class ConfigError(EmbedheadError):
    """An invalid option, parameter value or configuration file."""


class IncompatibleError(EmbedheadError):
    """Artifacts that must not be mixed (e.g. a store built by another backbone)."""


class StoreDamaged(InputError):
    """A stored chunk or index entry that is missing, truncated or fails its checksum.

    ``str(err)`` names the store and what is damaged (array and row range); no reader ever
    returns zeros or partly decoded rows in its place.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        *,
        array: str = "",
        rows: str = "",
        reason: str = "",
    ) -> None:
        self.array = array
        self.rows = rows
        self.reason = reason or message
        super().__init__(message, path)


class StoreWriteError(EmbedheadError):
    """Writing a store failed in the file system (disk full, permission denied, a file that
    vanished). What was committed before stays; the same command resumes once it is fixed."""
