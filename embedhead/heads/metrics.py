"""Metrics of a head's predictions (plain floats, JSON-ready; undefined values are NaN).

* :func:`classification_metrics` (labels (N,) in {0,1}, probabilities (N,), a threshold):
  accuracy, precision, recall, F1 and the confusion matrix ``[[tn, fp], [fn, tp]]`` at that
  threshold (precision is undefined -- NaN, ``null`` in JSON, ``n/a`` in tables -- when nothing
  is predicted positive, recall when the split has no positives, F1 when either is; never 0),
  ``accuracy_at_0.5``, ROC-AUC, PR-AUC (average precision) and the Brier score (mean squared
  error of the probabilities: calibration and sharpness together; 0.25 for a constant 0.5).
* :func:`choose_threshold` (labels (N,), probabilities (N,), rule): the decision threshold that
  maximises accuracy (``"accuracy"``) or Youden's J = TPR - FPR (``"youden"``) on the given
  pairs -- training calls it on the *validation* split only; ``"fixed"`` is 0.5.
* :func:`regression_metrics` (targets (N,), predictions (N,), original units): MSE, RMSE, MAE, R2,
  Pearson and Spearman correlation.
* :func:`reliability_curve` (labels (N,), probabilities (N,)): a 10-bin calibration curve;
  :func:`metrics_by_bins` (targets, outputs, identity (N,), lengths (N,)): metrics per identity
  bin and per length bin.
* :func:`quick_metrics`: the cheap per-epoch subset (accuracy + ROC-AUC, or MSE + R2 + Pearson)
  in plain numpy, equal to scikit-learn's values, for training histories (scikit-learn's input
  validation costs tens of milliseconds per call, too much for every epoch of every trial).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from embedhead.heads.config import THRESHOLD_RULES

CLASSIFICATION_KEYS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "accuracy_at_0.5",
    "brier",
)
DEFAULT_THRESHOLD = 0.5


def choose_threshold(
    labels: np.ndarray, probabilities: np.ndarray, rule: str = "accuracy"
) -> float:
    """labels (N,) in {0,1}, probabilities (N,) -> the threshold ``t`` (predict 1 when p >= t).

    Candidates: midpoints between consecutive distinct probabilities, and just below the
    smallest / above the largest (all positive / all negative). Among candidates with the best
    value of the rule the one nearest 0.5 wins (deterministic). ``"fixed"``, an empty input, or
    (for ``"youden"``) a single class give 0.5.
    """
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold rule must be one of {THRESHOLD_RULES}, not {rule!r}")
    y = np.asarray(labels).astype(int)
    p = np.asarray(probabilities, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if rule == "fixed" or y.size == 0 or (rule == "youden" and (n_pos == 0 or n_neg == 0)):
        return DEFAULT_THRESHOLD
    values = np.unique(p)  # ascending
    candidates = np.concatenate(
        [[np.nextafter(values[0], -np.inf)], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-9]]
    )
    # predicted positive: p >= t; counts from the sorted probabilities of each class
    pos_sorted = np.sort(p[y == 1])
    neg_sorted = np.sort(p[y == 0])
    tp = n_pos - np.searchsorted(pos_sorted, candidates, side="left")
    fp = n_neg - np.searchsorted(neg_sorted, candidates, side="left")
    value = (tp + (n_neg - fp)) / y.size if rule == "accuracy" else tp / n_pos - fp / n_neg
    best = np.flatnonzero(value >= value.max() - 1e-12)
    pick = best[np.argmin(np.abs(candidates[best] - DEFAULT_THRESHOLD))]
    return float(candidates[pick])


REGRESSION_KEYS = ("mse", "rmse", "mae", "r2", "pearson", "spearman")


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """labels (N,), probabilities (N,) -> metrics at ``threshold``; AUCs NaN with one class."""
    y = np.asarray(labels).astype(int)
    p = np.asarray(probabilities, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    at_half = float(np.mean((p >= DEFAULT_THRESHOLD) == (y == 1))) if y.size else math.nan
    both = len(np.unique(y)) == 2
    # one confusion matrix, the threshold metrics from it (sklearn's definitions with
    # zero_division=nan; a few ms instead of ~20 per epoch). F1 is undefined whenever precision
    # or recall is (sklearn would say 0 when only precision is undefined).
    (tn, fp), (fn, tp) = skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    defined = tp + fp > 0 and tp + fn > 0
    out: dict[str, Any] = {
        "n": int(y.size),
        "accuracy": (tp + tn) / y.size if y.size else math.nan,
        "precision": precision,
        "recall": recall,
        "f1": 2 * tp / (2 * tp + fp + fn) if defined else math.nan,
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(skm.average_precision_score(y, p)) if both else math.nan,
        "brier": float(np.mean((p - y) ** 2)) if y.size else math.nan,
        "threshold": float(threshold),
        "accuracy_at_0.5": at_half,
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }
    return out


def _correlation(a: np.ndarray, b: np.ndarray, spearman: bool) -> float:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    if spearman:
        a, b = stats.rankdata(a), stats.rankdata(b)
    return float(np.corrcoef(a, b)[0, 1])


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """targets (N,), predictions (N,) -> metrics; R2 and correlations NaN when undefined."""
    y = np.asarray(targets, dtype=np.float64)
    p = np.asarray(predictions, dtype=np.float64)
    mse = float(np.mean((y - p) ** 2)) if y.size else math.nan
    return {
        "n": int(y.size),
        "mse": mse,
        "rmse": math.sqrt(mse) if y.size else math.nan,
        "mae": float(np.mean(np.abs(y - p))) if y.size else math.nan,
        "r2": float(skm.r2_score(y, p)) if y.size >= 2 and np.ptp(y) > 0 else math.nan,
        "pearson": _correlation(y, p, spearman=False),
        "spearman": _correlation(y, p, spearman=True),
    }


def compute_metrics(
    task: str, targets: np.ndarray, outputs: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """Dispatch on task: ``outputs`` are probabilities (cut at ``threshold``) or scores."""
    if task == "classification":
        return classification_metrics(targets, outputs, threshold)
    return regression_metrics(targets, outputs)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic with tied scores averaged (= sklearn's value)."""
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = stats.rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def quick_metrics(task: str, targets: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
    """Per-epoch metrics: accuracy and ROC-AUC, or MSE, R2 and Pearson (see module docstring)."""
    y = np.asarray(targets, dtype=np.float64)
    p = np.asarray(outputs, dtype=np.float64)
    if task == "classification":
        accuracy = float(np.mean((p >= 0.5) == (y >= 0.5))) if y.size else math.nan
        return {"accuracy": accuracy, "roc_auc": roc_auc(y >= 0.5, p)}
    mse = float(np.mean((y - p) ** 2)) if y.size else math.nan
    var = float(np.var(y)) if y.size else 0.0
    return {
        "mse": mse,
        "r2": 1.0 - mse / var if y.size >= 2 and np.ptp(y) > 0 else math.nan,
        "pearson": _correlation(y, p, spearman=False),
    }


RELIABILITY_BINS = 10
IDENTITY_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Fixed identity bins (fraction of aligned columns that match), comparable across datasets."""
LENGTH_BINS = 4


def reliability_curve(
    labels: np.ndarray, probabilities: np.ndarray, n_bins: int = RELIABILITY_BINS
) -> dict[str, Any]:
    """Calibration curve: labels (N,), probabilities (N,) -> ``n_bins`` equal-width bins of [0, 1]
    (right-closed, the first including 0: the bins of sklearn's ``calibration_curve``).

    Returns ``{"bins": [{"lo", "hi", "n", "mean_predicted", "fraction_positive"}, ...],
    "brier", "n"}``; empty bins keep ``n = 0`` and undefined (NaN) means. A calibrated model's
    points lie on the diagonal (``fraction_positive == mean_predicted``).
    """
    y = np.asarray(labels).astype(np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    # bin b holds edges[b] < p <= edges[b+1] (bin 0 includes 0), as sklearn's calibration_curve
    which = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], p)
    bins = []
    for b in range(n_bins):
        inside = which == b
        n = int(inside.sum())
        bins.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "n": n,
                "mean_predicted": float(p[inside].mean()) if n else math.nan,
                "fraction_positive": float(y[inside].mean()) if n else math.nan,
            }
        )
    brier = float(np.mean((p - y) ** 2)) if y.size else math.nan
    return {"bins": bins, "brier": brier, "n": int(y.size)}


def length_edges(lengths: np.ndarray, n_bins: int = LENGTH_BINS) -> tuple[float, ...]:
    """Quantile edges (integers, strictly increasing) of pair lengths (N,) into <= n_bins bins."""
    x = np.asarray(lengths, dtype=np.float64)
    if x.size == 0:
        return ()
    qs = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    edges = sorted({float(np.floor(qs[0])), *map(float, np.round(qs[1:-1])), float(qs[-1]) + 1})
    return tuple(edges)


def _bin_index(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bin of each value: ``edges[b] <= v < edges[b+1]`` (the last bin includes its top edge);
    -1 for NaN or out-of-range values."""
    v = np.asarray(values, dtype=np.float64)
    out = np.searchsorted(np.asarray(edges), v, side="right") - 1
    out[v == edges[-1]] = len(edges) - 2
    out[~np.isfinite(v) | (out < 0) | (out > len(edges) - 2)] = -1
    return out


def binned_metrics(
    task: str,
    targets: np.ndarray,
    outputs: np.ndarray,
    values: np.ndarray,
    edges: tuple[float, ...],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    positives_only: bool = False,
) -> list[dict[str, Any]]:
    """Metrics per bin of ``values`` (N,) (identity, length): one dict per non-empty bin.

    Each row: ``lo``, ``hi``, ``n`` and the task's metrics of the pairs in the bin. With
    ``positives_only`` (classification by identity: negatives have no identity) a bin holds
    its positives and is scored against *all* negatives, so ``recall`` and ``roc_auc`` say how
    well homologs of that identity are told from unrelated pairs; ``n`` counts the positives,
    ``mean_probability`` is their mean predicted probability, and only these are reported.
    """
    y = np.asarray(targets)
    p = np.asarray(outputs, dtype=np.float64)
    which = _bin_index(values, edges) if len(edges) >= 2 else np.full(y.shape, -1)
    negatives = (y == 0) if positives_only else np.zeros(y.shape, dtype=bool)
    rows: list[dict[str, Any]] = []
    for b in range(len(edges) - 1):
        inside = which == b
        if positives_only:
            inside &= y == 1
        n = int(inside.sum())
        if not n:
            continue
        pick = inside | negatives
        metrics = compute_metrics(task, y[pick], p[pick], threshold)
        metrics.pop("confusion_matrix", None)
        if positives_only:  # accuracy, precision, F1, Brier would mostly score the negatives
            metrics = {
                "recall": metrics["recall"],
                "roc_auc": metrics["roc_auc"],
                "mean_probability": float(p[inside].mean()),
            }
        rows.append({"lo": edges[b], "hi": edges[b + 1], **metrics, "n": n})
    return rows


def metrics_by_bins(
    task: str,
    targets: np.ndarray,
    outputs: np.ndarray,
    identity: np.ndarray,
    lengths: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """``{"by_identity": rows, "by_length": rows}`` of :func:`binned_metrics` for one split.

    ``identity`` (N,) is NaN for pairs without one (negatives); ``lengths`` (N,) is each pair's
    ``max(len1, len2)``. Identity bins are :data:`IDENTITY_EDGES`, length bins the split's
    quartiles (:func:`length_edges`).
    """
    by_identity = binned_metrics(
        task,
        targets,
        outputs,
        identity,
        IDENTITY_EDGES,
        threshold,
        positives_only=task == "classification",
    )
    by_length = binned_metrics(task, targets, outputs, lengths, length_edges(lengths), threshold)
    return {"by_identity": by_identity, "by_length": by_length}
