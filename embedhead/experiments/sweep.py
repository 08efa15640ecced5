"""Random hyper-parameter search over heads trained on one load of the cached embeddings.

Search space: a mapping ``name -> distribution`` sampled with scikit-learn's
``ParameterSampler`` (scipy.stats ``loguniform`` / ``uniform`` / ``randint``, or a list to choose
from). Names are ``TrainConfig`` / ``HeadConfig`` fields (``lr``, ``weight_decay``, ``dropout``,
``kernel_size``, ``batch_size``, ...) plus two shorthands: ``layers`` and ``units`` ->
``hidden_sizes = [units] * layers``. The default
(:data:`DEFAULT_SPACE`) is the thesis's: lr 1e-5..1e-3 (log), weight decay 1e-6..1e-2 (log),
dropout 0.2..0.5, layers 1..4, units 256..1024. A space file (JSON, or YAML when PyYAML is
installed) maps names to ``{"dist": "loguniform"|"uniform"|"randint", "low": a, "high": b}``
(``randint``'s ``high`` is inclusive), a list of choices, or a fixed value.

Trial ``i`` always gets the same configuration (its sampler is seeded from ``(seed, i)``), and
repeat ``r`` of every trial trains with seed ``train_seed + r``. Units of work are
``(trial, repeat)``; each finished one is appended as one JSON line to ``trials.jsonl`` (one
``write`` of a complete line, flushed and fsynced), so an interrupted sweep resumes from its
finished units. Trials share ONE load of the data (:class:`~embedhead.heads.data.HeadData`) and
run concurrently: ``workers > 1`` forks worker processes after the load (copy-on-write, no
reload), one torch thread each (default: one worker per core); on CUDA, or when the data are
streamed from the store, they run one after another in-process.

Output folder::

    sweep_spec.json   space, seeds, base overrides, metric, dataset fingerprint (for resuming)
    trials.jsonl      one line per finished (trial, repeat): params, val/test metrics, status
    sweep.json        trials ranked by the mean validation metric (+ std over repeats)
    sweep.csv         the same table as CSV
    best.json         flat config overrides of the best trial: `embedhead train --config best.json`
"""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from sklearn.model_selection import ParameterSampler

from embedhead.dataset import Dataset, load_dataset
from embedhead.errors import ConfigError, EmbedheadError, InputError
from embedhead.experiments.config import SWEEP_REPEATS, SWEEP_SEED, SWEEP_TRIALS, SWEEP_WORKERS
from embedhead.fileio import (
    atomic_write_text,
    make_out_dir,
    read_config_file,
    read_json,
    to_jsonable,
    write_json,
)
from embedhead.heads.config import HeadConfig
from embedhead.heads.data import load_head_data
from embedhead.heads.metrics import CLASSIFICATION_KEYS, REGRESSION_KEYS
from embedhead.heads.presets import expand_preset
from embedhead.heads.train import fit, load_config_overrides, make_configs, split_overrides
from embedhead.results import RESULT_VERSION
from embedhead.stats import mean_std
from embedhead.store.access import use_store

SPEC_FILE = "sweep_spec.json"
TRIALS_FILE = "trials.jsonl"
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
SHORTHANDS = ("layers", "units")
FIXED_KEYS = frozenset({"task", "head", "kind", "device", "loader", "seed"})  # one data load

FitFn = Callable[..., Any]
ProgressFn = Callable[[dict[str, Any]], None]


