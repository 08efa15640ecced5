"""Negative (label 0) pairs built from positive pairs of one split.

In: a sequence of positive :class:`~embedhead.dataset.PairRecord` (one split).
Out: negative records pairing the first sequence of positive ``i`` with the second sequence of
positive ``j``; score, norm_score and identity are NaN, coordinates are those of the two source
sequences, the block id is ``<block i>|<block j>``.

Methods (all deterministic for a given seed and input order):

- ``adjacent`` (the thesis's literal method): positive ``i`` takes the second sequence of
  positive ``i + 1`` *in input order* (cyclically; no shuffling, no seed), so a negative pairs
  neighbouring regions of the alignment file, which tend to share GC content. A refused
  candidate (see below: same or overlapping block, a true partner, a repeat) moves on to
  ``i + 2``, ``i + 3``, ...; windows of one cut block are therefore never paired.
- ``swap``: shuffle the positives (seeded), pair each with the next one in the shuffled order
  (cyclically). Not the thesis's exact method: the shuffle pairs regions from anywhere in the
  file, so it does not keep the neighbours' shared composition.
- ``shuffle``: a uniformly drawn derangement of the positives.

Length matching (``length_match = tol > 0``; ``prepare``'s default is 0.1): the negative
``(seq1 of i, seq2 of j)`` is accepted only when the replaced second sequence has nearly the
length of the true one, ``|len2_j - len2_i| <= tol * max(len2_j, len2_i)``. The negative then
keeps positive ``i``'s first sequence and a second sequence of nearly its partner's length, so
its length ratio ``len1/len2`` is positive ``i``'s within a factor ``1 +- tol`` and length
alone hardly tells the labels apart. Partners are taken among the *nearest*
lengths, so the typical deviation is far below ``tol``:

- ``swap``: shuffle (seeded; it breaks ties), stable-sort by ``len2``, then walk the sorted
  order: each positive not yet used swaps second sequences with the nearest following unused
  positive that makes two valid negatives (usually its neighbour: ``i`` gets ``j``'s second
  sequence and ``j`` gets ``i``'s).
- ``shuffle``: shuffle, stable-sort by ``len2``, cut into strata of 2 to ``STRATUM_MAX``
  consecutive positives (sizes drawn) and draw a uniform derangement within each stratum;
  an invalid assignment is exchanged with the nearest ranks first.

GC matching (``gc_match = tol > 0``, ``prepare --match gc``; needs ``gc``, the GC fraction of
every second sequence by id): a candidate is accepted only when the replaced second sequence's
GC content is within ``tol`` (absolute) of the true partner's, so ``|GC1 - GC2|`` of a negative
is that of its positive within ``tol`` and GC hardly tells the labels apart. Without length
matching the matched methods above sort by that GC content instead of ``len2``; with both,
they sort by ``len2`` and both tolerances must hold.

K-mer matching (``kmer_match = tol > 0``, ``prepare --match kmer``; needs ``kmer``, the
``KMER_K``-mer (3-mer) frequency profile of every second sequence by id, see
:func:`kmer_profile`): the distance between two profiles is their total-variation distance
``TV(p, q) = 0.5 * sum_w |p_w - q_w|`` (half the L1 distance, in [0, 1]). A candidate is
accepted only when the replaced second sequence's profile is within ``tol`` of the true
partner's, and the matched ``swap`` takes, among the following ``MAX_TRIES`` unused candidates
in its sorted order that are valid, the *nearest* profile (not merely the first valid one).
TV is a metric, so a negative's ``TV(seq1, seq2')`` differs from its positive's ``TV(seq1,
seq2)`` by at most ``tol``: the k-mer distance of a negative is its positive's within ``tol``.
Without length matching the matched methods sort by the second sequence's GC content (a
one-dimensional proxy of the profile); with it, by ``len2``.

``dishuffle`` (:func:`dishuffle_negatives`, ``prepare --negatives dishuffle``): the negative of
positive ``i`` pairs its first sequence with a dinucleotide-preserving shuffle of its own second
sequence (:func:`dinucleotide_shuffle`, an Altschul-Erickson shuffle drawn as a random Euler
path), so length, base composition, GC and every dinucleotide count are exactly the true
partner's and only the order (the homology) is gone. The shuffled sequences are new: the caller
writes them to the dataset's FASTA. No length or composition matching is needed (nor applied).

A derangement of positives cannot do better than the neighbouring length, so on ~400 positives
the negatives' ``|len1 - len2|`` is still very slightly wider than the positives' (a
length-only logistic regression on the demo data: ~0.55 cross-validated accuracy instead of
~0.92 without matching).

A candidate is refused when it breaks the length tolerance (if any), when its two sources come
from the same block or from blocks that overlap (same db and chrom, overlapping forward
coordinates on either side; a block's extent is the union of its windows, so no window of a
block is paired with any window of a copy of it), when it pairs a sequence with itself or with
one of its true partners (any positive pair, either orientation), or when it repeats an
earlier negative. Refused candidates are re-drawn (``swap``: the next positives in the order;
``shuffle``: an exchange with another position -- random, or with length matching the nearest
ranks -- that keeps both valid) a bounded number of times (``MAX_TRIES``), then skipped;
further rounds (up to ``ceil(ratio) + 3``) fill the shortfall, possibly re-using sequences.
Nothing is ever relaxed: the count can fall short of ``ratio * n`` when almost everything
overlaps (e.g. a single block) or, with length matching, when a positive has no valid partner
of a close enough length (an isolated length, or only chunks of its own block nearby);
``prepare`` reports the shortfall in ``dataset.json``.

With ``length_match = 0`` (the default of this function) no length is looked at (the same random
draws as before the option existed). ``adjacent`` with ``length_match > 0`` walks forward in
input order to the next positive within the tolerance.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from embedhead.dataset import PairRecord, sequence_id
from embedhead.errors import ConfigError

NEGATIVE_METHODS = ("swap", "shuffle", "adjacent", "dishuffle")
KMER_K = 3  # --match kmer compares 3-mer frequency profiles (64 words)
DISHUFFLE_TRIES = 10  # shuffles drawn per negative before a positive is skipped
MAX_TRIES = 50
DEFAULT_LENGTH_MATCH = 0.1  # prepare's default relative tolerance on len2 (0: lengths ignored)
STRATUM_MAX = 4  # matched shuffle: derangements among 2..4 neighbouring lengths


KmerProfile = Mapping[str, float]
"""k-mer -> frequency among the sequence's k-mers without N (sums to 1; empty: none)."""


