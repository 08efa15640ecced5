"""Re-draw a dataset's split and negatives with another seed (``train --repeats N --resplit``).

In: a loaded :class:`~embedhead.dataset.Dataset` and a seed. Out: a new in-memory ``Dataset``
(same folder, same sequences, ``info["resplit_seed"]`` set) whose positives are re-assigned to
train/val/test and whose negatives are re-drawn within each split, with the parameters
``prepare`` recorded in ``dataset.json`` (split mode and fractions, negatives method, ratio,
length, GC and k-mer matching). Negatives only recombine the dataset's own sequences, so a
store that holds the dataset holds every re-drawn pair; ``dishuffle`` negatives (shuffles that
exist only as the dataset wrote them) are kept, each following its positive into the new split.
The thesis's 10 runs varied split and negatives as well as the head's initialisation; repeats
over the head seed alone understate that spread.
"""

from __future__ import annotations

import dataclasses

from embedhead.dataset import SPLITS, Dataset, PairRecord
from embedhead.errors import InputError
from embedhead.prepare.negatives import kmer_profile, make_negatives
from embedhead.prepare.splits import DEFAULT_FRACTIONS, assign_splits


def _gc(seq: str) -> float:
    up = seq.upper()
    acgt = sum(up.count(b) for b in "ACGT")
    return (up.count("G") + up.count("C")) / acgt if acgt else 0.5


def resplit(dataset: Dataset, seed: int) -> Dataset:
    """``dataset`` with split and negatives re-drawn from ``seed`` (see module docstring)."""
    params = dict(dataset.info.get("parameters") or {})
    positives = [p for p in dataset.pairs if p.label == 1]
    if len(positives) < 2:
        raise InputError("--resplit needs a dataset with positive pairs", dataset.path)
    fractions = tuple(params.get("split_fractions") or DEFAULT_FRACTIONS)
    splits = assign_splits(
        positives,
        str(params.get("split_by", "block")),
        (float(fractions[0]), float(fractions[1]), float(fractions[2])),
        seed,
    )
    positives = [dataclasses.replace(p, split=s) for p, s in zip(positives, splits, strict=True)]
    gc_match = float(params.get("gc_match") or 0.0)
    gc = None
    if gc_match > 0:
        wanted = {p.seq2 for p in positives}
        gc = {sid: _gc(seq) for sid, seq in dataset.sequences() if sid in wanted}
    kmer_match = float(params.get("kmer_match") or 0.0)
    kmer = None
    if kmer_match > 0:
        wanted = {p.seq2 for p in positives}
        kmer = {sid: kmer_profile(seq) for sid, seq in dataset.sequences() if sid in wanted}
    negatives: list[PairRecord] = []
    if params.get("negatives") == "dishuffle":
        split_of = {(p.block_id, p.seq1): p.split for p in positives}
        negatives = [
            dataclasses.replace(n, split=split_of[(n.block_id.split("|", 1)[0], n.seq1)])
            for n in dataset.pairs
            if n.label == 0
        ]
    else:
        for split in SPLITS:
            members = [p for p in positives if p.split == split]
            negatives += make_negatives(
                members,
                str(params.get("negatives", "swap")),
                float(params.get("negative_ratio", 1.0)),
                seed=f"{seed}:{split}",
                split=split,
                id_prefix=f"neg/{split}/",
                length_match=float(params.get("length_match") or 0.0),
                gc_match=gc_match,
                gc=gc,
                kmer_match=kmer_match,
                kmer=kmer,
            )
    info = {**dataset.info, "resplit_seed": seed}
    return Dataset(path=dataset.path, info=info, pairs=tuple(positives + negatives))
