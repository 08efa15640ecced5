"""Baselines that need no embeddings, fitted on the same splits as the heads.

So users see what the embeddings add, small models read a dataset folder directly:

- ``kmer``: per k in ``ks`` (default 2..6), the cosine similarity and L1 distance of the two
  sequences' k-mer frequency profiles -> features (N, 2 * len(ks));
- ``gc``: GC content of each sequence and their absolute difference -> (N, 3);
- ``length``: log lengths, their absolute difference and the min/max length ratio -> (N, 4);
- ``kmer_gc_length``: the three feature sets side by side (one logistic regression);
- ``aligner``: a local (Smith-Waterman) alignment of the two sequences under the dataset's
  scoring scheme (``dataset.json["scoring_scheme"]``, e.g. HOXD70 400/30; Biopython,
  :mod:`.aligner`), score per ``max(len1, len2)`` -> (N, 1); its time per pair is reported in
  ``extra["seconds_per_pair"]``.

Every classifier's decision threshold is chosen on the validation split
(:func:`~embedhead.heads.metrics.choose_threshold`), as the heads' is.

Classification: standardised features -> logistic regression (scikit-learn), the inverse
regularisation ``C`` chosen on the validation split, test metrics reported.
Regression (positives only, target ``norm_score``): ridge regression, ``alpha`` chosen on
validation. Output: a list of :class:`BaselineResult`, written as ``baselines.json`` and a
Markdown table by :func:`write_baselines`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from embedhead.alignments.scoring import HOXD70, ScoringScheme
from embedhead.dataset import PairRecord, iter_fasta, load_dataset
from embedhead.errors import ConfigError, InputError
from embedhead.experiments.aligner import local_scores, scheme_from_info, score_per_length
from embedhead.experiments.config import MODELS as MODELS
from embedhead.experiments.config import TASKS as TASKS
from embedhead.experiments.config import BaselineConfig
from embedhead.experiments.kmers import gc_content, kmer_profiles, profile_similarity
from embedhead.fileio import atomic_write_text, make_out_dir, write_json
from embedhead.heads.metrics import (
    CLASSIFICATION_KEYS,
    choose_threshold,
    classification_metrics,
    regression_metrics,
)
from embedhead.results import RESULT_VERSION
from embedhead.tables import TIME_COLUMNS, fmt_metric, markdown_table, time_cells

BASELINES_FILE = "baselines.json"


@dataclass(frozen=True)
class BaselineResult:
    """One fitted baseline: chosen hyper-parameter, validation and test metrics."""

    model: str
    task: str
    features: tuple[str, ...]
    chosen: dict[str, float]
    val: dict[str, Any]
    test: dict[str, Any]
    n_train: int
    n_val: int
    n_test: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        out["features"] = list(self.features)
        return out


def _split_pairs(
    pairs: Sequence[PairRecord], task: str
) -> tuple[dict[str, list[PairRecord]], dict[str, int]]:
    """Pairs per split usable for ``task``, and per split the positives dropped for a NaN/inf
    ``norm_score`` (regression; negatives are unscored by design and not counted)."""
    out: dict[str, list[PairRecord]] = {"train": [], "val": [], "test": []}
    dropped = dict.fromkeys(out, 0)
    for p in pairs:
        if task == "regression" and (p.label != 1 or not math.isfinite(p.norm_score)):
            dropped[p.split] += int(p.label == 1)
            continue
        out[p.split].append(p)
    return out, dropped


def _load_sequences(dataset_path: Path, wanted: set[str]) -> dict[str, str]:

    seqs: dict[str, str] = {}
    for sid, seq in iter_fasta(dataset_path / "sequences.fa.gz"):
        if sid in wanted:
            seqs[sid] = seq
    missing = wanted - seqs.keys()
    if missing:
        raise InputError(
            f"{len(missing)} sequence id(s) used by pairs are missing, e.g. {sorted(missing)[0]}",
            dataset_path / "sequences.fa.gz",
        )
    return seqs


def build_features(
    pairs: Sequence[PairRecord],
    seqs: dict[str, str],
    model: str,
    ks: Sequence[int],
    scheme: ScoringScheme = HOXD70,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Feature matrix (N, F) float64 of ``model`` for ``pairs``, and the F feature names."""
    if model == "kmer_gc_length":
        parts = [build_features(pairs, seqs, m, ks) for m in ("kmer", "gc", "length")]
        return np.column_stack([x for x, _ in parts]), tuple(n for _, ns in parts for n in ns)
    if model == "aligner":
        scores, _ = local_scores([(seqs[p.seq1], seqs[p.seq2]) for p in pairs], scheme)
        len1 = np.array([len(seqs[p.seq1]) for p in pairs])
        len2 = np.array([len(seqs[p.seq2]) for p in pairs])
        return score_per_length(scores, len1, len2)[:, None], ("local_score_per_length",)
    ids = sorted({p.seq1 for p in pairs} | {p.seq2 for p in pairs})
    row_of = {sid: i for i, sid in enumerate(ids)}
    r1 = np.fromiter((row_of[p.seq1] for p in pairs), dtype=np.int64, count=len(pairs))
    r2 = np.fromiter((row_of[p.seq2] for p in pairs), dtype=np.int64, count=len(pairs))
    if model == "kmer":
        cols: list[np.ndarray] = []
        names: list[str] = []
        for k in ks:
            profiles = kmer_profiles([seqs[sid] for sid in ids], k)
            cosine, l1 = profile_similarity(profiles, r1, r2)
            cols += [cosine, l1]
            names += [f"cos_k{k}", f"l1_k{k}"]
        return np.column_stack(cols), tuple(names)
    if model == "gc":
        gc = np.array([gc_content(seqs[sid]) for sid in ids])
        g1, g2 = gc[r1], gc[r2]
        return np.column_stack([g1, g2, np.abs(g1 - g2)]), ("gc1", "gc2", "gc_absdiff")
    if model == "length":
        n = np.array([len(seqs[sid]) for sid in ids], dtype=np.float64)
        n1, n2 = n[r1], n[r2]
        l1, l2 = np.log1p(n1), np.log1p(n2)
        ratio = np.minimum(n1, n2) / np.maximum(np.maximum(n1, n2), 1.0)
        return (
            np.column_stack([l1, l2, np.abs(l1 - l2), ratio]),
            ("log_len1", "log_len2", "log_len_absdiff", "len_ratio"),
        )
    raise ConfigError(f"unknown baseline model {model!r}")