def kmer_profile(seq: str, k: int = KMER_K) -> dict[str, float]:
    """Frequencies of the k-mers of ``seq`` (upper-cased) that hold only A/C/G/T."""
    up = seq.upper()
    counts = Counter(up[i : i + k] for i in range(len(up) - k + 1))
    for word in [w for w in counts if w.strip("ACGT")]:
        del counts[word]
    total = sum(counts.values())
    return {w: c / total for w, c in counts.items()} if total else {}


def profile_distance(p: KmerProfile, q: KmerProfile) -> float:
    """Total-variation distance ``0.5 * sum |p_w - q_w|`` (0: same profile, 1: disjoint; 1
    also when either profile is empty).

    Summed exactly (``math.fsum``): a plain sum over the key set depends on the set's order,
    i.e. on the argument order and the process's string hash seed, and flipped matches at the
    tolerance (0.2 vs 0.20000000000000004) and near-ties between runs.
    """
    if not p or not q:
        return 0.0 if not p and not q else 1.0
    return 0.5 * math.fsum(abs(p.get(w, 0.0) - q.get(w, 0.0)) for w in p.keys() | q.keys())


def lengths_close(a: int, b: int, tol: float) -> bool:
    """True when ``|a - b| <= tol * max(a, b)`` (always true for ``tol <= 0``: no matching)."""
    return tol <= 0 or abs(a - b) <= tol * max(a, b)


_Side = tuple[str, str, int | None, int | None]


def _sides(rec: PairRecord) -> tuple[_Side, _Side]:
    """(db, chrom, forward start, forward end) of each side of a pair."""
    return (
        (rec.db1, rec.chrom1, rec.start1, rec.end1),
        (rec.db2, rec.chrom2, rec.start2, rec.end2),
    )


def _overlap(a: _Side, b: _Side) -> bool:
    if not a[1] or a[0] != b[0] or a[1] != b[1]:
        return False
    if a[2] is None or a[3] is None or b[2] is None or b[3] is None:
        return False
    return a[2] < b[3] and b[2] < a[3]