# ----------------------------------------------------------------------------- search space
def _distribution(name: str, spec: Any, where: str) -> Any:
    """One space entry -> a scipy distribution or a list of choices."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: {name!r} has an empty list of choices")
        return spec
    if not isinstance(spec, dict):
        return [spec]  # a fixed value
    kind = spec.get("dist")
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {name!r} needs numeric 'low' and 'high' ({spec!r})") from exc
    if not high >= low:
        raise ConfigError(f"{where}: {name!r} has high {high} < low {low}")
    if kind in ("loguniform", "uniform") and high == low:
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"{where}: {name!r} loguniform needs low > 0, not {low}")
        return [low]  # a degenerate range is a fixed value (scipy refuses a zero scale)
    if kind == "loguniform":
        if low <= 0:
            raise ConfigError(f"{where}: {name!r} loguniform needs low > 0, not {low}")
        return stats.loguniform(low, high)
    if kind == "uniform":
        return stats.uniform(loc=low, scale=high - low)
    if kind == "randint":
        if not (low.is_integer() and high.is_integer()):
            raise ConfigError(f"{where}: {name!r} randint needs integer bounds")
        return stats.randint(int(low), int(high) + 1)
    raise ConfigError(
        f"{where}: {name!r} has unknown dist {kind!r} (choose loguniform, uniform or randint)"
    )


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: the JSON-able spec and its sampler distributions."""

    spec: dict[str, Any]
    distributions: dict[str, Any] = field(compare=False, repr=False)

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
        dists = {str(k): _distribution(str(k), v, where) for k, v in spec.items()}
        return cls(dict(to_jsonable(dict(spec))), dists)

    def sample(self, seed: int, trial: int) -> dict[str, Any]:
        """The parameters of trial ``trial`` (always the same for the same seed and index)."""
        state = np.random.SeedSequence([seed, trial]).generate_state(1)[0]
        (params,) = list(ParameterSampler(self.distributions, n_iter=1, random_state=int(state)))
        return {k: _plain(v) for k, v in sorted(params.items())}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


DEFAULT_SPACE = SearchSpace.from_spec(DEFAULT_SPACE_SPEC, "default space")


def load_space(path: str | Path) -> SearchSpace:
    """Read a space file (JSON, or YAML when PyYAML is installed)."""
    return SearchSpace.from_spec(read_config_file(path), str(path))


