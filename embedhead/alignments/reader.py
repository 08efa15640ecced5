"""One entry point for every alignment input: detect the format, then stream its blocks.

``read_alignments(path, fmt=None, chrom_sizes=None)`` yields :class:`AlignmentBlock` objects
from a MAF, AXT or thesis-CSV file (plain, gzip or bzip2), the format detected from the content
when ``fmt`` is None. ``chrom_sizes`` only matters for AXT (see :mod:`.axt`).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping

from embedhead.alignments.axt import parse_axt
from embedhead.alignments.csvpairs import parse_thesis_csv
from embedhead.alignments.detect import FORMATS, detect_format
from embedhead.alignments.maf import parse_maf
from embedhead.alignments.openers import ByteCounter
from embedhead.alignments.records import AlignmentBlock
from embedhead.errors import ConfigError

__all__ = ["read_alignments"]


def read_alignments(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    chrom_sizes: Mapping[str, int] | None = None,
    *,
    target_db: str = "target",
    query_db: str = "query",
    keep_dbs: Collection[str] | None = None,
    counter: ByteCounter | None = None,
) -> Iterator[AlignmentBlock]:
    """Stream the validated blocks of ``path``; ``fmt`` is ``maf``, ``axt``, ``csv`` or None.

    ``target_db``/``query_db`` name the two databases of AXT input (AXT does not say).
    ``keep_dbs``: MAF rows of other databases are validated but left out of the blocks.
    ``counter`` counts the bytes read from the file (compressed bytes for gzip/bzip2).
    Raises ConfigError for an unknown ``fmt``, InputError (file, line) for bad input.
    """
    if fmt is None:
        fmt = detect_format(path)
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown alignment format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "maf":
        return parse_maf(path, keep_dbs=keep_dbs, counter=counter)
    if fmt == "axt":
        return parse_axt(path, chrom_sizes, target_db=target_db, query_db=query_db, counter=counter)
    return parse_thesis_csv(path, counter=counter)
