"""Plain records produced by every alignment parser (MAF, AXT, CSV).

A block is a set of rows of equal text length (alignment columns). Parsers validate before
they yield: ``size`` equals the number of non-gap letters of ``text`` and all rows of one block
have the same length; violations raise :class:`embedhead.errors.InputError` with file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

GAP_CHARS = "-."


@dataclass(frozen=True, slots=True)
class AlignedRow:
    """One sequence row of an alignment block.

    ``start`` is 0-based and counts on the row's own strand, as in MAF (for ``-`` it counts
    from the end of the reverse complement). ``src_size`` is the full source length when the
    format gives it (MAF), else ``None`` (AXT without chromosome sizes; CSV).
    ``text`` is exactly the aligned text of the file (case kept, gaps kept).
    """

    src: str
    db: str
    chrom: str
    start: int
    size: int
    strand: str
    src_size: int | None
    text: str
    line: int = 0

    @property
    def forward_start(self) -> int | None:
        """0-based start on the forward strand, or None when it cannot be known."""
        if self.strand == "+":
            return self.start
        if self.src_size is None:
            return None
        return self.src_size - (self.start + self.size)

    @property
    def forward_end(self) -> int | None:
        """0-based exclusive end on the forward strand, or None when it cannot be known."""
        fs = self.forward_start
        return None if fs is None else fs + self.size


@dataclass(frozen=True, slots=True)
class AlignmentBlock:
    """One alignment block: rows of equal column count, with its score if the file gives one.

    ``path`` and ``line`` (1-based, the block's first line) locate it for error messages;
    ``index`` is the block's 0-based ordinal within its file.
    """

    rows: tuple[AlignedRow, ...]
    score: float | None
    path: str
    line: int
    index: int

    @property
    def n_columns(self) -> int:
        return len(self.rows[0].text) if self.rows else 0

    @property
    def block_id(self) -> str:
        """Stable id of the block within one input: ``<file name>:<index>``."""

        return f"{PurePath(self.path).name}:{self.index}"
