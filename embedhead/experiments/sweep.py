"""Hyper-parameter search (an Optuna study) over heads trained on one load of the embeddings.

Search space: a mapping ``name -> entry``. Names are ``TrainConfig`` / ``HeadConfig`` fields
(``lr``, ``weight_decay``, ``dropout``, ``kernel_size``, ``batch_size``, ...) plus two
shorthands: ``layers`` and ``units`` -> ``hidden_sizes = [units] * layers``. An entry is
``{"dist": "loguniform"|"uniform"|"randint", "low": a, "high": b}`` (``randint``'s ``high`` is
inclusive), a list of choices (any JSON values, e.g. ``[[256], [512, 128]]``), or a fixed value.
The default (:data:`DEFAULT_SPACE`) is the thesis's: lr 1e-5..1e-3 (log), weight decay
1e-6..1e-2 (log), dropout 0.2..0.5, layers 1..4, units 256..1024. A space file is JSON, or YAML
when PyYAML is installed.

Each trial is one Optuna trial (see :mod:`embedhead.experiments.study` for the storage, the
samplers, pruning and how interrupted trials are recovered): sampler ``tpe`` (default),
``random`` (trial ``i`` always gets :meth:`SearchSpace.sample` ``(seed, i)``) or ``grid``; pruner
``median`` (default), ``hyperband`` or ``none``, fed by the per-epoch validation metric of the
first repeat. Repeat ``r`` of a trial trains with seed ``train_seed + r``; the trial's value is
the mean validation metric. Trials share ONE load of the data per process; ``workers > 1`` forks
processes after the load (copy-on-write), each joining the same study. ``batch_trials`` K > 1:
each process asks for K trials at once and trains those of one head shape together, in one pass
over the data (:mod:`embedhead.heads.batched`; same results as one at a time, to float rounding).
The study records the store, backbone identity and dataset fingerprint (:func:`sweep_inputs`);
resuming it on another backbone, store layout or dataset is refused.

Output folder::

    study.journal     the Optuna study (default storage; rerun the same command to resume)
    sweep.json        trials (finished ones ranked by mean validation metric +/- std over
                      repeats, then pruned, then failed), history, parameter importances
    sweep.csv         the same table as CSV
    best.json         flat config overrides of the best trial: `embedhead train --config best.json`
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from embedhead.dataset import INFO_FILE, Dataset, load_dataset
from embedhead.errors import ConfigError, EmbedheadError
from embedhead.experiments.config import (
    PRUNERS,
    SAMPLERS,
    SWEEP_BATCH_TRIALS,
    SWEEP_PRUNER,
    SWEEP_REPEATS,
    SWEEP_SAMPLER,
    SWEEP_SEED,
    SWEEP_TRIALS,
    SWEEP_WORKERS,
)
from embedhead.experiments.study import (
    DEFAULT_STUDY_NAME,
    SHORTHANDS,
    STUDY_FILE,
    BatchFitFn,
    Entry,
    StudyPlan,
    check_bounds,
    counted_trials,
    distribution,
    draw,
    grid_size,
    is_discarded,
    load_study,
    params_to_overrides,
    recover_interrupted,
    run_trials,
    status_of,
    trial_rng,
)
from embedhead.fileio import (
    atomic_write_text,
    make_out_dir,
    read_config_file,
    to_jsonable,
    write_json,
)
from embedhead.heads.batched import fit_batched
from embedhead.heads.data import STORE_OPTIONS
from embedhead.heads.metrics import CLASSIFICATION_KEYS, REGRESSION_KEYS
from embedhead.heads.train import (
    fit,
    load_config_overrides,
    load_data_for,
    make_configs,
    split_overrides,
)
from embedhead.results import RESULT_VERSION
from embedhead.stats import mean_std
from embedhead.store.access import use_store

__all__ = ["DEFAULT_SPACE", "SearchSpace", "SweepConfig", "params_to_overrides", "run_sweep"]

SWEEP_FILE = "sweep.json"
CSV_FILE = "sweep.csv"
BEST_FILE = "best.json"
MINIMISE = frozenset({"loss", "mse", "rmse", "mae"})
DEFAULT_SPACE_SPEC: dict[str, Any] = {
    "lr": {"dist": "loguniform", "low": 1e-5, "high": 1e-3},
    "weight_decay": {"dist": "loguniform", "low": 1e-6, "high": 1e-2},
    "dropout": {"dist": "uniform", "low": 0.2, "high": 0.5},
    "layers": {"dist": "randint", "low": 1, "high": 4},
    "units": {"dist": "randint", "low": 256, "high": 1024},
}
FIXED_KEYS = frozenset({"task", "head", "kind", "device", "loader", "seed"})  # one data load
_SCALAR = (type(None), bool, int, float, str)

FitFn = Callable[..., Any]
ProgressFn = Callable[[dict[str, Any]], None]


# ----------------------------------------------------------------------------- search space
def _entry(name: str, spec: Any, where: str) -> Entry:
    """One space entry -> ("float", low, high, log) | ("int", low, high) | ("choice", ...)."""
    if not isinstance(spec, list | dict):
        spec = [spec]  # a fixed value
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: {name!r} has an empty list of choices")
        encoded = not all(isinstance(v, _SCALAR) for v in spec)
        choices = tuple(json.dumps(v) for v in spec) if encoded else tuple(spec)
        return ("choice", choices, encoded)
    kind = spec.get("dist")
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {name!r} needs numeric 'low' and 'high' ({spec!r})") from exc
    if not high >= low:
        raise ConfigError(f"{where}: {name!r} has high {high} < low {low}")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: {name!r} loguniform needs low > 0, not {low}")
    if kind in ("loguniform", "uniform"):
        if high == low:
            return ("choice", (low,), False)
        return ("float", low, high, kind == "loguniform")
    if kind == "randint":
        if not (low.is_integer() and high.is_integer()):
            raise ConfigError(f"{where}: {name!r} randint needs integer bounds")
        return ("int", int(low), int(high))
    raise ConfigError(
        f"{where}: {name!r} has unknown dist {kind!r} (choose loguniform, uniform or randint)"
    )


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: the JSON-able spec and its parsed entries."""

    spec: dict[str, Any]
    entries: dict[str, Entry] = field(compare=False, repr=False)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], where: str = "search space") -> SearchSpace:
        """Validate ``spec`` (see module docstring); ConfigError names ``where`` and the key."""
        if not isinstance(spec, Mapping) or not spec:
            raise ConfigError(f"{where}: the search space must be a non-empty mapping")
        fixed = sorted(FIXED_KEYS & set(spec))
        if fixed:
            raise ConfigError(
                f"{where}: {', '.join(fixed)} cannot vary within one sweep (set them in the "
                "base config instead)"
            )
        plain = {k: 1 for k in spec if k not in SHORTHANDS}
        try:
            split_overrides(plain)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        entries = {str(k): _entry(str(k), v, where) for k, v in sorted(spec.items())}
        return cls(dict(to_jsonable(dict(spec))), entries)

    def sample(self, seed: int, trial: int) -> dict[str, Any]:
        """The parameters ``--sampler random`` gives trial ``trial`` (same seed -> same values)."""
        out = {}
        for name, entry in self.entries.items():
            value = draw(distribution(entry), trial_rng(seed, trial, name))
            out[name] = json.loads(value) if entry[0] == "choice" and entry[2] else value
        return out


