"""Evaluate a trained head (a run folder) on any split of any dataset.

``evaluate_run(run_dir, dataset_dir, store_path, split="test") -> metrics`` rebuilds the head from
the run folder, checks that the store was built by the same backbone as the one the head was
trained on (else :class:`~embedhead.errors.IncompatibleError`), loads the split's embeddings and
returns the metrics of :mod:`embedhead.heads.metrics` plus ``loss``. The dataset may differ from
the training one (cross-species: trained on chicken pairs, evaluated on zebrafish pairs); for a
head's own dataset and split it reproduces the metrics stored in ``run.json``. Classification
metrics are taken at the run's decision threshold (chosen on the training dataset's validation
split, ``run.json["threshold"]``), with ``accuracy_at_0.5`` beside them.
``evaluate_repeats`` does the same for every run of a ``--repeats`` folder (mean and std).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedhead.dataset import Dataset, load_dataset
from embedhead.errors import IncompatibleError
from embedhead.heads.config import EVAL_SPLIT
from embedhead.heads.data import StoreReader, check_identity, load_head_data, resolve_device
from embedhead.heads.run import LoadedRun, load_run, repeat_run_dirs
from embedhead.heads.train import aggregate_metrics, evaluate_source
from embedhead.store.access import use_store


def check_store_matches(run: LoadedRun, store: StoreReader, where: str | Path) -> None:
    """IncompatibleError when ``store`` was not built by the run's backbone (or its width)."""
    check_identity(run.identity, dict(store.identity), where)
    if int(store.d_model) != run.head_config.d_model:
        raise IncompatibleError(
            f"{where}: store d_model {store.d_model} != head d_model {run.head_config.d_model}"
        )


def evaluate_run(
    run_dir: str | Path,
    dataset_dir: str | Path | Dataset,
    store_path: str | Path | StoreReader,
    split: str = EVAL_SPLIT,
    *,
    device: str = "auto",
    loader: str = "auto",
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
        return evaluate_source(head, data[split], run.train_config.eval_batch_size, run.threshold)


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
