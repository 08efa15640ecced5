"""Options of the prepare stage (no numpy): :class:`PrepareConfig` and its choice lists.

``embedhead prepare`` takes its option defaults and ``Choice`` lists from here (negative methods
from :mod:`.negatives`, split modes and fractions from :mod:`.splits`, both light);
``tests/test_cli_defaults.py`` checks that they agree.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from embedhead.errors import ConfigError
from embedhead.prepare.negatives import DEFAULT_LENGTH_MATCH, NEGATIVE_METHODS
from embedhead.prepare.splits import DEFAULT_FRACTIONS, SPLIT_MODES, check_fractions

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_FRACTIONS",
    "DEFAULT_GC_TOLERANCE",
    "DEFAULT_KMER_TOLERANCE",
    "DEFAULT_LENGTH_MATCH",
    "DEFAULT_MATCH",
    "DEFAULT_MIN_LENGTH",
    "FORMATS",
    "MATCH_MODES",
    "NEGATIVE_METHODS",
    "SPLIT_MODES",
    "PrepareConfig",
]

DEFAULT_CHUNK_SIZE = 5000
FORMATS = ("auto", "maf", "axt", "csv")
DEFAULT_MIN_LENGTH = 50

MATCH_MODES = ("length", "gc", "kmer")
"""``prepare --match``: length matching only (``--length-match``), or GC or 3-mer profile
matching as well."""
DEFAULT_MATCH = "length"
DEFAULT_GC_TOLERANCE = 0.02
"""``prepare --gc-tolerance``: largest |GC difference| of a GC-matched negative's sequence."""
DEFAULT_KMER_TOLERANCE = 0.25
"""``prepare --kmer-tolerance``: largest total-variation distance between the 3-mer profiles of
a k-mer-matched negative's second sequence and the true partner's."""


@dataclass(frozen=True)
class PrepareConfig:
    """Parameters of one ``prepare`` run (recorded in ``dataset.json``)."""

    reference: str | None = None
    query: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    min_length: int = DEFAULT_MIN_LENGTH
    scoring: str = "hoxd70"
    negatives: str = "swap"
    negative_ratio: float = 1.0
    length_match: float = DEFAULT_LENGTH_MATCH  # 0: lengths ignored
    gc_match: float = 0.0  # --match gc: absolute GC tolerance of negatives (0: GC ignored)
    kmer_match: float = 0.0  # --match kmer: TV-distance tolerance of 3-mer profiles (0: none)
    split_by: str = "block"
    split_fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    seed: int = 0
    chrom_sizes: str | None = None
    fmt: str = "auto"
    max_pairs: int | None = None  # uniform sample of this many positive windows (None: all)
    chroms: tuple[str, ...] | None = None  # reference chromosomes to keep (None: all)
    regions: str | None = None  # BED file: keep windows whose reference side overlaps it
    force: bool = False
    progress: bool = False  # a bar of input bytes read on stderr
    command: str = ""

    def validate(self) -> None:
        """Raise ConfigError for any out-of-range parameter."""
        if self.chunk_size < 1:
            raise ConfigError(f"--chunk-size must be >= 1, not {self.chunk_size}")
        if self.min_length < 1:
            raise ConfigError(f"--min-length must be >= 1, not {self.min_length}")
        if self.min_length > self.chunk_size:
            raise ConfigError(
                f"--min-length {self.min_length} exceeds --chunk-size {self.chunk_size}:"
                " no window could pass"
            )
        if self.negatives not in NEGATIVE_METHODS:
            raise ConfigError(
                f"unknown --negatives {self.negatives!r}"
                f" (choose from {', '.join(NEGATIVE_METHODS)})"
            )
        if not math.isfinite(self.negative_ratio) or self.negative_ratio < 0:
            raise ConfigError(f"--negative-ratio must be >= 0, not {self.negative_ratio}")
        if not math.isfinite(self.gc_match) or not 0 <= self.gc_match < 1:
            raise ConfigError(f"--gc-tolerance must be >= 0 and < 1, not {self.gc_match}")
        if not math.isfinite(self.kmer_match) or not 0 <= self.kmer_match < 1:
            raise ConfigError(f"--kmer-tolerance must be >= 0 and < 1, not {self.kmer_match}")
        if not math.isfinite(self.length_match) or not 0 <= self.length_match < 1:
            raise ConfigError(
                f"--length-match must be >= 0 and < 1 (0: no length matching),"
                f" not {self.length_match}"
            )
        if self.split_by not in SPLIT_MODES:
            raise ConfigError(
                f"unknown --split-by {self.split_by!r} (choose from {', '.join(SPLIT_MODES)})"
            )
        if self.fmt not in FORMATS:
            raise ConfigError(f"unknown --format {self.fmt!r} (choose from {', '.join(FORMATS)})")
        check_fractions(self.split_fractions)
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ConfigError(f"--max-pairs must be >= 1, not {self.max_pairs}")
        if self.chroms is not None and (not self.chroms or not all(self.chroms)):
            raise ConfigError("--chroms needs one or more chromosome names, comma separated")
        if self.reference is not None and self.reference == self.query:
            raise ConfigError(f"--reference and --query are both {self.reference!r}")

    def parameters(self) -> dict[str, Any]:
        """The parameters that shape the dataset (no force flag, no command line)."""
        out = dataclasses.asdict(self)
        for key in ("force", "command", "progress"):
            out.pop(key)
        out["split_fractions"] = list(self.split_fractions)
        if self.chroms is not None:
            out["chroms"] = list(self.chroms)
        return out