DEFAULT_SPACE = SearchSpace.from_spec(DEFAULT_SPACE_SPEC, "default space")


def load_space(path: str | Path) -> SearchSpace:
    """Read a space file (JSON, or YAML when PyYAML is installed)."""
    return SearchSpace.from_spec(read_config_file(path), str(path))


# ----------------------------------------------------------------------------- trial rows
def default_metric(task: str) -> str:
    """Validation metric that ranks trials: ROC-AUC (classification) or R2 (regression)."""
    return "roc_auc" if task == "classification" else "r2"


def _check_metric(metric: str, task: str) -> None:
    known = ("loss", *(CLASSIFICATION_KEYS if task == "classification" else REGRESSION_KEYS))
    if metric not in known:
        raise ConfigError(f"unknown {task} metric {metric!r} (choose from {', '.join(known)})")


def _score(value: Any, metric: str) -> float:
    """Sort key, larger is better; NaN/None sort last."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return -math.inf
    return -float(value) if metric in MINIMISE else float(value)


def _mean_std(values: Sequence[Any]) -> tuple[float, float]:
    return mean_std([math.nan if v is None else float(v) for v in values])


def trial_row(t: FrozenTrial, metric: str) -> dict[str, Any]:
    """One table row of a stored trial: params, mean/std over repeats, status, error."""
    reps = t.user_attrs.get("repeats") or []
    status = status_of(t)
    val = _mean_std([r["val"].get(metric) for r in reps]) if status == "ok" else (math.nan,) * 2
    test = _mean_std([r["test"].get(metric) for r in reps]) if status == "ok" else (math.nan,) * 2
    return {
        "trial": t.number,
        "params": t.user_attrs.get("params", {}),
        "overrides": t.user_attrs.get("overrides", {}),
        "val_mean": val[0],
        "val_std": val[1],
        "test_mean": test[0],
        "test_std": test[1],
        "n_repeats": len(reps),
        "status": status,
        "error": t.user_attrs.get("error"),
        "pruned_epoch": t.user_attrs.get("pruned_epoch"),
        "elapsed_s": float(t.user_attrs.get("elapsed_s", 0.0)),
    }


def rank_rows(rows: Sequence[Mapping[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Finished trials ranked by the mean validation metric (rank 1 = best), then pruned, then
    failed ones (no rank: a pruned trial never ranks as finished)."""
    order = {"ok": 0, "pruned": 1, "failed": 2}
    out = sorted(
        (dict(r) for r in rows),
        key=lambda r: (order[r["status"]], -_score(r["val_mean"], metric), r["trial"]),
    )
    rank = 0
    for row in out:
        if row["status"] == "ok" and math.isfinite(row["val_mean"]):
            rank += 1
            row["rank"] = rank
        else:
            row["rank"] = None
    return out