def block_extents(positives: Sequence[PairRecord]) -> dict[str, tuple[_Side, ...]]:
    """Each block's extents: per (db, chrom) of its rows, the union of its windows' coordinates.

    Two windows of overlapping blocks need not overlap themselves (e.g. window 1 of a block
    and window 2 of a copy of it), so conflicts are checked between block extents.
    """
    spans: dict[str, dict[tuple[str, str], list[int | None]]] = {}
    for rec in positives:
        block = spans.setdefault(rec.block_id, {})
        for db, chrom, start, end in _sides(rec):
            span = block.setdefault((db, chrom), [start, end])
            if start is not None:
                span[0] = start if span[0] is None else min(span[0], start)
            if end is not None:
                span[1] = end if span[1] is None else max(span[1], end)
    return {
        block: tuple((db, chrom, a, z) for (db, chrom), (a, z) in sides.items())
        for block, sides in spans.items()
    }


def blocks_conflict(extents: Mapping[str, Sequence[_Side]], x: str, y: str) -> bool:
    """The rule a negative obeys: its two source blocks are not the same block and their
    extents (:func:`block_extents`) do not overlap on the same db/chrom."""
    if x == y:
        return True
    return any(_overlap(u, v) for u in extents[x] for v in extents[y])


class _Builder:
    """Checks candidates and collects accepted negatives."""

    def __init__(
        self,
        positives: Sequence[PairRecord],
        split: str,
        id_prefix: str,
        tol: float = 0.0,
        gc_tol: float = 0.0,
        gc: Mapping[str, float] | None = None,
        kmer_tol: float = 0.0,
        kmer: Mapping[str, KmerProfile] | None = None,
    ) -> None:
        self.pos = positives
        self.tol = tol
        self.gc_tol = gc_tol
        self.gc = gc or {}
        self.kmer_tol = kmer_tol
        self.kmer = kmer or {}
        self.split = split
        self.id_prefix = id_prefix
        self.partners: set[tuple[str, str]] = set()
        for p in positives:
            self.partners.add((p.seq1, p.seq2))
            self.partners.add((p.seq2, p.seq1))
        self.seen: set[tuple[str, str]] = set()
        self.out: list[PairRecord] = []
        self.extent = block_extents(positives)

    def blocks_conflict(self, x: str, y: str) -> bool:
        """The same block, or blocks whose extents overlap on the same db/chrom."""
        return blocks_conflict(self.extent, x, y)

    def ok(self, i: int, j: int) -> bool:
        if i == j:
            return False
        a, b = self.pos[i], self.pos[j]
        if not lengths_close(a.len2, b.len2, self.tol):
            return False
        if self.gc_tol > 0 and abs(self.gc[a.seq2] - self.gc[b.seq2]) > self.gc_tol:
            return False
        if self.kmer_tol > 0 and self.kmer_distance(i, j) > self.kmer_tol:
            return False
        key = (a.seq1, b.seq2)
        if a.seq1 == b.seq2 or key in self.partners or key in self.seen:
            return False
        return not self.blocks_conflict(a.block_id, b.block_id)

    def kmer_distance(self, i: int, j: int) -> float:
        """TV distance of the k-mer profiles of positive ``i``'s and ``j``'s second sequences."""
        return profile_distance(self.kmer[self.pos[i].seq2], self.kmer[self.pos[j].seq2])

    def add(self, i: int, j: int) -> None:
        a, b = self.pos[i], self.pos[j]
        self.seen.add((a.seq1, b.seq2))
        self.out.append(
            PairRecord(
                pair_id=f"{self.id_prefix}{len(self.out)}",
                label=0,
                seq1=a.seq1,
                seq2=b.seq2,
                len1=a.len1,
                len2=b.len2,
                score=math.nan,
                norm_score=math.nan,
                identity=math.nan,
                db1=a.db1,
                chrom1=a.chrom1,
                start1=a.start1,
                end1=a.end1,
                strand1=a.strand1,
                db2=b.db2,
                chrom2=b.chrom2,
                start2=b.start2,
                end2=b.end2,
                strand2=b.strand2,
                block_id=f"{a.block_id}|{b.block_id}",
                split=self.split,
            )
        )


def _by_len2(b: _Builder, rng: random.Random) -> list[int]:
    """Positions shuffled (seeded), then stably sorted by ``len2`` (GC matching alone: by the
    second sequence's GC content): ties in random order."""
    order = list(range(len(b.pos)))
    rng.shuffle(order)
    if b.tol <= 0 and b.gc_tol > 0:
        order.sort(key=lambda i: b.gc[b.pos[i].seq2])
    elif b.tol <= 0 and b.kmer_tol > 0:
        order.sort(key=lambda i: _profile_gc(b.kmer[b.pos[i].seq2]))
    else:
        order.sort(key=lambda i: b.pos[i].len2)
    return order


