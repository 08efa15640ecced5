"""Alignment input: MAF, AXT and the thesis's CSV, plain/gz/bz2, detected by content.

Public API (implemented in the submodules, one per format):

- :func:`embedhead.alignments.reader.read_alignments`: ``(path, fmt) -> Iterator[AlignmentBlock]``
- :func:`embedhead.alignments.detect.detect_format` ``(path) -> "maf" | "axt" | "csv"``
- :mod:`embedhead.alignments.scoring`: scoring schemes and exact block scores.
"""

from embedhead.alignments.records import AlignedRow, AlignmentBlock

__all__ = ["AlignedRow", "AlignmentBlock"]