def _history(trials: Sequence[FrozenTrial]) -> list[dict[str, Any]]:
    return [
        {"trial": t.number, "value": t.value, "status": status_of(t)}
        for t in sorted(trials, key=lambda t: t.number)
    ]


def _importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) over the complete trials; {} when undefined."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():  # "importances will be equal" on tiny studies
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
        return {k: float(v) for k, v in found.items()}
    except (ValueError, RuntimeError):  # e.g. no parameter varied among complete trials
        return {}


# ----------------------------------------------------------------------------- running
@dataclass(frozen=True)
class SweepConfig:
    """What to search and how: space, trial budget, repeats, seeds, sampler, pruner, storage.

    ``base`` holds fixed overrides (task, head, epochs, ...); where the space samples a key
    (``layers``/``units`` sample ``hidden_sizes``), the sampled value wins. ``storage`` None
    means ``study.journal`` in the sweep folder; otherwise a journal path or a database URL.
    """

    space: SearchSpace = DEFAULT_SPACE
    n_trials: int = SWEEP_TRIALS
    repeats: int = SWEEP_REPEATS
    seed: int = SWEEP_SEED
    base: Mapping[str, Any] = field(default_factory=dict)
    metric: str | None = None
    workers: int = SWEEP_WORKERS  # 0: one per CPU core (at most 8)
    sampler: str = SWEEP_SAMPLER
    pruner: str = SWEEP_PRUNER
    storage: str | None = None
    study_name: str = DEFAULT_STUDY_NAME
    batch_trials: int = SWEEP_BATCH_TRIALS

    def __post_init__(self) -> None:
        if not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ConfigError(f"trials must be a positive integer, not {self.n_trials!r}")
        if not isinstance(self.repeats, int) or self.repeats < 1:
            raise ConfigError(f"repeats must be a positive integer, not {self.repeats!r}")
        if (
            not isinstance(self.batch_trials, int)
            or isinstance(self.batch_trials, bool)
            or self.batch_trials < 1
        ):
            raise ConfigError(f"batch_trials must be a positive integer, not {self.batch_trials!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"workers must be >= 0, not {self.workers!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"pruner must be one of {', '.join(PRUNERS)}, not {self.pruner!r}")
        if not self.study_name:
            raise ConfigError("study name must not be empty")


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: ranked rows, the best row and where things were written."""

    out_dir: Path
    ranked: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_config: dict[str, Any] | None
    n_trained: int
    n_resumed: int
    metric: str
    elapsed_s: float


# Forked worker processes read these (set before forking; copy-on-write, never reloaded).
_SHARED: dict[str, Any] = {}


def _resolve_workers(requested: int, device: str) -> int:
    if device.startswith("cuda"):
        return 1
    cpus = os.cpu_count() or 1
    return min(cpus, 8) if requested == 0 else requested


def _warm_up() -> None:
    """Import what torch loads lazily on first use (the optimiser pulls in torch._dynamo, seconds
    of imports) once in the parent, so forked workers inherit it instead of each paying it."""
    param = torch.nn.Parameter(torch.zeros(1))
    torch.optim.Adam([param], lr=1e-3).step()


def _worker_main() -> None:
    """A forked worker: one torch thread (libgomp hangs a forked child that enters an OpenMP
    region the parent used; the workers fill the cores), then trials until the budget is spent."""
    torch.set_num_threads(1)
    run_trials(
        _SHARED["plan"],
        _SHARED["data"],
        _SHARED["fit"],
        parallel=True,
        progress=_SHARED["progress"],
        batch_fn=_SHARED["batch"],
    )


def _run_workers(
    plan: StudyPlan,
    data: Any,
    fit_fn: FitFn,
    workers: int,
    progress: Any,
    batch_fn: BatchFitFn | None = None,
) -> None:
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        run_trials(
            plan, data, fit_fn, parallel=plan.storage_shared, progress=progress, batch_fn=batch_fn
        )
        return
    _warm_up()
    _SHARED.update(plan=plan, data=data, fit=fit_fn, progress=progress, batch=batch_fn)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker_main, daemon=False) for _ in range(workers)]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    finally:
        _SHARED.clear()
        for proc in procs:  # Ctrl-C in the parent: the children got it too
            proc.join(timeout=30)
    codes = [p.exitcode for p in procs]
    if any(code != 0 for code in codes):
        raise EmbedheadError(f"sweep worker process(es) failed (exit codes {codes}); see above")


def _spec_payload(
    config: SweepConfig, dataset: Dataset, metric: str, train_seed: int
) -> dict[str, Any]:
    return dict(
        to_jsonable(
            {
                "space": config.space.spec,
                "seed": config.seed,
                "sampler": config.sampler,
                "pruner": config.pruner,
                "repeats": config.repeats,
                "base": dict(config.base),
                "metric": metric,
                "train_seed": train_seed,
                "dataset_fingerprint": dataset.fingerprint,
            }
        )
    )


def dataset_fingerprint(ds: Dataset) -> str:
    """SHA-256 of the dataset's ``dataset.json`` bytes and of its pairs table."""
    digest = hashlib.sha256()
    info = ds.path / INFO_FILE
    digest.update(info.read_bytes() if info.is_file() else b"")
    digest.update(ds.fingerprint.encode())
    return digest.hexdigest()


def sweep_inputs(ds: Dataset, reader: Any, store: Any) -> dict[str, Any]:
    """What a sweep trains on, recorded in its study and compared on resume: the store's path,
    its backbone identity (store attribute ``backbone_key``, ``weight_hash``, ``config``; the
    name is shown, not compared), its layout options, and the dataset's path and fingerprint."""
    identity = dict(reader.identity)
    attrs = dict(getattr(reader, "attrs", None) or {})
    path = str(store) if isinstance(store, str | Path) else getattr(reader, "path", None)
    return dict(
        to_jsonable(
            {
                "store": None if path is None else str(path),
                "backbone_name": identity.get("name"),
                "backbone": {
                    "key": attrs.get("backbone_key"),
                    "weight_hash": identity.get("weight_hash"),
                    "config": identity.get("config"),
                },
                "store_options": {
                    k: attrs[k] for k in STORE_OPTIONS if k in attrs and k != "backbone_key"
                },
                "dataset": str(ds.path),
                "dataset_fingerprint": dataset_fingerprint(ds),
            }
        )
    )


def run_sweep(
    dataset: Dataset | str | Path,
    store: Any,
    out_dir: str | Path,
    config: SweepConfig | None = None,
    *,
    fit_fn: FitFn | None = None,
    batch_fit_fn: BatchFitFn | None = None,
    progress: ProgressFn | None = None,
) -> SweepResult:
    """Run (or resume, or join) a sweep; see the module docstring for what lands in ``out_dir``.

    ``store`` is an open store (anything with the heads' ``StoreReader`` interface) or a path.
    ``fit_fn(head_config, train_config, data, progress=...) -> FitResult`` defaults to
    :func:`embedhead.heads.train.fit`; ``batch_fit_fn`` (members, data, progress=[...]) to
    :func:`embedhead.heads.batched.fit_batched`, used when ``config.batch_trials`` > 1. A
    custom ``fit_fn`` without a ``batch_fit_fn`` trains one trial at a time. ``progress`` gets
    each finished trial's record. Resuming a study that was run on another backbone, store layout
    or dataset is a ConfigError naming both.
    """
    config = config or SweepConfig()
    start = time.perf_counter()
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    space = config.space
    check_bounds(space.entries, config.base, "search space")
    _, base_train = make_configs(1, params_to_overrides(space.sample(config.seed, 0), config.base))
    metric = config.metric or default_metric(base_train.task)
    _check_metric(metric, base_train.task)
    budget = config.n_trials
    if config.sampler == "grid":
        budget = min(budget, grid_size(space.entries))
    with use_store(store) as reader:
        inputs = sweep_inputs(ds, reader, store)
    out = make_out_dir(out_dir)
    storage = config.storage or str(out / STUDY_FILE)
    batch_fn = (
        batch_fit_fn if batch_fit_fn is not None else (fit_batched if fit_fn is None else None)
    )
    plan = StudyPlan(
        storage=storage,
        study_name=config.study_name,
        direction="min" if metric in MINIMISE else "max",
        sampler=config.sampler,
        pruner=config.pruner,
        seed=config.seed,
        entries=space.entries,
        base=dict(config.base),
        metric=metric,
        repeats=config.repeats,
        train_seed=base_train.seed,
        budget=budget,
        max_epochs=base_train.epochs,
        spec=_spec_payload(config, ds, metric, base_train.seed),
        storage_shared=config.storage is not None,
        batch_trials=config.batch_trials if batch_fn is not None else 1,
        inputs=inputs,
    )
    study = load_study(plan, parallel=plan.storage_shared)
    recover_interrupted(study, plan.budget)
    n_before = len(counted_trials(study))
    live = [t for t in study.get_trials(deepcopy=False) if not is_discarded(t)]
    if len(live) < budget or any(t.state == TrialState.WAITING for t in live):
        with use_store(store) as reader:
            data = load_data_for(
                ds, reader, base_train, str(store) if isinstance(store, str | Path) else None
            )
            # the device the data landed on ('auto' may have meant CUDA, which forks cannot use)
            loaded_on = str(next(iter(data.splits.values())).device)
            workers = _resolve_workers(config.workers, loaded_on)
            if data.loader == "stream":  # workers would share one open store file
                workers = 1
            if any(t.state == TrialState.RUNNING for t in live):
                plan = replace(plan, storage_shared=True)  # other processes are on this study
            _run_workers(plan, data, fit_fn or fit, workers, progress, batch_fn)
    study = load_study(plan, parallel=True)
    counted = counted_trials(study)
    ranked = rank_rows([trial_row(t, metric) for t in counted], metric)
    best = next((r for r in ranked if r["rank"] == 1), None)
    best_config = None
    if best is not None:
        best_config = {
            **{k: v for k, v in best["overrides"].items() if k != "seed"},
            "_sweep": {
                "trial": best["trial"],
                "metric": metric,
                "val_mean": best["val_mean"],
                "val_std": best["val_std"],
                "params": best["params"],
            },
        }
        write_json(out / BEST_FILE, best_config)
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    write_json(
        out / SWEEP_FILE,
        {
            "kind": "sweep",
            "version": RESULT_VERSION,
            "metric": metric,
            "direction": plan.direction,
            "n_trials": config.n_trials,
            "repeats": config.repeats,
            "seed": config.seed,
            "sampler": config.sampler,
            "pruner": config.pruner,
            "storage": storage,
            "study_name": config.study_name,
            "space": space.spec,
            "base": dict(config.base),
            "dataset": str(ds.path),
            "inputs": inputs,
            "batch_trials": plan.batch_trials,
            "n_running": running,
            "best": None if best is None else {"trial": best["trial"], "config": best_config},
            "history": _history(counted),
            "importances": _importances(study),
            "trials": ranked,
        },
    )
    atomic_write_text(out / CSV_FILE, ranked_csv(ranked))
    elapsed = time.perf_counter() - start
    n_trained = len(counted) - n_before
    return SweepResult(out, ranked, best, best_config, n_trained, n_before, metric, elapsed)


def ranked_csv(ranked: Sequence[Mapping[str, Any]]) -> str:
    """The ranked table as CSV: rank, trial, one column per parameter, metric columns."""
    params = sorted({k for r in ranked for k in r["params"]})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = ["val_mean", "val_std", "test_mean", "test_std", "n_repeats", "status", "elapsed_s"]
    writer.writerow(["rank", "trial", *params, *cols])
    for r in ranked:
        writer.writerow(
            [
                "" if r["rank"] is None else r["rank"],
                r["trial"],
                *[
                    json.dumps(v) if isinstance(v := r["params"].get(p, ""), list) else v
                    for p in params
                ],
                *[r[c] for c in cols],
            ]
        )
    return buf.getvalue()


def sweep_from_files(
    dataset: str | Path,
    store: str | Path,
    out_dir: str | Path,
    *,
    space_file: str | Path | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    n_trials: int = SWEEP_TRIALS,
    repeats: int = SWEEP_REPEATS,
    seed: int = SWEEP_SEED,
    workers: int = SWEEP_WORKERS,
    metric: str | None = None,
    sampler: str = SWEEP_SAMPLER,
    pruner: str = SWEEP_PRUNER,
    storage: str | None = None,
    study_name: str | None = None,
    batch_trials: int = SWEEP_BATCH_TRIALS,
    progress: ProgressFn | None = None,
) -> SweepResult:
    """``embedhead sweep``: space file (or the default), base config file + flag overrides."""
    base: dict[str, Any] = {}
    if config_file is not None:
        base.update(load_config_overrides(config_file))
    base.update(overrides or {})
    space = DEFAULT_SPACE if space_file is None else load_space(space_file)
    config = SweepConfig(
        space=space,
        n_trials=n_trials,
        repeats=repeats,
        seed=seed,
        base=base,
        metric=metric,
        workers=workers,
        sampler=sampler,
        pruner=pruner,
        storage=storage,
        study_name=study_name or DEFAULT_STUDY_NAME,
        batch_trials=batch_trials,
    )
    return run_sweep(dataset, store, out_dir, config, progress=progress)
