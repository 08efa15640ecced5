"""``embedhead simulate --profile``: the distributions that make an alignment file look real.

In: pairwise (reference text, query text) alignments -- from a real MAF/AXT file (the
reference row and the query row of each block, :func:`~embedhead.prepare.chunking.select_pair`)
or from the simulator (:func:`~embedhead.prepare.simulate.simulate_blocks`, the reference and
one query species) -- each projected to the columns where at least one row holds a letter.
Out: an :class:`AlignmentProfile` (one number or a (p5, p50, p95) triple per measure) and a
side-by-side text table (:func:`profile_table`).

Measures, per block: identity (identical A/C/G/T / columns where both rows hold a letter, as
prepare computes it), length (columns), gap rate (columns where one row has a gap / columns),
GC (G+C among the reference's A/C/G/T), and soft-masking (lowercase letters / letters, of the
reference and of the query). GC is summarised by mean, sd over blocks and the lag-1
correlation of consecutive blocks in file order (isochores: neighbouring blocks share GC, r
well above 0; blocks drawn independently give r near 0).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from embedhead.alignments.reader import read_alignments
from embedhead.alignments.scoring import identity
from embedhead.errors import InputError
from embedhead.prepare.chunking import project_pair, select_pair
from embedhead.prepare.config import SimulateConfig
from embedhead.prepare.simulate import simulate_blocks

Triple = tuple[float, float, float]
GAPS = "-."


@dataclass(frozen=True)
class AlignmentProfile:
    """Distributions over the pairwise blocks of one alignment source."""

    label: str
    n_blocks: int
    identity: Triple  # p5, p50, p95 over blocks
    length: Triple  # columns, p5, p50, p95
    gap_rate: Triple  # share of columns with a gap in one row
    gc_mean: float
    gc_sd: float
    gc_lag1: float  # correlation of consecutive blocks' GC (NaN with < 3 blocks)
    masked_reference: float  # lowercase / letters, all blocks pooled
    masked_query: float


def _quantiles(values: Sequence[float]) -> Triple:
    """(p5, p50, p95) by linear interpolation; NaNs for no values."""
    vals = sorted(v for v in values if not math.isnan(v))
    if not vals:
        return (math.nan, math.nan, math.nan)

    def q(p: float) -> float:
        x = p * (len(vals) - 1)
        lo = math.floor(x)
        hi = min(lo + 1, len(vals) - 1)
        return vals[lo] + (vals[hi] - vals[lo]) * (x - lo)

    return (q(0.05), q(0.5), q(0.95))


def _lag1(values: Sequence[float]) -> float:
    if len(values) < 3:
        return math.nan
    a, b = values[:-1], values[1:]
    try:
        return statistics.correlation(a, b)
    except statistics.StatisticsError:  # constant series
        return math.nan


def _gc(text: str) -> float:
    up = text.upper()
    acgt = sum(up.count(c) for c in "ACGT")
    return (up.count("G") + up.count("C")) / acgt if acgt else math.nan


def _letters(text: str) -> int:
    return len(text) - sum(text.count(g) for g in GAPS)


def _lower(text: str) -> int:
    return sum(1 for c in text if c.islower())


def profile_pairs(pairs: Iterable[tuple[str, str]], label: str) -> AlignmentProfile:
    """Profile of projected (reference text, query text) pairs (equal lengths)."""
    ids: list[float] = []
    lengths: list[float] = []
    gaps: list[float] = []
    gcs: list[float] = []
    letters_r = letters_q = lower_r = lower_q = 0
    for ref, query in pairs:
        if not ref:
            continue
        ids.append(identity(ref, query))
        lengths.append(float(len(ref)))
        gaps.append(
            sum(1 for a, b in zip(ref, query, strict=True) if a in GAPS or b in GAPS) / len(ref)
        )
        gc = _gc(ref)
        if not math.isnan(gc):
            gcs.append(gc)
        letters_r += _letters(ref)
        letters_q += _letters(query)
        lower_r += _lower(ref)
        lower_q += _lower(query)
    return AlignmentProfile(
        label=label,
        n_blocks=len(lengths),
        identity=_quantiles(ids),
        length=_quantiles(lengths),
        gap_rate=_quantiles(gaps),
        gc_mean=statistics.fmean(gcs) if gcs else math.nan,
        gc_sd=statistics.pstdev(gcs) if len(gcs) > 1 else math.nan,
        gc_lag1=_lag1(gcs),
        masked_reference=lower_r / letters_r if letters_r else math.nan,
        masked_query=lower_q / letters_q if letters_q else math.nan,
    )


def _project(ref: str, query: str) -> tuple[str, str]:
    keep = [
        i for i, (a, b) in enumerate(zip(ref, query, strict=True)) if a not in GAPS or b not in GAPS
    ]
    return "".join(ref[i] for i in keep), "".join(query[i] for i in keep)


def profile_file(
    path: str | os.PathLike[str], reference: str | None = None, query: str | None = None
) -> AlignmentProfile:
    """Profile of a real MAF/AXT file: per block its (reference, query) rows (default: the
    first row and the first other one; AXT: the two rows). InputError if no block has both."""

    def pairs() -> Iterable[tuple[str, str]]:
        for block in read_alignments(path):
            pair = select_pair(block, reference, query)
            if pair is not None:
                p1, p2 = project_pair(*pair)
                yield p1.text, p2.text

    profile = profile_pairs(pairs(), os.path.basename(os.fspath(path)))
    if profile.n_blocks == 0:
        wanted = f"{reference or 'first row'} / {query or 'second row'}"
        raise InputError(f"no block holds the rows {wanted}", os.fspath(path))
    return profile


def profile_simulation(config: SimulateConfig, query: str | None = None) -> AlignmentProfile:
    """Profile of what ``simulate`` writes for ``config``: reference vs ``query`` (default the
    first of ``config.species``), blocks lacking that species skipped."""
    db = query or config.species[0]

    def pairs() -> Iterable[tuple[str, str]]:
        for _, rows in simulate_blocks(config):
            row = next((r for r in rows[1:] if r.src.split(".", 1)[0] == db), None)
            if row is not None:
                yield _project(rows[0].text, row.text)

    return profile_pairs(pairs(), f"simulated {config.reference}-{db}")


def _fmt(x: float, digits: int = 3) -> str:
    return "nan" if math.isnan(x) else f"{x:.{digits}f}"


def _triple(t: Triple, digits: int = 3) -> str:
    return " / ".join(_fmt(v, digits) for v in t)


def profile_table(profiles: Sequence[AlignmentProfile]) -> str:
    """A plain-text table: one row per measure, one column per profile."""
    rows: list[tuple[str, list[str]]] = [
        ("blocks", [str(p.n_blocks) for p in profiles]),
        ("identity p5 / p50 / p95", [_triple(p.identity) for p in profiles]),
        ("length p5 / p50 / p95 (columns)", [_triple(p.length, 0) for p in profiles]),
        ("gap rate p5 / p50 / p95", [_triple(p.gap_rate) for p in profiles]),
        ("GC mean", [_fmt(p.gc_mean) for p in profiles]),
        ("GC sd over blocks", [_fmt(p.gc_sd) for p in profiles]),
        ("GC lag-1 correlation", [_fmt(p.gc_lag1) for p in profiles]),
        ("soft-masked, reference", [_fmt(p.masked_reference) for p in profiles]),
        ("soft-masked, query", [_fmt(p.masked_query) for p in profiles]),
    ]
    header = ["measure", *[p.label for p in profiles]]
    widths = [max(len(header[0]), *(len(r[0]) for r in rows))]
    for k in range(len(profiles)):
        widths.append(max(len(header[k + 1]), *(len(r[1][k]) for r in rows)))
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    for name, cells in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip([name, *cells], widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)
