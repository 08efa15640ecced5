"""Training Siamese heads on cached embeddings.

Layers, from reusable core to command:

* :func:`fit` trains one head on already-loaded data (:class:`~embedhead.heads.data.HeadData`,
  from :func:`~embedhead.heads.data.load_head_data`), so a sweep can run many trials on one load;
  it writes nothing and returns a :class:`FitResult`.
* :func:`train_head` loads a dataset + store, fits, and writes a run folder (see
  :mod:`embedhead.heads.run`); :func:`train_repeats` does that for N seeds and summarises
  (mean and standard deviation of every metric, like the thesis's tables).
* :func:`run_training` is what ``embedhead train`` calls: paths + overrides -> result.

Training: BCE with logits (classification) or MSE on standardised ``norm_score`` (regression),
Adam with weight decay, shuffled mini-batches from a seeded generator (drawn from shuffle buckets
of pairs stored near each other: :meth:`embedhead.heads.data.PairSource.epoch_order`), validation
loss after every epoch, early stopping after ``patience`` epochs without improvement, best
checkpoint kept (``keep="best"``) or the last epoch's weights (``keep="last"``, the thesis).
With the same seed, data and device, CPU runs are bit-for-bit repeatable. A non-finite loss
stops training with :class:`NonFiniteLossError` and nothing is written.

Config overrides (``embedhead train --config cfg.json``, :func:`load_config_overrides`): a JSON
object whose keys are fields of :class:`TrainConfig` and/or :class:`~embedhead.heads.models.
HeadConfig` (``d_model`` excluded; ``kind`` is accepted for ``head``), e.g.
``{"lr": 0.0003, "hidden_sizes": [256, 64], "dropout": 0.3, "kernel_size": 3}``. Keys starting
with ``_`` are ignored (comments, sweep metadata). A run's ``config.json`` (``{"head": {...},
"train": {...}}``) is accepted too. The key ``"preset"`` names a preset of
:mod:`embedhead.heads.presets` applied under the other keys (``{"preset": "thesis"}``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from embedhead import __version__
from embedhead.dataset import Dataset, load_dataset
from embedhead.errors import ConfigError, EmbedheadError
from embedhead.heads.config import TRAIN_REPEATS, HeadConfig
from embedhead.heads.config import TrainConfig as TrainConfig
from embedhead.heads.data import (
    HeadData,
    PairSource,
    StoreReader,
    load_head_data,
    non_finite_targets,
)
from embedhead.heads.metrics import (
    DEFAULT_THRESHOLD,
    choose_threshold,
    compute_metrics,
    quick_metrics,
)
from embedhead.heads.models import SiameseHead, build_head
from embedhead.heads.presets import expand_preset
from embedhead.heads.run import (
    SUMMARY_FILE,
    atomic_dir,
    ensure_free,
    read_json,
    write_json,
    write_run,
)
from embedhead.prepare.resplit import resplit as resplit_dataset
from embedhead.results import RESULT_VERSION
from embedhead.stats import mean_std
from embedhead.store.access import use_store

ProgressFn = Callable[[dict[str, Any]], None]


class NonFiniteLossError(EmbedheadError):
    """The loss became NaN or infinite (NaN/inf embeddings, or a learning rate too high)."""


_HEAD_FIELDS = {f.name for f in fields(HeadConfig)} - {"d_model", "kind", "task"}
_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def split_overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flat overrides -> (HeadConfig kwargs, TrainConfig kwargs); ConfigError on unknown keys."""
    head: dict[str, Any] = {}
    train: dict[str, Any] = {}
    for key, value in expand_preset(overrides).items():
        if key.startswith("_"):
            continue
        if key == "kind":
            key = "head"
        if key in _TRAIN_FIELDS:
            train[key] = value
        elif key in _HEAD_FIELDS:
            head[key] = value
        else:
            known = ", ".join(sorted(_TRAIN_FIELDS | _HEAD_FIELDS))
            raise ConfigError(f"unknown config key {key!r} (known: {known})")
    return head, train


