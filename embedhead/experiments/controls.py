"""The head beside the baselines: its time per pair and a random-backbone control.

Rows the baselines table lacks, computed from embeddings (torch; :mod:`.baselines` stays
torch-free because ``prepare`` uses it):

- ``head``: the head (``overrides``: TrainConfig/HeadConfig keys, e.g. a preset) trained on
  the real store;
- ``random_backbone``: the same head config trained on a store of the same dataset embedded by
  a RANDOM backbone of the real one's shape (:func:`embedhead.embed.random_store.
  random_backbone_store`, built once in ``OUT/random_backbone/`` and reused). What it reaches
  comes from length and composition, not from pretraining.

Time per pair, for both rows: ``seconds_per_pair`` is the head's forward pass alone on the
test split from embeddings already in memory (:func:`head_seconds_per_pair`);
``seconds_per_pair_with_embedding`` adds the backbone's cost of embedding both sequences:
its seconds per nucleotide measured while building the random store on this machine (the
same shape costs the same) times the test pairs' mean ``len1 + len2``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from embedhead.dataset import Dataset, load_dataset
from embedhead.embed.random_store import RandomStore, random_backbone_store
from embedhead.experiments.baselines import BaselineResult, run_baselines, write_baselines
from embedhead.experiments.config import BaselineConfig
from embedhead.fileio import make_out_dir
from embedhead.heads.data import PairSource, StoreReader, split_records
from embedhead.heads.train import FitResult, fit, load_data_for, make_configs, predict_source
from embedhead.store import open_store
from embedhead.store.access import use_store

RANDOM_DIR = "random_backbone"
HEAD_ROWS = ("head", "random_backbone")


TIMING_PASSES = 3


def head_seconds_per_pair(head: Any, source: PairSource, batch_size: int = 256) -> float:
    """Seconds per pair of the head alone on ``source`` (embeddings in memory): one warm-up
    pass, then the median of :data:`TIMING_PASSES` timed passes (one pass over a small test
    split is dominated by first-call overheads)."""
    head = head.to(source.device)
    predict_source(head, source, batch_size)  # warm-up: allocator, kernels, caches
    times = []
    for _ in range(TIMING_PASSES):
        began = time.perf_counter()
        predict_source(head, source, batch_size)
        times.append(time.perf_counter() - began)
    return float(np.median(times)) / max(len(source), 1)


def mean_pair_nucleotides(dataset: Dataset, split: str, task: str) -> float:
    """Mean ``len1 + len2`` of the pairs of ``split`` used for ``task``."""
    records = split_records(dataset, split, task)
    return float(np.mean([r.len1 + r.len2 for r in records]))


def with_embedding(
    head_seconds: float, nucleotides_per_pair: float, seconds_per_nt: float | None
) -> float | None:
    """Head seconds per pair plus embedding both sequences (None when the speed is unknown)."""
    if seconds_per_nt is None:
        return None
    return head_seconds + nucleotides_per_pair * seconds_per_nt


def build_random_store(
    store: Any,
    dataset_dir: str | Path,
    folder: str | Path,
    *,
    seed: int = 0,
    where: str | Path = "store",
) -> RandomStore:
    """The random-backbone store of ``dataset_dir`` shaped like the open ``store``'s backbone."""
    attrs = getattr(store, "attrs", None)
    return random_backbone_store(attrs or {}, dataset_dir, folder, seed=seed, where=where)


def fit_head(
    dataset: Dataset, store: StoreReader, overrides: Mapping[str, Any], store_path: str | Path
) -> tuple[FitResult, PairSource]:
    """One head fit (``overrides`` hold task and seed) and the test split it was scored on."""
    head_cfg, train_cfg = make_configs(int(store.d_model), dict(overrides))
    data = load_data_for(dataset, store, train_cfg, str(store_path))
    return fit(head_cfg, train_cfg, data), data["test"]


def _row(
    model: str,
    result: FitResult,
    test: PairSource,
    nucleotides: float,
    seconds_per_nt: float | None,
    identity: Mapping[str, Any],
) -> BaselineResult:
    head_seconds = head_seconds_per_pair(result.head, test)
    chosen = {} if result.threshold is None else {"threshold": float(result.threshold)}
    return BaselineResult(
        model=model,
        task=result.head_config.task,
        features=(f"{result.head_config.kind} embeddings",),
        chosen=chosen | {"best_epoch": float(result.best_epoch)},
        val=result.metrics["val"],
        test=result.metrics["test"],
        n_train=result.n_pairs["train"],
        n_val=result.n_pairs["val"],
        n_test=result.n_pairs["test"],
        extra={
            "seconds_per_pair": head_seconds,
            "seconds_per_pair_with_embedding": with_embedding(
                head_seconds, nucleotides, seconds_per_nt
            ),
            "seconds_per_nt": seconds_per_nt,
            "backbone": identity.get("name"),
            "random_init": bool(identity.get("random_init", False)),
        },
    )


def head_rows(
    dataset_dir: str | Path,
    store_path: str | Path,
    out_dir: str | Path,
    config: BaselineConfig,
    overrides: Mapping[str, Any] | None = None,
) -> list[BaselineResult]:
    """The ``head`` and ``random_backbone`` rows of ``embedhead baselines --store`` (see the
    module docstring); the random store is cached in ``out_dir/random_backbone/``."""
    dataset = load_dataset(dataset_dir)
    base = {**(overrides or {}), "task": config.task, "seed": config.seed}
    nucleotides = mean_pair_nucleotides(dataset, "test", config.task)
    with use_store(store_path) as store:
        control = build_random_store(
            store, dataset.path, Path(out_dir) / RANDOM_DIR, seed=config.seed, where=store_path
        )
        result, test = fit_head(dataset, store, base, store_path)
        rows = [_row("head", result, test, nucleotides, control.seconds_per_nt, store.identity)]
    with open_store(control.store) as random_store:
        result, test = fit_head(dataset, random_store, base, control.store)
        rows.append(
            _row(
                "random_backbone",
                result,
                test,
                nucleotides,
                control.seconds_per_nt,
                random_store.identity,
            )
        )
    return rows


def run_and_write_all(
    dataset_dir: str | Path,
    out_dir: str | Path,
    config: BaselineConfig | None = None,
    *,
    store: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[list[BaselineResult], Path]:
    """``embedhead baselines [--store STORE]``: the baselines, plus with a store the ``head``
    and ``random_backbone`` rows; writes ``baselines.json``/``.md`` into ``out_dir``."""
    config = config or BaselineConfig()
    make_out_dir(out_dir)  # a file in the way is an error before any fitting
    results = run_baselines(dataset_dir, config)
    if store is not None:
        results += head_rows(dataset_dir, store, out_dir, config, overrides)
    return results, write_baselines(results, out_dir, dataset=dataset_dir)
