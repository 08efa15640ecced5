"""Vectorised k-mer counting for the embedding-free baselines.

Shapes:
    encode(seq)                 -> np.ndarray (L,) uint8, A0 C1 G2 T3, anything else 4
    kmer_codes(codes, k)        -> np.ndarray (n,) int64, one code in [0, 4**k) per k-mer
                                   window that holds no N (n <= L - k + 1)
    kmer_profiles(seqs, k)      -> scipy.sparse.csr_matrix (S, 4**k) float64, k-mer
                                   frequencies per sequence (rows sum to 1, or 0 when the
                                   sequence has no valid k-mer)
    profile_similarity(P, i, j) -> (cosine (M,), l1 (M,)) for the row pairs (i[m], j[m])

No Python loop runs over the k-mers of a sequence: window codes are built column by column
(``_window_codes``, shared by ``kmer_codes`` and ``kmer_profiles``); ``kmer_profiles`` codes a
whole batch of sequences at once and counts them with one ``numpy.bincount``.
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
    code, ok = _window_codes(codes, k)
    return code[ok].astype(np.int64, copy=False)


def _window_codes(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Code of every k-mer window of ``codes`` (m = L-k+1 windows; int32 up to k = 15, else
    int64) and whether the window holds no N: ((m,), (m,) bool). Built column by column in
    place: no (m, k) window matrix."""
    m = codes.shape[0] - k + 1
    if m <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    ok = codes[:m] != 4
    code: np.ndarray = codes[:m].astype(np.int32 if k <= 15 else np.int64)
    for j in range(1, k):
        part = codes[j : j + m]
        ok &= part != 4
        code *= 4
        code += part
    return code, ok


#: Letters (and dense count cells) per batch of sequences counted at once by kmer_profiles.
_BATCH = 1 << 22


def _batch_counts(seqs: Sequence[str], k: int) -> np.ndarray:
    """K-mer counts of a batch of sequences at once: (S, 4**k) int64, the same counts as
    ``kmer_codes`` of each sequence. The sequences are joined with an ``N`` between them, so a
    window across a boundary holds an N and is dropped like any window with an N."""
    size = 4**k
    code, ok = _window_codes(encode("N".join(seqs)), k)  # windows over the concatenation
    if not code.size:
        return np.zeros((len(seqs), size), dtype=np.int64)
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs)) + 1
    seq_of = np.repeat(np.arange(len(seqs), dtype=np.int32), lengths)[: code.size]
    counts = np.bincount(seq_of[ok] * size + code[ok], minlength=len(seqs) * size)
    return counts.reshape(len(seqs), size)


def kmer_profiles(seqs: Sequence[str], k: int) -> sp.csr_matrix:
    """K-mer frequency profiles, one sparse row (4**k columns) per sequence.

    Counted a batch of sequences at a time (one ``bincount`` over their concatenation, windows
    across a boundary dropped): the same matrix as counting each sequence with
    :func:`kmer_codes` and ``numpy.unique``, ~20x faster on 30,000 sequences.
    """
    if k < 1 and seqs:
        raise ValueError(f"k must be >= 1, not {k}")
    size = 4**k
    indptr = [np.zeros(1, dtype=np.int64)]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    start = 0
    while start < len(seqs):
        stop, letters = start + 1, len(seqs[start])
        while (
            stop < len(seqs)
            and letters + len(seqs[stop]) <= _BATCH
            and (stop + 1 - start) * size <= _BATCH
        ):
            letters += len(seqs[stop])
            stop += 1
        counts = _batch_counts(seqs[start:stop], k)
        rows, cols = np.nonzero(counts)  # row-major: by sequence, then k-mer code ascending
        totals = counts.sum(axis=1)
        indices.append(cols.astype(np.int64))
        data.append(counts[rows, cols] / totals[rows])
        indptr.append(indptr[-1][-1] + np.cumsum(np.bincount(rows, minlength=stop - start)))
        start = stop
    return sp.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0),
            np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
            np.concatenate(indptr),
        ),
        shape=(len(seqs), size),
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
