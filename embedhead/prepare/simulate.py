"""``embedhead simulate``: a realistic synthetic UCSC-style multiple alignment (MAF).

Out: a MAF file (plain, or gzip when the name ends in ``.gz``) with a reference (default
``hg38``, always ``+`` strand as in UCSC's hg38-based files) and query species at increasing
divergence (default panTro6, susScr11, galGal6, xenTro10, danRer10). Each block:

- a reference segment whose GC content follows isochores: along each reference chromosome GC
  is an Ornstein-Uhlenbeck process (mean ``gc_mean``, sd ``gc_sd``, correlation length
  ``gc_scale_kb``), sampled exactly at each block's position, so neighbouring blocks share GC
  and distant ones do not; it drifts slightly within long blocks; soft-masked repeats
  (lowercase): copies of a few repeat families (mutated ~12 %) and microsatellites, ~30 % of
  the letters;
- each present query evolved from the reference at a divergence drawn per block (a Beta
  around the species' mean rate, see :class:`~embedhead.prepare.config.SpeciesModel`), so
  block identities spread like real ones: substitutions with a transition bias (transitions
  twice as likely as transversions), insertions and deletions with geometric lengths,
  occasional runs of ``N`` (assembly gaps); lowercase is kept from the reference only for the
  species' ``mask_kept`` share (distant queries: ~0 % soft-masked in aligned regions, as real);
  distant species are missing from more blocks (a block lacking a species yields no pair);
- query rows on either strand: a ``-`` row's text is the reverse-complement strand and its
  ``start`` counts from the end (forward start = srcSize - (start + size)); coordinates on each
  chromosome increase from block to block (log-normal spacing, median ``spacing_kb``) and never
  overlap; ``srcSize`` is the chromosome size;
- a few blocks longer than 5,000 columns (to exercise chunking);
- ``a score=`` is the sum, over the query rows, of the exact pairwise score of that query
  against the reference (the pairwise projection: columns where both are gaps dropped), computed
  with :func:`embedhead.alignments.scoring.score_alignment` and the chosen scheme (default
  HOXD70, gap 400 + 30 per column). With a single query species the file is pairwise and the
  block score is exactly that pair's score, as in UCSC ``net`` MAFs.

Everything is drawn from one seeded :class:`random.Random`, so a seed gives the same file.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from embedhead.alignments.scoring import get_scheme, score_alignment
from embedhead.errors import ConfigError
from embedhead.fileio import atomic_file
from embedhead.prepare.config import (
    DEFAULT_SPECIES as DEFAULT_SPECIES,
)
from embedhead.prepare.config import (
    REFERENCE_CHROMS,
    SPECIES,
    SimulateConfig,
    SpeciesModel,
)

_TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}
_TRANSVERSIONS = {"A": "CT", "G": "CT", "C": "AG", "T": "AG"}


@dataclass(frozen=True)
class SimulateSummary:
    """What ``simulate`` wrote."""

    path: Path
    n_blocks: int
    n_rows: int
    n_columns: int
    max_columns: int
    n_long_blocks: int
    n_minus_rows: int
    rows_per_species: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        per = ", ".join(f"{k} {v}" for k, v in self.rows_per_species.items())
        return (
            f"wrote {self.path}: {self.n_blocks} blocks, {self.n_rows} rows ({per}),"
            f" {self.n_columns} columns (max {self.max_columns}, {self.n_long_blocks} blocks"
            f" over 5000), {self.n_minus_rows} minus-strand rows"
        )


@dataclass(frozen=True)
class SimRow:
    """One row of a simulated block, MAF fields as written."""

    src: str
    start: int
    size: int
    strand: str
    src_size: int
    text: str


# ---------------------------------------------------------------------------------------------
# reference sequence


def _random_base(rng: random.Random, gc: float) -> str:
    r = rng.random()
    if r < gc:
        return "C" if r < gc / 2 else "G"
    return "A" if r < gc + (1 - gc) / 2 else "T"


def _repeat_library(rng: random.Random) -> list[str]:
    """A few repeat-family consensus sequences (Alu-, L1- and MIR-sized)."""
    return ["".join(_random_base(rng, 0.5) for _ in range(n)) for n in (290, 520, 180)]


def _mutate(rng: random.Random, seq: str, rate: float) -> str:
    return "".join(_random_base(rng, 0.5) if rng.random() < rate else b for b in seq)


class _Isochores:
    """GC along each reference chromosome: an Ornstein-Uhlenbeck process, sampled exactly."""

    def __init__(self, mean: float, sd: float, scale: float) -> None:
        self.mean, self.sd, self.scale = mean, sd, scale
        self.state: dict[str, tuple[int, float]] = {}  # chrom -> (position, GC there)

    def gc_at(self, rng: random.Random, chrom: str, position: int) -> float:
        last = self.state.get(chrom)
        if last is None:
            gc = rng.gauss(self.mean, self.sd)
        else:
            phi = math.exp(-abs(position - last[0]) / self.scale)
            gc = self.mean + phi * (last[1] - self.mean)
            gc += rng.gauss(0, self.sd * math.sqrt(1 - phi * phi))
        self.state[chrom] = (position, gc)
        return min(0.75, max(0.25, gc))


def _reference_segment(rng: random.Random, length: int, library: Sequence[str], gc: float) -> str:
    """Soft-masked reference DNA of ``length`` letters around GC ``gc`` (lowercase = repeats)."""
    parts: list[str] = []
    n = 0
    while n < length:
        gc = min(0.7, max(0.3, gc + rng.gauss(0, 0.01)))
        r = rng.random()
        if r < 0.25:
            family = rng.choice(library)
            lo = rng.randrange(len(family) // 2)
            piece = _mutate(rng, family[lo : lo + rng.randint(60, len(family) - lo)], 0.12)
            piece = piece.lower()
        elif r < 0.31:
            unit = "".join(_random_base(rng, gc) for _ in range(rng.randint(1, 4)))
            piece = (unit * rng.randint(6, 20)).lower()
        else:
            piece = "".join(_random_base(rng, gc) for _ in range(rng.randint(40, 260)))
        parts.append(piece)
        n += len(piece)
    return "".join(parts)[:length]


# ---------------------------------------------------------------------------------------------
# evolution of one query against the reference


def _substitute(rng: random.Random, base: str) -> str:
    upper = base.upper()
    if upper not in _TRANSITION:
        return base
    new = _TRANSITION[upper] if rng.random() < 2 / 3 else rng.choice(_TRANSVERSIONS[upper])
    return new.lower() if base.islower() else new


def _geometric(rng: random.Random, mean: float, cap: int) -> int:
    p = 1.0 / mean
    k = 1
    while rng.random() > p and k < cap:
        k += 1
    return k


def _divergence(rng: random.Random, model: SpeciesModel) -> float:
    """This block's substitution rate: Beta(mean ``substitution``, concentration ``spread``)."""
    m = model.substitution
    if model.spread <= 0 or m <= 0:
        return m
    return min(0.75, rng.betavariate(m * model.spread, (1 - m) * model.spread))


