"""Evaluate a trained head (a run folder) on any split of any dataset.

``evaluate_run(run_dir, dataset_dir, store_path, split="test") -> metrics`` rebuilds the head from
the run folder, checks that the store was built by the same backbone as the one the head was
trained on (else :class:`~embedhead.errors.IncompatibleError`), loads the split's embeddings and
returns the metrics of :mod:`embedhead.heads.metrics` plus ``loss``. The dataset may differ from
the training one (cross-species: trained on chicken pairs, evaluated on zebrafish pairs); for a
head's own dataset and split it reproduces the metrics stored in ``run.json``. Classification
metrics are taken at the run's decision threshold (chosen on the training dataset's validation
split, ``run.json["threshold"]``), with ``accuracy_at_0.5`` beside them.

With ``breakdown_bins=True`` (the default; what ``embedhead evaluate`` prints with ``--json``) the
metrics also hold ``by_identity`` and ``by_length`` (lists of per-bin metric dicts,
:func:`~embedhead.heads.metrics.metrics_by_bins`) and, for classification, ``reliability``
(10-bin calibration curve, :func:`~embedhead.heads.metrics.reliability_curve`); a regression
split's ``n_dropped_non_finite`` counts the positives dropped for a NaN/inf target.
``evaluate_repeats`` does the same for every run of a ``--repeats`` folder (mean and std).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from embedhead.dataset import Dataset, load_dataset
from embedhead.errors import IncompatibleError
from embedhead.heads.config import EVAL_SPLIT
from embedhead.heads.data import (
    PairSource,
    StoreReader,
    check_identity,
    load_head_data,
    non_finite_targets,
    resolve_device,
)
from embedhead.heads.metrics import (
    DEFAULT_THRESHOLD,
    compute_metrics,
    metrics_by_bins,
    reliability_curve,
)
from embedhead.heads.run import LoadedRun, load_run, repeat_run_dirs
from embedhead.heads.train import aggregate_metrics, predict_source
from embedhead.store.access import use_store


def check_store_matches(run: LoadedRun, store: StoreReader, where: str | Path) -> None:
    """IncompatibleError when ``store`` was not built by the run's backbone (or its width)."""
    check_identity(run.identity, dict(store.identity), where)
    if int(store.d_model) != run.head_config.d_model:
        raise IncompatibleError(
            f"{where}: store d_model {store.d_model} != head d_model {run.head_config.d_model}"
        )


def pair_arrays(dataset: Dataset, source: PairSource) -> tuple[np.ndarray, np.ndarray]:
    """Identity (N,) (NaN for negatives) and ``max(len1, len2)`` (N,) of ``source``'s pairs."""
    records = {r.pair_id: r for r in dataset.pairs}
    picked = [records[pid] for pid in source.pairs.pair_ids]
    identity = np.array([r.identity for r in picked], dtype=np.float64)
    lengths = np.array([max(r.len1, r.len2) for r in picked], dtype=np.float64)
    return identity, lengths


def breakdown(
    dataset: Dataset,
    source: PairSource,
    task: str,
    outputs: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """Per-bin metrics (identity, length) of ``outputs`` (N,) on ``source``, and for
    classification the reliability curve (see the module docstring)."""
    identity, lengths = pair_arrays(dataset, source)
    targets = source.pairs.targets
    out = metrics_by_bins(task, targets, outputs, identity, lengths, threshold)
    if task == "classification":
        out["reliability"] = reliability_curve(targets, outputs)
    return out


def evaluate_run(
    run_dir: str | Path,
    dataset_dir: str | Path | Dataset,
    store_path: str | Path | StoreReader,
    split: str = EVAL_SPLIT,
    *,
    device: str = "auto",
    loader: str = "auto",
    breakdown_bins: bool = True,
) -> dict[str, Any]:
    """Metrics of the run's head on ``split`` of the dataset (see module docstring)."""
    run = load_run(run_dir)
    dataset = dataset_dir if isinstance(dataset_dir, Dataset) else load_dataset(dataset_dir)
    where: str | Path = (
        store_path
        if isinstance(store_path, str | Path)
        else str(getattr(store_path, "path", "store"))
    )
    with use_store(store_path) as store:
        check_store_matches(run, store, where)
        dev = resolve_device(device)
        data = load_head_data(
            dataset,
            store,
            kind=run.head_config.kind,
            task=run.head_config.task,
            splits=(split,),
            loader=loader,
            device=dev,
            store_path=where,
        )
        head = run.head.to(dev)
        source = data[split]
        task = run.head_config.task
        outputs, loss = predict_source(head, source, run.train_config.eval_batch_size)
        cut = run.threshold
        metrics: dict[str, Any] = {
            "loss": loss,
            **compute_metrics(task, source.pairs.targets, outputs, cut),
        }
        if task == "regression":
            metrics["n_dropped_non_finite"] = non_finite_targets(dataset, split)
        if breakdown_bins:
            metrics.update(breakdown(dataset, source, task, outputs, cut))
        return metrics


def evaluate_repeats(
    run_dir: str | Path,
    dataset_dir: str | Path | Dataset,
    store_path: str | Path,
    split: str = EVAL_SPLIT,
    *,
    device: str = "auto",
    loader: str = "auto",
) -> dict[str, Any]:
    """Every ``seed-<s>/`` run of a ``--repeats`` folder on ``split``, and their mean and std.

    Returns ``{"runs": {"seed-0": metrics, ...}, "summary": {split: {metric: {mean, std,
    values}}}}``; a single run folder is evaluated as a one-run repeat.
    """
    dataset = dataset_dir if isinstance(dataset_dir, Dataset) else load_dataset(dataset_dir)
    folders = repeat_run_dirs(run_dir) or [Path(run_dir)]
    runs = {
        f.name: evaluate_run(f, dataset, store_path, split, device=device, loader=loader)
        for f in folders
    }
    return {"runs": runs, "summary": aggregate_metrics([{split: m} for m in runs.values()])}