def params_to_overrides(
    params: Mapping[str, Any], base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Trial params (+ base overrides) -> flat TrainConfig/HeadConfig overrides."""

    out = dict(base or {})
    out.update({k: v for k, v in params.items() if k not in SHORTHANDS})
    if any(k in params for k in SHORTHANDS):
        given = expand_preset(out).get("hidden_sizes")
        default_hidden = list(given or HeadConfig(d_model=1).hidden_sizes)
        layers = int(params.get("layers", len(default_hidden)))
        units = int(params.get("units", default_hidden[0]))
        out["hidden_sizes"] = [units] * layers
    return out


# ----------------------------------------------------------------------------- trial records
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


def read_trials(path: Path) -> list[dict[str, Any]]:
    """Finished units of ``trials.jsonl``; a torn last line (crash mid-write) is dropped."""
    if not path.is_file():
        return []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
        with open(path, "r+b") as fh:  # cut the torn line so appends start clean
            fh.truncate(len(raw))
    records = []
    for lineno, line in enumerate(raw.decode().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"corrupt trial record: {exc.msg}", path, lineno) from exc
    return records


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record as a single complete line (one write, flushed and fsynced)."""
    line = (json.dumps(to_jsonable(dict(record)), allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def rank_trials(records: Sequence[Mapping[str, Any]], metric: str) -> list[dict[str, Any]]:
    """One row per trial: mean/std of the validation (and test) metric over its repeats, ranked."""
    by_trial: dict[int, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_trial.setdefault(int(rec["trial"]), []).append(rec)
    rows = []
    for trial, recs in by_trial.items():
        recs = sorted(recs, key=lambda r: int(r["repeat"]))
        vals = [_metric_of(r, "val", metric) for r in recs]
        tests = [_metric_of(r, "test", metric) for r in recs]
        failed = [r for r in recs if r.get("status") != "ok"]
        val_mean, val_std = mean_std(vals) if not failed else (math.nan, math.nan)
        test_mean, test_std = mean_std(tests) if not failed else (math.nan, math.nan)
        rows.append(
            {
                "trial": trial,
                "params": recs[0]["params"],
                "overrides": recs[0]["overrides"],
                "val_mean": val_mean,
                "val_std": val_std,
                "test_mean": test_mean,
                "test_std": test_std,
                "n_repeats": len(recs),
                "status": "ok" if not failed else "failed",
                "error": failed[0].get("error") if failed else None,
                "elapsed_s": float(sum(float(r.get("elapsed_s", 0.0)) for r in recs)),
            }
        )
    rows.sort(key=lambda r: (-_score(r["val_mean"], metric), r["trial"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _metric_of(rec: Mapping[str, Any], split: str, metric: str) -> float:
    value = (rec.get(split) or {}).get(metric)
    return float(value) if isinstance(value, int | float) else math.nan


# ----------------------------------------------------------------------------- running
@dataclass(frozen=True)
class SweepConfig:
    """What to search: space, number of trials and repeats, seeds, base overrides, metric.

    ``base`` holds fixed overrides (task, head, epochs, ...); where the space samples a key
    (``layers``/``units`` sample ``hidden_sizes``), the sampled value wins.
    """

    space: SearchSpace = DEFAULT_SPACE
    n_trials: int = SWEEP_TRIALS
    repeats: int = SWEEP_REPEATS
    seed: int = SWEEP_SEED
    base: Mapping[str, Any] = field(default_factory=dict)
    metric: str | None = None
    workers: int = SWEEP_WORKERS  # 0: one per CPU core (at most 8)

    def __post_init__(self) -> None:
        if not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ConfigError(f"trials must be a positive integer, not {self.n_trials!r}")
        if not isinstance(self.repeats, int) or self.repeats < 1:
            raise ConfigError(f"repeats must be a positive integer, not {self.repeats!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"workers must be >= 0, not {self.workers!r}")


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


# Worker processes read these (set before forking; copy-on-write, never reloaded).
_SHARED: dict[str, Any] = {}


def _run_unit(unit: tuple[int, int, dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    """Train one (trial, repeat) on the shared data -> its JSON record."""

    trial, repeat, params, overrides = unit
    data = _SHARED["data"]
    fit_fn: FitFn = _SHARED["fit"]
    record: dict[str, Any] = {
        "trial": trial,
        "repeat": repeat,
        "params": params,
        "overrides": overrides,
    }
    start = time.perf_counter()
    head_config, train_config = make_configs(data.d_model, overrides)
    record["seed"] = train_config.seed
    try:
        result = fit_fn(head_config, train_config, data)
    except EmbedheadError as exc:  # e.g. a NaN loss at a too-high learning rate
        record.update(status="failed", error=str(exc), val={}, test={})
    else:
        metrics = result.metrics
        record.update(
            status="ok",
            val=_scalars(metrics.get("val", {})),
            test=_scalars(metrics.get("test", {})),
            best_epoch=result.best_epoch,
            epochs_run=len(result.history),
        )
    record["elapsed_s"] = round(time.perf_counter() - start, 4)
    return record


def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not isinstance(v, list | dict)}


def _worker_init() -> None:
    """One torch thread per worker: a forked child must not enter an OpenMP parallel region
    (libgomp hangs after fork once the parent has used one), and workers fill the cores."""

    torch.set_num_threads(1)


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


def _iter_results(
    units: list[tuple[int, int, dict[str, Any], dict[str, Any]]], workers: int
) -> Iterator[dict[str, Any]]:
    if workers <= 1 or len(units) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for unit in units:
            yield _run_unit(unit)
        return
    _warm_up()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(min(workers, len(units)), initializer=_worker_init) as pool:
        yield from pool.imap_unordered(_run_unit, units)


def _spec_payload(
    config: SweepConfig, dataset: Dataset, metric: str, train_seed: int
) -> dict[str, Any]:
    return {
        "kind": "sweep-spec",
        "space": config.space.spec,
        "seed": config.seed,
        "repeats": config.repeats,
        "base": dict(config.base),
        "metric": metric,
        "train_seed": train_seed,
        "dataset_fingerprint": dataset.fingerprint,
    }


def _check_resume(out_dir: Path, spec: dict[str, Any]) -> None:
    path = out_dir / SPEC_FILE
    if not path.is_file():
        if (out_dir / TRIALS_FILE).exists():
            raise ConfigError(f"{out_dir} holds {TRIALS_FILE} but no {SPEC_FILE}; use a new --out")
        return
    old = read_json(path)
    differ = sorted(k for k in spec if old.get(k) != to_jsonable(spec[k]))
    if differ:
        raise ConfigError(
            f"{out_dir} holds a different sweep ({', '.join(differ)} differ); "
            "resume with the same settings or choose a new --out"
        )


def _trial_configs(trial: int, params: Mapping[str, Any], overrides: Mapping[str, Any]) -> Any:
    """``make_configs`` of one trial; a bad sampled value names the trial and its parameters."""

    try:
        return make_configs(1, overrides)
    except ConfigError as exc:
        raise ConfigError(
            f"trial {trial} (sampled {dict(params)}): {exc}; check the search space's ranges"
        ) from exc


def run_sweep(
    dataset: Dataset | str | Path,
    store: Any,
    out_dir: str | Path,
    config: SweepConfig | None = None,
    *,
    fit_fn: FitFn | None = None,
    progress: ProgressFn | None = None,
) -> SweepResult:
    """Run (or resume) a sweep; see the module docstring for what lands in ``out_dir``.

    ``store`` is an open store (anything with the heads' ``StoreReader`` interface) or a path.
    ``fit_fn(head_config, train_config, data) -> FitResult`` defaults to
    :func:`embedhead.heads.train.fit`. ``progress`` gets each finished record.
    """

    config = config or SweepConfig()
    start = time.perf_counter()
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    first = config.space.sample(config.seed, 0)
    _, base_train = _trial_configs(0, first, params_to_overrides(first, config.base))
    metric = config.metric or default_metric(base_train.task)
    _check_metric(metric, base_train.task)
    for trial in range(1, config.n_trials):  # every trial valid before anything is written
        params = config.space.sample(config.seed, trial)
        _trial_configs(trial, params, params_to_overrides(params, config.base))
    out = Path(out_dir)
    spec = _spec_payload(config, ds, metric, base_train.seed)
    _check_resume(out, spec)
    make_out_dir(out)
    if not (out / SPEC_FILE).is_file():
        write_json(out / SPEC_FILE, spec)
    trials_path = out / TRIALS_FILE
    done = read_trials(trials_path)
    finished = {(int(r["trial"]), int(r["repeat"])) for r in done}
    units = []
    for trial in range(config.n_trials):
        params = config.space.sample(config.seed, trial)
        for repeat in range(config.repeats):
            if (trial, repeat) in finished:
                continue
            overrides = params_to_overrides(params, config.base)
            overrides["seed"] = base_train.seed + repeat
            units.append((trial, repeat, params, overrides))
    n_trained = 0
    if units:
        opened = isinstance(store, str | Path)
        with use_store(store) as reader:
            data = load_head_data(
                ds,
                reader,
                kind=base_train.head,
                task=base_train.task,
                loader=base_train.loader,
                device=base_train.device,
                store_path=str(store) if opened else None,
            )
            _SHARED.update(data=data, fit=fit_fn or fit)
            # the device the data landed on ('auto' may have meant CUDA, which forks cannot use)
            loaded_on = str(next(iter(data.splits.values())).device)
            workers = _resolve_workers(config.workers, loaded_on)
            if data.loader == "stream":  # workers would share one open store file
                workers = 1
            try:
                for record in _iter_results(units, workers):
                    append_record(trials_path, record)
                    done.append(record)
                    n_trained += 1
                    if progress is not None:
                        progress(record)
            finally:
                _SHARED.clear()
    wanted = {(t, r) for t in range(config.n_trials) for r in range(config.repeats)}
    records = [r for r in done if (int(r["trial"]), int(r["repeat"])) in wanted]
    ranked = rank_trials(records, metric)
    best = next((r for r in ranked if r["status"] == "ok" and math.isfinite(r["val_mean"])), None)
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
    elapsed = time.perf_counter() - start
    write_json(
        out / SWEEP_FILE,
        {
            "kind": "sweep",
            "version": RESULT_VERSION,
            "metric": metric,
            "direction": "min" if metric in MINIMISE else "max",
            "n_trials": config.n_trials,
            "repeats": config.repeats,
            "seed": config.seed,
            "space": config.space.spec,
            "base": dict(config.base),
            "dataset": str(ds.path),
            "best": None if best is None else {"trial": best["trial"], "config": best_config},
            "trials": ranked,
        },
    )
    atomic_write_text(out / CSV_FILE, ranked_csv(ranked))
    return SweepResult(
        out, ranked, best, best_config, n_trained, len(records) - n_trained, metric, elapsed
    )


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
                r["rank"],
                r["trial"],
                *[r["params"].get(p, "") for p in params],
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
    )
    return run_sweep(dataset, store, out_dir, config, progress=progress)