def roc_points(y_true: np.ndarray, prob: np.ndarray, max_points: int = 200) -> dict[str, Any]:
    """ROC curve of (N,) labels and probabilities, thinned to <= ``max_points`` points."""

    if len(np.unique(y_true)) < 2:
        return {}
    fpr, tpr, _ = roc_curve(y_true, prob)
    keep = np.unique(np.linspace(0, fpr.shape[0] - 1, min(max_points, fpr.shape[0])).astype(int))
    return {
        "fpr": fpr[keep].tolist(),
        "tpr": tpr[keep].tolist(),
        "auc": float(roc_auc_score(y_true, prob)),
    }


def _fit_classifier(
    x: dict[str, np.ndarray], y: dict[str, np.ndarray], config: BaselineConfig
) -> tuple[float, dict[str, Any], dict[str, Any], dict[str, Any]]:

    best: tuple[float, float, Any] | None = None
    for c in config.c_grid:
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=config.seed)
        )
        model.fit(x["train"], y["train"])
        prob = model.predict_proba(x["val"])[:, 1]
        val = classification_metrics(y["val"], prob)
        score = val.get("roc_auc", math.nan)
        score = val["accuracy"] if not math.isfinite(score) else score
        if best is None or score > best[0]:
            best = (score, c, model)
    assert best is not None
    _, c, model = best
    val_prob = model.predict_proba(x["val"])[:, 1]
    cut = choose_threshold(y["val"], val_prob)  # as the heads: chosen on val, used on test
    val = classification_metrics(y["val"], val_prob, cut)
    prob = model.predict_proba(x["test"])[:, 1]
    return c, val, classification_metrics(y["test"], prob, cut), roc_points(y["test"], prob)


def _fit_regressor(
    x: dict[str, np.ndarray], y: dict[str, np.ndarray], config: BaselineConfig
) -> tuple[float, dict[str, Any], dict[str, Any]]:

    best: tuple[float, float, Any] | None = None
    for alpha in config.alpha_grid:
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
        model.fit(x["train"], y["train"])
        val = regression_metrics(y["val"], model.predict(x["val"]))
        score = -val["mse"]
        if best is None or score > best[0]:
            best = (score, alpha, model)
    assert best is not None
    _, alpha, model = best
    val = regression_metrics(y["val"], model.predict(x["val"]))
    test = regression_metrics(y["test"], model.predict(x["test"]))
    return alpha, val, test