def _profile_gc(p: KmerProfile) -> float:
    """GC fraction of a k-mer profile's first letters (a 1-D order for k-mer matching)."""
    return sum(f for w, f in p.items() if w[0] in "GC")


def _swap_round(b: _Builder, rng: random.Random, target: int) -> None:
    """The thesis swap: pair each positive with the next in a shuffled cycle."""
    n = len(b.pos)
    order = list(range(n))
    rng.shuffle(order)
    for k in range(n):
        if len(b.out) >= target:
            return
        i = order[k]
        for step in range(1, min(n, MAX_TRIES + 1)):
            j = order[(k + step) % n]
            if b.ok(i, j):
                b.add(i, j)
                break


def _adjacent_round(b: _Builder, rng: random.Random, target: int) -> None:
    """The thesis's literal swap: positive ``i`` with the next valid one in input order."""
    del rng  # input order only: nothing is drawn
    n = len(b.pos)
    for i in range(n):
        if len(b.out) >= target:
            return
        for step in range(1, min(n, MAX_TRIES + 1)):
            j = (i + step) % n
            if b.ok(i, j):
                b.add(i, j)
                break


def _matched_swap_round(b: _Builder, rng: random.Random, target: int) -> None:
    """Length-matched swap: sorted by len2, each swaps with its nearest free valid neighbour."""
    ranked = _by_len2(b, rng)
    n = len(ranked)
    used = [False] * n  # by rank
    for k in range(n):
        if len(b.out) >= target:
            return
        if used[k]:
            continue
        i = ranked[k]
        valid = (
            m
            for m in range(k + 1, min(n, k + 1 + MAX_TRIES))
            if not used[m] and b.ok(i, ranked[m]) and b.ok(ranked[m], i)
        )
        if b.kmer_tol > 0:  # the nearest profile among the valid candidates
            m = min(valid, key=lambda x: b.kmer_distance(i, ranked[x]), default=-1)
        else:  # the first valid one
            m = next(valid, -1)
        if m < 0:
            continue
        j = ranked[m]
        b.add(i, j)
        if len(b.out) < target:
            b.add(j, i)
        used[k] = used[m] = True


def _derangement(n: int, rng: random.Random) -> list[int]:
    perm = list(range(n))
    while True:
        rng.shuffle(perm)
        if all(p != i for i, p in enumerate(perm)):
            return perm


def _strata(ranked: list[int], rng: random.Random) -> list[list[int]]:
    """Consecutive runs of ``ranked`` of drawn sizes 2..``STRATUM_MAX`` (a last single joins)."""
    groups: list[list[int]] = []
    k = 0
    while k < len(ranked):
        size = rng.randint(2, STRATUM_MAX)
        groups.append(ranked[k : k + size])
        k += size
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2].extend(groups.pop())
    return groups


def _nearest_ranks(r: int, n: int) -> list[int]:
    """Ranks r+1, r-1, r+2, r-2, ... (within 0..n-1), at most ``MAX_TRIES`` of them."""
    out: list[int] = []
    for d in range(1, n):
        out.extend(x for x in (r + d, r - d) if 0 <= x < n)
        if len(out) >= MAX_TRIES:
            break
    return out[:MAX_TRIES]


def _repair(b: _Builder, perm: list[int], i: int, candidates: Iterable[int]) -> None:
    """Exchange ``perm[i]`` with the first candidate's target that leaves both valid.

    ``candidates`` is consumed lazily: random draws stop at the first success.
    """
    for k in candidates:
        if b.ok(i, perm[k]) and b.ok(k, perm[i]):
            perm[i], perm[k] = perm[k], perm[i]
            return


def _shuffle_round(b: _Builder, rng: random.Random, target: int) -> None:
    """The thesis shuffle (a derangement) or, matched, derangements within len2 strata."""
    n = len(b.pos)
    if b.tol <= 0 and b.gc_tol <= 0 and b.kmer_tol <= 0:
        perm = _derangement(n, rng)
        for i in range(n):
            if not b.ok(i, perm[i]):
                _repair(b, perm, i, (rng.randrange(n) for _ in range(MAX_TRIES)))
    else:
        ranked = _by_len2(b, rng)
        perm = list(range(n))
        for group in _strata(ranked, rng):
            for src, dst in zip(group, _derangement(len(group), rng), strict=True):
                perm[src] = group[dst]
        for r, i in enumerate(ranked):
            if not b.ok(i, perm[i]):
                _repair(b, perm, i, [ranked[x] for x in _nearest_ranks(r, n)])
    for i in range(n):
        if len(b.out) >= target:
            return
        if b.ok(i, perm[i]):
            b.add(i, perm[i])