# --- simulate: species models and options (the synthetic MAF of `embedhead simulate`) ---


@dataclass(frozen=True)
class SpeciesModel:
    """How far a query species is from the reference, and where its sequence lives.

    ``substitution`` and ``indel`` are the *mean* per-letter rates; each block draws its own
    divergence factor ``f`` from a Beta distribution of mean ``substitution`` and concentration
    ``spread`` (its substitution rate is ``f`` and its indel rate ``indel * f /
    substitution``), so identities spread as in real files (human-chicken blocks p5-p95
    identity about 0.45-0.86) instead of clustering at the mean; ``spread = 0`` keeps every
    block at the mean. ``mask_kept``: share of the reference's soft-masked (lowercase) letters
    that stay lowercase in the query (real distant queries are almost unmasked in aligned
    regions; a close one like chimp shares the repeats).
    """

    db: str
    substitution: float
    indel: float
    presence: float
    minus_fraction: float
    chroms: tuple[tuple[str, int], ...]
    spread: float = 12.0
    mask_kept: float = 0.0


REFERENCE_CHROMS: tuple[tuple[str, int], ...] = (
    ("chr1", 248_956_422),
    ("chr2", 242_193_529),
    ("chr7", 159_345_973),
    ("chr13", 114_364_328),
    ("chrX", 156_040_895),
)

SPECIES: dict[str, SpeciesModel] = {
    m.db: m
    for m in (
        SpeciesModel(
            "panTro6",
            0.012,
            0.0008,
            0.98,
            0.05,
            (("chr1", 228_573_443), ("chr2A", 113_622_374)),
            spread=60.0,
            mask_kept=1.0,
        ),
        SpeciesModel(
            "susScr11",
            0.17,
            0.012,
            0.9,
            0.5,
            (("chr6", 170_843_587), ("chr13", 208_334_590)),
            spread=15.0,
            mask_kept=0.1,
        ),
        SpeciesModel(
            "galGal6", 0.33, 0.02, 0.55, 0.5, (("chr1", 197_608_386), ("chr4", 90_861_225))
        ),
        SpeciesModel(
            "xenTro10", 0.37, 0.024, 0.45, 0.5, (("chr2", 169_156_014), ("chr8", 125_090_010))
        ),
        SpeciesModel(
            "danRer10", 0.41, 0.028, 0.35, 0.5, (("chr5", 75_682_077), ("chr14", 52_660_232))
        ),
    )
}
DEFAULT_SPECIES = tuple(SPECIES)


@dataclass(frozen=True)
class SimulateConfig:
    """Parameters of a simulated MAF."""

    n_blocks: int = 200
    seed: int = 0
    reference: str = "hg38"
    species: tuple[str, ...] = DEFAULT_SPECIES
    mean_length: int = 600
    long_fraction: float = 0.05
    long_range: tuple[int, int] = (5_200, 9_000)
    scoring: str = "hoxd70"
    gc_mean: float = 0.39  # isochore GC: mean of the process along the reference
    gc_sd: float = 0.08  # its stationary sd (human isochores span ~35-55 % GC)
    gc_scale_kb: float = 100.0  # correlation length along the reference (kb)
    spacing_kb: float = 8.0  # median distance between consecutive blocks on a chromosome (kb)

    def validate(self) -> None:
        """Raise ConfigError for unusable parameters."""
        if self.n_blocks < 1:
            raise ConfigError(f"--blocks must be >= 1, not {self.n_blocks}")
        if self.mean_length < 20:
            raise ConfigError(f"--mean-length must be >= 20, not {self.mean_length}")
        if not 0 <= self.long_fraction <= 1:
            raise ConfigError(f"--long-fraction must be in [0, 1], not {self.long_fraction}")
        if not self.species:
            raise ConfigError("at least one query species is needed")
        unknown = [s for s in self.species if s not in SPECIES]
        if unknown:
            raise ConfigError(f"unknown species {', '.join(unknown)} (known: {', '.join(SPECIES)})")
        if len(set(self.species)) != len(self.species):
            raise ConfigError("a query species is listed twice")
        if not self.reference or "." in self.reference or len(self.reference.split()) != 1:
            raise ConfigError(
                f"--reference must be a database name without dots or spaces (like hg38),"
                f" not {self.reference!r}: the MAF names rows db.chrom"
            )
        if self.reference in self.species:
            raise ConfigError(f"the reference {self.reference!r} is also a query species")
        lo, hi = self.long_range
        if not 0 < lo <= hi:
            raise ConfigError(f"bad long block range {self.long_range}")
        if not 0.05 <= self.gc_mean <= 0.95 or not 0 <= self.gc_sd <= 0.3:
            raise ConfigError(
                f"GC mean must be in [0.05, 0.95] and sd in [0, 0.3], not {self.gc_mean},"
                f" {self.gc_sd}"
            )
        if self.gc_scale_kb <= 0 or self.spacing_kb <= 0:
            raise ConfigError(
                f"GC correlation length and block spacing must be > 0 kb, not"
                f" {self.gc_scale_kb}, {self.spacing_kb}"
            )
