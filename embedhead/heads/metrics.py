"""Metrics of a head's predictions (plain floats, JSON-ready; undefined values are NaN).

* :func:`classification_metrics` (labels (N,) in {0,1}, probabilities (N,)): accuracy, precision,
  recall, F1, ROC-AUC, PR-AUC (average precision), confusion matrix ``[[tn, fp], [fn, tp]]``.
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

CLASSIFICATION_KEYS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
REGRESSION_KEYS = ("mse", "rmse", "mae", "r2", "pearson", "spearman")


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """labels (N,), probabilities (N,) -> metrics; AUCs are NaN when one class is absent."""
    y = np.asarray(labels).astype(int)
    p = np.asarray(probabilities, dtype=np.float64)
    pred = (p >= threshold).astype(int)
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


def compute_metrics(task: str, targets: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
    """Dispatch on task: ``outputs`` are probabilities or scores in original units."""
    if task == "classification":
        return classification_metrics(targets, outputs)
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