def make_negatives(
    positives: Sequence[PairRecord],
    method: str = "swap",
    ratio: float = 1.0,
    seed: int | str = 0,
    split: str | None = None,
    id_prefix: str = "neg",
    length_match: float = 0.0,
    gc_match: float = 0.0,
    gc: Mapping[str, float] | None = None,
    kmer_match: float = 0.0,
    kmer: Mapping[str, KmerProfile] | None = None,
) -> list[PairRecord]:
    """About ``round(ratio * len(positives))`` negatives drawn from ``positives``.

    ``split`` labels the negatives (default: the split of the first positive); pair ids are
    ``<id_prefix><k>``. ``length_match`` is the relative tolerance on the replaced second
    sequence's length (0: none); ``gc_match`` the absolute tolerance on its GC content (0:
    none; ``gc`` must then give the GC fraction of every ``seq2``); ``kmer_match`` the largest
    TV distance of its k-mer profile (0: none; ``kmer`` must give every ``seq2``'s
    :func:`kmer_profile`). Raises ConfigError for an unknown method, a negative ratio or a
    tolerance outside [0, 1), and for ``dishuffle``, which makes new sequences
    (:func:`dishuffle_negatives`).
    """
    if method == "dishuffle":
        raise ConfigError(
            "dishuffle negatives are new sequences: build them with dishuffle_negatives"
        )
    if method not in NEGATIVE_METHODS:
        raise ConfigError(
            f"unknown negatives method {method!r} (choose from {', '.join(NEGATIVE_METHODS)})"
        )
    if not math.isfinite(ratio) or ratio < 0:
        raise ConfigError(f"negative ratio must be a number >= 0, not {ratio}")
    if not math.isfinite(length_match) or not 0 <= length_match < 1:
        raise ConfigError(
            f"length-match tolerance must be >= 0 and < 1 (0: no matching), not {length_match}"
        )
    if not math.isfinite(gc_match) or not 0 <= gc_match < 1:
        raise ConfigError(f"GC-match tolerance must be >= 0 and < 1 (0: none), not {gc_match}")
    if gc_match > 0:
        lacking = [p.seq2 for p in positives if gc is None or p.seq2 not in gc]
        if lacking:
            raise ConfigError(f"GC matching needs the GC content of {lacking[0]} (and others)")
    if not math.isfinite(kmer_match) or not 0 <= kmer_match < 1:
        raise ConfigError(f"k-mer tolerance must be >= 0 and < 1 (0: none), not {kmer_match}")
    if kmer_match > 0:
        lacking = [p.seq2 for p in positives if kmer is None or p.seq2 not in kmer]
        if lacking:
            raise ConfigError(f"k-mer matching needs the profile of {lacking[0]} (and others)")
    n = len(positives)
    target = round(ratio * n)
    if n < 2 or target == 0:
        return []
    label = split if split is not None else positives[0].split
    builder = _Builder(positives, label, id_prefix, length_match, gc_match, gc, kmer_match, kmer)
    rng = random.Random(f"negatives:{method}:{seed}")
    if method == "shuffle":
        round_fn = _shuffle_round
    elif method == "adjacent":
        round_fn = _adjacent_round
    else:
        matched = length_match > 0 or gc_match > 0 or kmer_match > 0
        round_fn = _matched_swap_round if matched else _swap_round
    max_rounds = math.ceil(ratio) + 3
    for _ in range(max_rounds):
        if len(builder.out) >= target:
            break
        round_fn(builder, rng, target)
    return builder.out


# ---------------------------------------------------------------------------------------------
# dinucleotide-shuffled negatives


