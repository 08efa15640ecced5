"""Vectorised k-mer counting for the embedding-free baselines.

Shapes:
    encode(seq)                 -> np.ndarray (L,) uint8, A0 C1 G2 T3, anything else 4
    kmer_codes(codes, k)        -> np.ndarray (n,) int64, one code in [0, 4**k) per k-mer
                                   window that holds no N (n <= L - k + 1)
    kmer_profiles(seqs, k)      -> scipy.sparse.csr_matrix (S, 4**k) float64, k-mer
                                   frequencies per sequence (rows sum to 1, or 0 when the
                                   sequence has no valid k-mer)
    profile_similarity(P, i, j) -> (cosine (M,), l1 (M,)) for the row pairs (i[m], j[m])

No Python loop runs over the k-mers of a sequence: windows are built with
``numpy.lib.stride_tricks.sliding_window_view`` and counted with ``numpy.unique``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

_LOOKUP = np.full(256, 4, dtype=np.uint8)
for _i, _c in enumerate("ACGT"):
    _LOOKUP[ord(_c)] = _i
    _LOOKUP[ord(_c.lower())] = _i


def encode(seq: str) -> np.ndarray:
    """Nucleotide codes of a sequence: (L,) uint8 with A0 C1 G2 T3 and 4 for N/other."""
    raw = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
    return _LOOKUP[raw]


def kmer_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """Integer code of every k-mer window without N: (n,) int64 in [0, 4**k)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    if codes.shape[0] < k:
        return np.zeros(0, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)  # (L-k+1, k)
    valid = ~(windows == 4).any(axis=1)
    weights = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)  # (k,)
    return (windows[valid].astype(np.int64) * weights).sum(axis=1)


def kmer_profiles(seqs: Sequence[str], k: int) -> sp.csr_matrix:
    """K-mer frequency profiles, one sparse row (4**k columns) per sequence."""
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for seq in seqs:
        values, counts = np.unique(kmer_codes(encode(seq), k), return_counts=True)
        total = counts.sum()
        indices.append(values)
        data.append(counts / total if total else counts.astype(np.float64))
        indptr.append(indptr[-1] + values.shape[0])
    return sp.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0),
            np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(len(seqs), 4**k),
    )


def profile_similarity(
    profiles: sp.csr_matrix, rows1: np.ndarray, rows2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity and L1 distance of profile rows ``rows1[m]`` vs ``rows2[m]``: (M,), (M,).

    A sequence without any valid k-mer has cosine 0 with everything.
    """
    a = profiles[rows1]
    b = profiles[rows2]
    dot = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    norm_a = np.sqrt(np.asarray(a.multiply(a).sum(axis=1)).ravel())
    norm_b = np.sqrt(np.asarray(b.multiply(b).sum(axis=1)).ravel())
    denom = norm_a * norm_b
    cosine = np.divide(dot, denom, out=np.zeros_like(dot), where=denom > 0)
    l1 = np.asarray(abs(a - b).sum(axis=1)).ravel()
    return cosine, l1


def gc_content(seq: str) -> float:
    """Fraction of G or C among the A/C/G/T bases (0.5 when the sequence has none)."""
    codes = encode(seq)
    acgt = int((codes < 4).sum())
    if acgt == 0:
        return 0.5
    return float(((codes == 1) | (codes == 2)).sum()) / acgt
