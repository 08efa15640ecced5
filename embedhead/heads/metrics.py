"""Metrics of a head's predictions (plain floats, JSON-ready; undefined values are NaN).

* :func:`classification_metrics` (labels (N,) in {0,1}, probabilities (N,), a threshold):
  accuracy, precision, recall, F1 and the confusion matrix ``[[tn, fp], [fn, tp]]`` at that
  threshold, ``accuracy_at_0.5``, ROC-AUC, PR-AUC (average precision) and the Brier score (mean
  squared error of the probabilities: calibration and sharpness together; 0.25 for a constant
  0.5).
* :func:`choose_threshold` (labels (N,), probabilities (N,), rule): the decision threshold that
  maximises accuracy (``"accuracy"``) or Youden's J = TPR - FPR (``"youden"``) on the given
  pairs -- training calls it on the *validation* split only; ``"fixed"`` is 0.5.
* :func:`regression_metrics` (targets (N,), predictions (N,), original units): MSE, RMSE, MAE, R2,
  Pearson and Spearman correlation.
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
    # one confusion matrix, the threshold metrics from it (same definitions as sklearn's
    # accuracy/precision/recall/f1 with zero_division=0; a few ms instead of ~20 per epoch)
    (tn, fp), (fn, tp) = skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    out: dict[str, Any] = {
        "n": int(y.size),
        "accuracy": (tp + tn) / y.size if y.size else math.nan,
        "precision": precision,
        "recall": recall,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
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