def dinucleotide_shuffle(seq: str, rng: random.Random) -> str:
    """A uniformly drawn sequence with exactly the dinucleotide counts of ``seq`` (and its
    first and last letter): the Altschul-Erickson shuffle, as a random Euler path.

    Each letter is a vertex and each of the ``len(seq) - 1`` dinucleotides ``xy`` an edge
    ``x -> y``; every sequence with these counts is an Euler path from ``seq[0]`` to
    ``seq[-1]``. One is drawn as Kandel et al. (1996) do: a random spanning arborescence of
    "last exits" towards the last letter (Wilson's loop-erased random walks, each step taking
    one of the vertex's edges uniformly), then every vertex's other exits in random order with
    its last exit at the end; the walk from ``seq[0]`` that always leaves by the next unused
    exit spells the shuffle. Any letters work (N included); ``len(seq) < 3`` returns ``seq``.
    """
    if len(seq) < 3:
        return seq
    last = seq[-1]
    exits: dict[str, list[str]] = {}
    for x, y in pairwise(seq):
        exits.setdefault(x, []).append(y)
    tree_exit: dict[str, int] = {}  # vertex -> index (in exits[v]) of its last exit
    in_tree = {last}
    for start in sorted(exits):  # sorted: the draws do not depend on dict order
        v = start
        while v not in in_tree:  # random walk; re-visits overwrite = loop erasure
            tree_exit[v] = rng.randrange(len(exits[v]))
            v = exits[v][tree_exit[v]]
        v = start
        while v not in in_tree:
            in_tree.add(v)
            v = exits[v][tree_exit[v]]
    order: dict[str, list[str]] = {}
    for v, out in exits.items():
        rest = list(out)
        final = rest.pop(tree_exit[v]) if v in tree_exit else None
        rng.shuffle(rest)
        if final is not None:
            rest.append(final)
        rest.reverse()  # pop() from the end = next exit in order
        order[v] = rest
    letters = [seq[0]]
    v = seq[0]
    for _ in range(len(seq) - 1):
        v = order[v].pop()
        letters.append(v)
    return "".join(letters)


def dinucleotide_counts(seq: str) -> Counter[str]:
    """Counts of the overlapping dinucleotides of ``seq``."""
    return Counter(seq[i : i + 2] for i in range(len(seq) - 1))


@dataclass(frozen=True)
class ShuffledNegatives:
    """What :func:`dishuffle_negatives` made: the records and their new sequences by id."""

    records: list[PairRecord]
    sequences: dict[str, str]
    n_skipped: int  # positives whose second sequence has no different shuffle (e.g. ACACAC)


def dishuffle_negatives(
    positives: Sequence[PairRecord],
    sequences: Mapping[str, str],
    ratio: float = 1.0,
    seed: int | str = 0,
    split: str | None = None,
    id_prefix: str = "neg",
) -> ShuffledNegatives:
    """Dinucleotide-shuffled negatives: ``(seq1 of i, shuffle of seq2 of i)``.

    ``sequences`` maps every positive's ``seq2`` id to its (normalised) text. ``ratio`` of 1
    gives one negative per positive, in order; a larger ratio adds rounds of further
    shuffles (a smaller one stops early), ``round(ratio * n)`` in all. A shuffle is refused
    (and redrawn, up to ``DISHUFFLE_TRIES`` times, then the positive is skipped for that
    round) when it equals the sequence itself, any positive's sequence, or an earlier
    shuffle. The negative keeps positive ``i``'s coordinates on both sides (its letters come
    from there), NaN score/identity, block id ``<block>|dishuffle:<block>``.
    """
    if not math.isfinite(ratio) or ratio < 0:
        raise ConfigError(f"negative ratio must be a number >= 0, not {ratio}")
    lacking = [p.seq2 for p in positives if p.seq2 not in sequences]
    if lacking:
        raise ConfigError(f"dishuffle needs the sequence of {lacking[0]} (and others)")
    target = round(ratio * len(positives))
    label = split if split is not None else (positives[0].split if positives else "train")
    rng = random.Random(f"negatives:dishuffle:{seed}")
    taken = {p.seq1 for p in positives} | {p.seq2 for p in positives}
    records: list[PairRecord] = []
    made: dict[str, str] = {}
    skipped = 0
    for _ in range(math.ceil(ratio) if positives else 0):
        for a in positives:
            if len(records) >= target:
                break
            text = sequences[a.seq2]
            for _ in range(DISHUFFLE_TRIES):
                shuffled = dinucleotide_shuffle(text, rng)
                sid = sequence_id(shuffled)
                if shuffled != text and sid not in taken:
                    break
            else:
                skipped += 1
                continue
            taken.add(sid)
            made[sid] = shuffled
            records.append(  # the positive with its second sequence shuffled
                replace(
                    a,
                    pair_id=f"{id_prefix}{len(records)}",
                    label=0,
                    seq2=sid,
                    score=math.nan,
                    norm_score=math.nan,
                    identity=math.nan,
                    block_id=f"{a.block_id}|dishuffle:{a.block_id}",
                    split=label,
                )
            )
    return ShuffledNegatives(records=records, sequences=made, n_skipped=skipped)