def _evolve(rng: random.Random, ref: str, model: SpeciesModel) -> tuple[list[str], dict[int, str]]:
    """Per reference position the query letter or '-', and insertions after positions."""
    out: list[str] = []
    inserts: dict[int, str] = {}
    deleting = 0
    substitution = _divergence(rng, model)
    scale = substitution / model.substitution if model.substitution > 0 else 1.0
    half_indel = min(0.1, model.indel * scale) / 2
    for pos, base in enumerate(ref):
        if deleting:
            out.append("-")
            deleting -= 1
            continue
        r = rng.random()
        if base.islower() and rng.random() >= model.mask_kept:
            base = base.upper()
        if r < substitution:
            out.append(_substitute(rng, base))
        elif r < substitution + half_indel:
            deleting = _geometric(rng, 3.0, 60) - 1
            out.append("-")
            continue
        else:
            out.append(base)
        if rng.random() < half_indel:
            gc = 0.45
            length = _geometric(rng, 3.0, 60)
            inserts[pos] = "".join(_random_base(rng, gc) for _ in range(length))
    if rng.random() < 0.05 and len(out) > 120:
        lo = rng.randrange(len(out) - 100)
        for i in range(lo, lo + rng.randint(10, 80)):
            if out[i] != "-":
                out[i] = "N"
    return out, inserts


def _assemble(
    ref: str, queries: Sequence[tuple[list[str], dict[int, str]]]
) -> tuple[str, list[str]]:
    """Multiple alignment texts: reference columns plus each query's insertion columns."""
    ref_cols: list[str] = []
    q_cols: list[list[str]] = [[] for _ in queries]
    for pos, base in enumerate(ref):
        ref_cols.append(base)
        for k, (letters, _) in enumerate(queries):
            q_cols[k].append(letters[pos])
        for k, (_, inserts) in enumerate(queries):
            ins = inserts.get(pos)
            if ins is None:
                continue
            ref_cols.append("-" * len(ins))
            for j in range(len(queries)):
                q_cols[j].append(ins if j == k else "-" * len(ins))
    return "".join(ref_cols), ["".join(c) for c in q_cols]


# ---------------------------------------------------------------------------------------------
# coordinates


class _Cursor:
    """Non-overlapping, increasing placements on the chromosomes of one assembly."""

    def __init__(self, chroms: Sequence[tuple[str, int]], spacing: float = 8_000) -> None:
        self.spacing = spacing
        self.chroms = list(chroms)
        self.index = 0
        self.next_free = {name: 10_000 for name, _ in chroms}

    def place(self, rng: random.Random, size: int) -> tuple[str, int, int]:
        """(chrom, forward start, chrom size) for ``size`` letters; may move to another chrom."""
        if rng.random() < 0.08:
            self.index = (self.index + 1) % len(self.chroms)
        for _ in range(len(self.chroms)):
            chrom, chrom_size = self.chroms[self.index]
            gap = min(2_000_000, 20 + int(rng.lognormvariate(math.log(self.spacing), 1.0)))
            start = self.next_free[chrom] + gap
            if start + size <= chrom_size:
                self.next_free[chrom] = start + size
                return chrom, start, chrom_size
            self.index = (self.index + 1) % len(self.chroms)
        raise ConfigError("too many blocks: the simulated chromosomes are full")


