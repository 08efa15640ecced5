"""A local-alignment baseline: Smith-Waterman scores of each pair under the dataset's scheme.

In: pairs of unaligned sequences (str, str) and a :class:`~embedhead.alignments.scoring.
ScoringScheme` (the one ``prepare`` scored the windows with, e.g. HOXD70 with gap 400 + 30 per
column). Out: :func:`local_scores` -> (N,) float64 optimal local alignment scores, and the
seconds spent; :func:`score_per_length` divides by ``max(len1, len2)`` like ``norm_score``.

Biopython's ``PairwiseAligner`` (C implementation, score only, no traceback) runs in local mode
with the scheme's 4x4 matrix over A/C/G/T (any other letter scores 0 against everything, as in
:func:`~embedhead.alignments.scoring.score_alignment`; soft-masked letters are upper-cased)
and affine gaps: a run of ``k`` gap columns costs ``gap_open + gap_extend * k``, i.e. Biopython's
open score ``-(gap_open + gap_extend)`` and extend score ``-gap_extend``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from Bio import Align
from Bio.Align import substitution_matrices

from embedhead.alignments.scoring import HOXD70, ScoringScheme

ALPHABET = "ACGTN"


def scheme_from_info(info: Mapping[str, Any] | None) -> ScoringScheme:
    """The scheme recorded in ``dataset.json["scoring_scheme"]`` (HOXD70 when absent)."""
    if not info:
        return HOXD70
    m = info["matrix"]
    matrix = tuple(tuple(int(v) for v in row) for row in m)
    return ScoringScheme(
        name=str(info.get("name", "custom")),
        matrix=matrix,  # type: ignore[arg-type]
        gap_open=int(info["gap_open"]),
        gap_extend=int(info["gap_extend"]),
    )


def make_aligner(scheme: ScoringScheme) -> Align.PairwiseAligner:
    """A local, score-only ``PairwiseAligner`` for ``scheme`` (see module docstring)."""
    values = np.zeros((5, 5), dtype=np.float64)
    values[:4, :4] = np.asarray(scheme.matrix, dtype=np.float64)
    matrix = substitution_matrices.Array(alphabet=ALPHABET, dims=2, data=values)
    aligner = Align.PairwiseAligner()
    aligner.mode = "local"
    aligner.substitution_matrix = matrix
    aligner.open_gap_score = -float(scheme.gap_open + scheme.gap_extend)
    aligner.extend_gap_score = -float(scheme.gap_extend)
    return aligner


def _clean(seq: str) -> str:
    up = seq.upper()
    return (
        up.translate({ord(c): "N" for c in set(up) - set("ACGT")}) if set(up) - set("ACGT") else up
    )


def local_scores(
    pairs: Sequence[tuple[str, str]], scheme: ScoringScheme = HOXD70
) -> tuple[np.ndarray, float]:
    """Optimal local alignment score of every pair: (N,) float64, and wall-clock seconds."""
    aligner = make_aligner(scheme)
    out = np.zeros(len(pairs), dtype=np.float64)
    start = time.perf_counter()
    for i, (a, b) in enumerate(pairs):
        a, b = _clean(a), _clean(b)
        out[i] = aligner.score(a, b) if a and b else 0.0
    return out, time.perf_counter() - start


def score_per_length(scores: np.ndarray, len1: np.ndarray, len2: np.ndarray) -> np.ndarray:
    """``score / max(len1, len2)`` (N,), the unit of ``norm_score``."""
    return scores / np.maximum(np.maximum(len1, len2), 1).astype(np.float64)