def load_config_overrides(path: str | Path) -> dict[str, Any]:
    """Read a config JSON (see module docstring) -> flat dict of validated field overrides."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a JSON object of field overrides")
    if isinstance(data.get("head"), dict) or isinstance(data.get("train"), dict):
        head = {k: v for k, v in dict(data.get("head", {})).items() if k in _HEAD_FIELDS}
        flat = {**head, **dict(data.get("train", {}))}
    else:
        flat = {k: v for k, v in data.items() if not k.startswith("_")}
    try:
        head_kw, train_kw = split_overrides(flat)
        make_configs(1, head_kw | train_kw)  # validate values now, naming the file
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return head_kw | train_kw


def make_configs(
    d_model: int, overrides: Mapping[str, Any] | None = None
) -> tuple[HeadConfig, TrainConfig]:
    """Configs from defaults + flat overrides; the head's kind/task follow the train config."""
    head_kw, train_kw = split_overrides(overrides or {})
    try:
        train = TrainConfig(**train_kw)
        head = HeadConfig(d_model=d_model, kind=train.head, task=train.task, **head_kw)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc
    return head, train


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns: the best head (eval mode, CPU) and how it got there."""

    head: SiameseHead
    head_config: HeadConfig
    train_config: TrainConfig
    history: list[dict[str, Any]]
    best_epoch: int
    metrics: dict[str, dict[str, Any]]
    n_pairs: dict[str, int]
    elapsed_s: float
    threshold: float | None = None  # classification: chosen on val (TrainConfig.threshold)


def _loss(task: str, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if task == "classification":
        return F.binary_cross_entropy_with_logits(raw, target)
    return F.mse_loss(raw, target)


def _scaled(head: SiameseHead, targets: torch.Tensor) -> torch.Tensor:
    if head.config.task == "classification":
        return targets
    return (targets - head.target_mean) / head.target_std


@torch.no_grad()
def predict_source(
    head: SiameseHead, source: PairSource, batch_size: int
) -> tuple[np.ndarray, float]:
    """Head outputs (N,) (probabilities or original-unit scores) in table order, and mean loss."""
    head.eval()
    outputs: list[np.ndarray] = []
    total = 0.0
    for batch in source.batches(batch_size):
        raw = head(batch.x1, batch.x2, batch.m1, batch.m2)
        total += float(_loss(head.config.task, raw, _scaled(head, batch.targets))) * len(raw)
        outputs.append(head.to_output(raw).cpu().numpy())
    out = np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.float32)
    return out, total / max(len(source), 1)


def evaluate_source(
    head: SiameseHead,
    source: PairSource,
    batch_size: int,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """Metrics (and ``loss``) of ``head`` on every pair of ``source`` (classification: cut at
    ``threshold``)."""
    outputs, loss = predict_source(head, source, batch_size)
    metrics = compute_metrics(head.config.task, source.pairs.targets, outputs, threshold)
    return {"loss": loss, **metrics}


def _check_finite(loss: torch.Tensor, epoch: int, where: str) -> None:
    if not torch.isfinite(loss):
        raise NonFiniteLossError(
            f"{where} loss is {loss.item()} at epoch {epoch}: the store may hold NaN/inf "
            "embeddings, or the learning rate is too high (try a lower --lr)"
        )


def fit(
    head_config: HeadConfig,
    config: TrainConfig,
    data: HeadData,
    *,
    progress: ProgressFn | None = None,
) -> FitResult:
    """Train one head on loaded data; returns the kept head (best or last epoch) and its metrics.

    ``data`` must hold 'train' and 'val' (and usually 'test', whose metrics are reported for the
    best checkpoint). ``progress`` gets each epoch's history row.
    """
    if (head_config.kind, head_config.task) != (data.kind, data.task):
        raise ConfigError(
            f"head is {head_config.kind}/{head_config.task} but data were loaded for "
            f"{data.kind}/{data.task}"
        )
    if head_config.d_model != data.d_model:
        raise ConfigError(f"head d_model {head_config.d_model} != store d_model {data.d_model}")
    start_time = time.perf_counter()
    train, val = data["train"], data["val"]
    device = train.device  # the head goes where the data were loaded
    train = training_subset(train, config)
    torch.manual_seed(config.seed)
    head = build_head(head_config).to(device)
    if head_config.task == "regression":
        y = train.pairs.targets.astype(np.float64)
        std = float(y.std())
        head.set_target_scale(float(y.mean()), std if std > 0 else 1.0)
    optimiser = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    best_loss, best_epoch, since_best = float("inf"), 0, 0
    best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    for epoch in range(1, config.epochs + 1):
        head.train()
        order = train.epoch_order(generator, config.batch_size)
        total = 0.0
        for batch in train.batches(config.batch_size, order):
            raw = head(batch.x1, batch.x2, batch.m1, batch.m2)
            loss = _loss(head_config.task, raw, _scaled(head, batch.targets))
            _check_finite(loss, epoch, "training")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(raw)
        val_outputs, val_loss = predict_source(head, val, config.eval_batch_size)
        _check_finite(torch.tensor(val_loss), epoch, "validation")
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total / len(train),
            "val_loss": val_loss,
            "val": quick_metrics(head_config.task, val.pairs.targets, val_outputs),
        }
        history.append(row)
        if progress is not None:
            progress(row)
        if val_loss < best_loss:
            best_loss, best_epoch, since_best = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
        else:
            since_best += 1
            if config.patience and since_best >= config.patience:
                break
    if config.keep == "last":
        best_epoch = len(history)  # the epoch whose weights are kept
    else:
        head.load_state_dict(best_state)
    head.eval()
    threshold: float | None = None
    if head_config.task == "classification":  # chosen on validation only, never on test
        val_outputs, _ = predict_source(head, val, config.eval_batch_size)
        threshold = choose_threshold(val.pairs.targets, val_outputs, config.threshold)
    cut = DEFAULT_THRESHOLD if threshold is None else threshold
    metrics = {
        name: evaluate_source(head, source, config.eval_batch_size, cut)
        for name, source in data.splits.items()
        if name != "train"
    }
    head.cpu()
    n_pairs = {name: len(s) for name, s in data.splits.items()} | {"train": len(train)}
    elapsed = time.perf_counter() - start_time
    return FitResult(
        head, head_config, config, history, best_epoch, metrics, n_pairs, elapsed, threshold
    )


@dataclass(frozen=True)
class TrainResult:
    """A written run folder and the fit behind it."""

    path: Path
    fit: FitResult
    info: dict[str, Any]


@dataclass(frozen=True)
class RepeatsResult:
    """A written repeats folder (``seed-<s>/`` runs + ``summary.json``)."""

    path: Path
    runs: list[TrainResult]
    summary: dict[str, Any]


def _store_path(store: StoreReader | str | Path) -> str | None:
    return str(store) if isinstance(store, str | Path) else getattr(store, "path", None)


def run_info(
    result: FitResult, dataset: Dataset, data: HeadData, store_path: str | Path | None
) -> dict[str, Any]:
    """The ``run.json`` content of one fit."""
    head = result.head
    info: dict[str, Any] = {
        "embedhead_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": result.train_config.seed,
        "dataset": {
            "path": str(dataset.path),
            "fingerprint": dataset.fingerprint,
            "n_pairs": result.n_pairs,
        },
        "store": {
            "path": None if store_path is None else str(store_path),
            "identity": data.identity,
            "loader": data.loader,
            "options": data.store_options,
        },
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "elapsed_s": round(result.elapsed_s, 3),
        "history": result.history,
        "metrics": result.metrics,
    }
    if result.threshold is not None:
        info["threshold"] = {
            "value": result.threshold,
            "rule": result.train_config.threshold,
            "chosen_on": "val",
        }
    if head.config.task == "regression":
        info["target_scale"] = {"mean": float(head.target_mean), "std": float(head.target_std)}
        # positives with a NaN/inf target are dropped when loading: counted, not silent
        dropped = {name: non_finite_targets(dataset, name) for name in data.splits}
        info["dropped_non_finite_targets"] = dropped
        for name, split_metrics in result.metrics.items():
            split_metrics["n_dropped_non_finite"] = dropped.get(name, 0)
    return info


def training_subset(train: PairSource, config: TrainConfig) -> PairSource:
    """``train`` itself, or the seeded ``config.train_size`` pairs of it (sorted: a learning
    curve's point); ConfigError when it asks for more pairs than there are."""
    if config.train_size is None:
        return train
    if config.train_size > len(train):
        raise ConfigError(f"train_size {config.train_size} exceeds the {len(train)} training pairs")
    rng = np.random.default_rng(config.seed)
    return train.subset(np.sort(rng.choice(len(train), config.train_size, replace=False)))


def load_data_for(
    ds: Dataset, store: StoreReader, config: TrainConfig, store_path: str | None
) -> HeadData:
    """Load ``ds``'s pairs from ``store`` as ``config`` asks (head kind, task, loader, device)."""
    return load_head_data(
        ds,
        store,
        kind=config.head,
        task=config.task,
        loader=config.loader,
        device=config.device,
        store_path=store_path,
    )


def train_head(
    dataset: Dataset | str | Path,
    store: StoreReader | str | Path,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    head: HeadConfig | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train one head and write its run folder ``out_dir`` (see :mod:`embedhead.heads.run`).

    ``dataset`` is a :class:`~embedhead.dataset.Dataset` or folder, ``store`` an open store or its
    path. ``head`` gives architecture options; its kind/task/d_model are taken from ``config`` and
    the store. Errors (empty/missing split, store lacking sequences, NaN loss, existing
    ``out_dir``) leave nothing at ``out_dir``.
    """
    ensure_free(Path(out_dir))
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    store_path = _store_path(store)
    with use_store(store) as reader:
        head_config = _head_config(head, config, reader.d_model)
        data = load_data_for(ds, reader, config, store_path)
        result = fit(head_config, config, data, progress=progress)
        info = run_info(result, ds, data, store_path)
        with atomic_dir(out_dir) as tmp:
            write_run(tmp, result.head, config, info)
        return TrainResult(Path(out_dir), result, info)


def _head_config(head: HeadConfig | None, config: TrainConfig, d_model: int) -> HeadConfig:
    base = head if head is not None else HeadConfig(d_model=d_model)
    return replace(base, d_model=int(d_model), kind=config.head, task=config.task)


def aggregate_metrics(runs: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Mean, sample std and values of each scalar metric per split (see embedhead.stats)."""
    out: dict[str, Any] = {}
    for split in runs[0]:
        per_key: dict[str, Any] = {}
        for key, value in runs[0][split].items():
            if not isinstance(value, int | float) or key == "n":
                continue
            values = [float(r[split][key]) for r in runs]
            mean, std = mean_std(values)
            per_key[key] = {"mean": mean, "std": std, "values": values}
        out[split] = per_key
    return out


def summarise(results: list[FitResult]) -> dict[str, Any]:
    """Mean, sample standard deviation (ddof=1; 0 for one run) and values of every metric."""
    return {
        "seeds": [r.train_config.seed for r in results],
        "metrics": aggregate_metrics([r.metrics for r in results]),
    }


def iter_summary_lines(metrics: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    """Human-readable ``split  key=mean±std ...`` lines of :func:`aggregate_metrics` output."""
    for split, values in metrics.items():
        parts = [f"{k}={v['mean']:.4f}±{v['std']:.4f}" for k, v in values.items() if k != "loss"]
        yield f"{split:5s} " + " ".join(parts)


def train_repeats(
    dataset: Dataset | str | Path,
    store: StoreReader | str | Path,
    config: TrainConfig,
    out_dir: str | Path,
    repeats: int,
    *,
    head: HeadConfig | None = None,
    progress: ProgressFn | None = None,
    resplit: bool = False,
) -> RepeatsResult:
    """Train ``repeats`` heads with seeds ``config.seed, config.seed + 1, ...`` on one load.

    ``resplit``: each repeat also re-draws the dataset's split and negatives from its seed
    (:func:`embedhead.prepare.resplit.resplit`), so the spread covers both sources of variance
    (one data load per repeat).

    Writes ``out_dir/seed-<s>/`` run folders and ``out_dir/summary.json``; all or nothing.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, not {repeats}")
    ensure_free(Path(out_dir))
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    store_path = _store_path(store)
    with use_store(store) as reader:
        head_config = _head_config(head, config, reader.d_model)
        loads: list[tuple[Dataset, HeadData]] = []
        if resplit:  # each repeat re-draws split and negatives from its own seed
            for i in range(repeats):
                ds_i = resplit_dataset(ds, config.seed + i)
                loads.append((ds_i, load_data_for(ds_i, reader, config, store_path)))
        else:
            loads = [(ds, load_data_for(ds, reader, config, store_path))] * repeats
        fits = [
            fit(head_config, replace(config, seed=config.seed + i), d, progress=progress)
            for i, (_, d) in enumerate(loads)
        ]
        summary = {**summarise(fits), "resplit": resplit}
        runs: list[TrainResult] = []
        with atomic_dir(out_dir) as tmp:
            for result, (ds_i, data) in zip(fits, loads, strict=True):
                name = f"seed-{result.train_config.seed}"
                (tmp / name).mkdir()
                info = run_info(result, ds_i, data, store_path)
                if resplit:
                    info["dataset"]["resplit_seed"] = result.train_config.seed
                write_run(tmp / name, result.head, result.train_config, info)
                runs.append(TrainResult(Path(out_dir) / name, result, info))
            write_json(
                tmp / SUMMARY_FILE,
                {"kind": "summary", "version": RESULT_VERSION, "repeats": repeats, **summary},
            )
        return RepeatsResult(Path(out_dir), runs, summary)


def run_training(
    dataset_dir: str | Path,
    store_path: str | Path,
    out_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    repeats: int = TRAIN_REPEATS,
    progress: ProgressFn | None = None,
    resplit: bool = False,
) -> TrainResult | RepeatsResult:
    """``embedhead train``: defaults + overrides (config file, then flags) -> run folder(s)."""
    head, config = make_configs(1, overrides)  # validates before any loading
    if resplit:
        return train_repeats(
            dataset_dir,
            store_path,
            config,
            out_dir,
            repeats,
            head=head,
            progress=progress,
            resplit=True,
        )
    if repeats == 1:
        return train_head(dataset_dir, store_path, config, out_dir, head=head, progress=progress)
    return train_repeats(
        dataset_dir, store_path, config, out_dir, repeats, head=head, progress=progress
    )


def iter_metric_lines(metrics: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    """Human-readable ``split  key=value ...`` lines (scalar metrics only)."""
    for split, values in metrics.items():
        parts = [
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in values.items()
            if isinstance(v, int | float) and k != "loss"
        ]
        yield f"{split:5s} " + " ".join(parts)