def run_baselines(
    dataset_dir: str | Path, config: BaselineConfig | None = None
) -> list[BaselineResult]:
    """Fit every baseline of ``config`` on train, choose on val, report test metrics."""
    config = config or BaselineConfig()
    dataset = load_dataset(dataset_dir)
    splits, dropped = _split_pairs(dataset.pairs, config.task)
    for name, rows in splits.items():
        if not rows:
            what = "positive pairs with a score" if config.task == "regression" else "pairs"
            raise InputError(f"the {name} split has no {what}", dataset.path)
    if config.task == "classification":
        labels = {p.label for p in splits["train"]}
        if labels != {0, 1}:
            raise InputError("the train split needs both labels for a classifier", dataset.path)
    wanted = {sid for rows in splits.values() for p in rows for sid in (p.seq1, p.seq2)}
    seqs = _load_sequences(dataset.path, wanted)
    scheme = scheme_from_info(dataset.info.get("scoring_scheme"))
    results: list[BaselineResult] = []
    for model in config.models:
        x: dict[str, np.ndarray] = {}
        y: dict[str, np.ndarray] = {}
        names: tuple[str, ...] = ()
        extra: dict[str, Any] = {"ks": list(config.ks)} if "kmer" in model else {}
        began = time.perf_counter()
        for split, rows in splits.items():
            x[split], names = build_features(rows, seqs, model, config.ks, scheme)
        n_all = sum(len(rows) for rows in splits.values())
        extra["seconds_per_pair"] = (time.perf_counter() - began) / max(n_all, 1)
        if model == "aligner":
            extra["scoring_scheme"] = scheme.name
        if config.task == "regression":
            extra["n_dropped_non_finite"] = dict(dropped)
        for split, rows in splits.items():
            if config.task == "classification":
                y[split] = np.array([p.label for p in rows], dtype=np.int64)
            else:
                y[split] = np.array([p.norm_score for p in rows], dtype=np.float64)
        if config.task == "classification":
            param, val, test, roc = _fit_classifier(x, y, config)
            chosen = {"C": param}
            extra["roc"] = roc
        else:
            param, val, test = _fit_regressor(x, y, config)
            chosen = {"alpha": param}
        results.append(
            BaselineResult(
                model=model,
                task=config.task,
                features=names,
                chosen=chosen,
                val=val,
                test=test,
                n_train=len(splits["train"]),
                n_val=len(splits["val"]),
                n_test=len(splits["test"]),
                extra=extra,
            )
        )
    return results


def _time_row(r: BaselineResult) -> dict[str, Any]:
    return {
        "seconds_per_pair": r.extra.get("seconds_per_pair"),
        "seconds_per_pair_with_embedding": r.extra.get("seconds_per_pair_with_embedding"),
        "no_embedding": r.model in MODELS,
    }


def metric_keys(task: str) -> list[str]:
    """The test-metric columns of a baselines table."""
    if task == "classification":
        return [*CLASSIFICATION_KEYS]
    return ["mse", "rmse", "mae", "r2", "pearson", "spearman"]


def baselines_markdown(results: Sequence[BaselineResult]) -> str:
    """A Markdown table of test metrics, one row per baseline (undefined metrics 'n/a'), with
    milliseconds per pair without and with computing embeddings (equal for the baselines that
    need none; the ``head``/``random_backbone`` rows of ``--store`` include the backbone)."""
    if not results:
        return "_no baselines_\n"
    keys = metric_keys(results[0].task)
    rows = [
        [r.model, ", ".join(f"{k}={v:g}" for k, v in r.chosen.items())]
        + [fmt_metric(r.test.get(k)) for k in keys]
        + time_cells(_time_row(r))
        for r in results
    ]
    return markdown_table(["baseline", "chosen", *keys, *TIME_COLUMNS], rows)


def write_baselines(
    results: Sequence[BaselineResult], out_dir: str | Path, *, dataset: str | Path | None = None
) -> Path:
    """Write ``baselines.json`` and ``baselines.md`` into ``out_dir``; returns the JSON path."""
    out = Path(out_dir)
    payload = {
        "kind": "baselines",
        "version": RESULT_VERSION,
        "dataset": None if dataset is None else str(dataset),
        "results": [r.to_dict() for r in results],
    }
    atomic_write_text(
        out / "baselines.md", "# Baselines (test split)\n\n" + baselines_markdown(results)
    )
    return write_json(out / BASELINES_FILE, payload)


def run_and_write(
    dataset_dir: str | Path, out_dir: str | Path, config: BaselineConfig | None = None
) -> tuple[list[BaselineResult], Path]:
    """``embedhead baselines``: fit every baseline and write ``baselines.json``/``.md``."""
    make_out_dir(out_dir)  # a file in the way is an error before any fitting
    results = run_baselines(dataset_dir, config)
    return results, write_baselines(results, out_dir, dataset=dataset_dir)


LEAK_MODELS = ("length", "gc", "kmer")


def leak_aucs(dataset_dir: str | Path, seed: int = 0) -> dict[str, float]:
    """Test ROC-AUC of the length, GC and k-mer (k = 3) baselines of a classification dataset.

    What ``prepare`` prints after writing a dataset, so a dataset whose labels a trivial
    feature separates is visible at once (length near 1.0: the negatives' lengths give them
    away; k-mer near 1.0 is expected, related sequences share k-mers).
    """
    config = BaselineConfig(models=LEAK_MODELS, ks=(3,), seed=seed)
    return {r.model: float(r.test["roc_auc"]) for r in run_baselines(dataset_dir, config)}