def _letters(text: str) -> int:
    return len(text) - text.count("-")


# ---------------------------------------------------------------------------------------------
# blocks


def simulate_blocks(config: SimulateConfig) -> Iterator[tuple[int, list[SimRow]]]:
    """Yield (score, rows) per block; rows[0] is the reference. See the module docstring."""

    config.validate()
    scheme = get_scheme(config.scoring)
    rng = random.Random(config.seed)
    library = _repeat_library(rng)
    spacing = config.spacing_kb * 1000
    ref_cursor = _Cursor(REFERENCE_CHROMS, spacing)
    cursors = {db: _Cursor(SPECIES[db].chroms, spacing) for db in config.species}
    isochores = _Isochores(config.gc_mean, config.gc_sd, config.gc_scale_kb * 1000)
    models = [SPECIES[db] for db in config.species]
    for _ in range(config.n_blocks):
        if rng.random() < config.long_fraction:
            length = rng.randint(*config.long_range)
        else:
            length = max(30, int(rng.lognormvariate(0, 0.8) * config.mean_length / 1.377))
        chrom, fstart, csize = ref_cursor.place(rng, length)
        gc = isochores.gc_at(rng, chrom, fstart + length // 2)
        ref = _reference_segment(rng, length, library, gc)
        present = [m for m in models if rng.random() < m.presence]
        if not present:
            present = [models[0]]
        evolved = [_evolve(rng, ref, m) for m in present]
        ref_text, query_texts = _assemble(ref, evolved)
        rows = [SimRow(f"{config.reference}.{chrom}", fstart, length, "+", csize, ref_text)]
        score = 0
        for model, text in zip(present, query_texts, strict=True):
            size = _letters(text)
            if size == 0:
                continue
            score += score_alignment(ref_text, text, scheme)
            qchrom, qstart, qsize = cursors[model.db].place(rng, size)
            if rng.random() < model.minus_fraction:
                start = qsize - (qstart + size)
                rows.append(SimRow(f"{model.db}.{qchrom}", start, size, "-", qsize, text))
            else:
                rows.append(SimRow(f"{model.db}.{qchrom}", qstart, size, "+", qsize, text))
        yield score, rows


def _write_block(fh: TextIO, score: int, rows: Sequence[SimRow]) -> None:
    width = max(len(r.src) for r in rows)
    start_w = max(len(str(r.start)) for r in rows)
    size_w = max(len(str(r.size)) for r in rows)
    total_w = max(len(str(r.src_size)) for r in rows)
    fh.write(f"a score={score:.6f}\n")
    for r in rows:
        fh.write(
            f"s {r.src:<{width}} {r.start:>{start_w}} {r.size:>{size_w}} {r.strand}"
            f" {r.src_size:>{total_w}} {r.text}\n"
        )
    fh.write("\n")


def write_maf(
    path: str | os.PathLike[str], config: SimulateConfig, command: str = ""
) -> SimulateSummary:
    """Write the simulated MAF to ``path`` (gzip if it ends in ``.gz``), atomically."""
    config.validate()
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name such as demo.maf.gz")
    out.parent.mkdir(parents=True, exist_ok=True)
    n_blocks = n_rows = n_columns = max_columns = n_long = n_minus = 0
    per_species: dict[str, int] = {db: 0 for db in config.species}
    with atomic_file(out, "wb") as raw:
        gz = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
            if out.name.endswith(".gz")
            else None
        )
        with io.TextIOWrapper(gz or raw, encoding="ascii", newline="\n") as fh:
            fh.write(f"##maf version=1 scoring={config.scoring}.sum_of_pairs\n")
            fh.write(
                f"# embedhead simulate: synthetic alignment, seed {config.seed};"
                f" reference {config.reference}, queries {','.join(config.species)}\n"
            )
            if command:
                fh.write(f"# command: {command}\n")
            fh.write("\n")
            for score, rows in simulate_blocks(config):
                _write_block(fh, score, rows)
                n_blocks += 1
                n_rows += len(rows)
                cols = len(rows[0].text)
                n_columns += cols
                max_columns = max(max_columns, cols)
                n_long += cols > 5000
                for r in rows[1:]:
                    per_species[r.src.split(".", 1)[0]] += 1
                    n_minus += r.strand == "-"
            fh.write("##eof maf\n")
        if gz is not None:
            gz.close()
    return SimulateSummary(
        path=out,
        n_blocks=n_blocks,
        n_rows=n_rows,
        n_columns=n_columns,
        max_columns=max_columns,
        n_long_blocks=n_long,
        n_minus_rows=n_minus,
        rows_per_species=per_species,
    )
