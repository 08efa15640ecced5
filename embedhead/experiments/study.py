"""The adapter between Optuna and the heads: storage, samplers, pruners and the trial loop.

One trial = one configuration sampled from a :class:`~embedhead.experiments.sweep.SearchSpace`,
trained ``repeats`` times (seeds ``train_seed + r``) on already-loaded data
(:class:`~embedhead.heads.data.HeadData`); its value is the mean validation metric.

Storage: by default an Optuna *journal file* (``study.journal`` in the sweep folder). Why not
SQLite: the journal is an append-only log where every change is one ``write`` of complete lines,
fsynced, under a lock file; a process killed with ``-9`` leaves at worst a torn last line, which
:func:`open_storage` cuts before appending (and a lock left behind is broken after Optuna's 30 s
grace period). SQLite survives kill -9 too, but concurrent writers fail with "database is
locked", which Optuna's own documentation warns about for parallel studies. ``--storage URL``
passes any URL Optuna accepts (``postgresql://...``, ``mysql://...``, ``sqlite:///...``) through.

Trial records live in the study itself (user attributes): ``params`` (the decoded configuration),
``overrides``, ``repeats`` (one dict per training seed: val/test metrics, epochs), ``error`` for
a failed trial, ``pruned_epoch`` for a pruned one, ``host``/``pid`` of the process that ran it.
A trial whose process died (killed, Ctrl-C) is marked ``discarded: "interrupted"`` and its
configuration is enqueued again, so a resumed sweep loses nothing and counts nothing twice; a
trial asked beyond the budget (several processes racing for the last slot) is ``discarded:
"surplus"``. Discarded trials are FAIL in Optuna and ignored by the ranking.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from embedhead.errors import ConfigError, EmbedheadError
from embedhead.experiments.config import PRUNERS, SAMPLERS
from embedhead.heads.batched import group_members
from embedhead.heads.config import HeadConfig, TrainConfig
from embedhead.heads.presets import expand_preset
from embedhead.heads.train import make_configs
from embedhead.processes import pid_running

STUDY_FILE = "study.journal"
DEFAULT_STUDY_NAME = "embedhead-sweep"
SPEC_ATTR = "embedhead_spec"
INPUTS_ATTR = "embedhead_inputs"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
SHORTHANDS = ("layers", "units")

FitFn = Callable[..., Any]
BatchFitFn = Callable[..., list[Any]]  # heads.batched.fit_batched's signature
ProgressFn = Callable[[dict[str, Any]], None]
# a space entry: ("float", low, high, log) | ("int", low, high) | ("choice", values, encoded)
Entry = tuple[Any, ...]


# ----------------------------------------------------------------------------- sampling
def params_to_overrides(
    params: Mapping[str, Any], base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Trial params (+ base overrides) -> flat TrainConfig/HeadConfig overrides.

    ``layers`` and ``units`` are shorthands for ``hidden_sizes = [units] * layers``.
    """
    out = dict(base or {})
    out.update({k: v for k, v in params.items() if k not in SHORTHANDS})
    if any(k in params for k in SHORTHANDS):
        given = expand_preset(out).get("hidden_sizes")
        default_hidden = list(given or HeadConfig(d_model=1).hidden_sizes)
        layers = int(params.get("layers", len(default_hidden)))
        units = int(params.get("units", default_hidden[0]))
        out["hidden_sizes"] = [units] * layers
    return out


def distribution(entry: Entry) -> BaseDistribution:
    """The Optuna distribution of one parsed space entry."""
    if entry[0] == "float":
        return FloatDistribution(entry[1], entry[2], log=entry[3])
    if entry[0] == "int":
        return IntDistribution(entry[1], entry[2])
    return CategoricalDistribution(entry[1])


def draw(dist: BaseDistribution, rng: np.random.Generator) -> Any:
    """One value of ``dist`` from ``rng`` (the random sampler's rule)."""
    if isinstance(dist, FloatDistribution):
        if dist.log:
            value = math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
        else:
            value = rng.uniform(dist.low, dist.high)
        return float(min(max(value, dist.low), dist.high))
    if isinstance(dist, IntDistribution):
        return int(rng.integers(dist.low, dist.high + 1))
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    raise ConfigError(f"unsupported distribution {dist!r}")


def trial_rng(seed: int, number: int, name: str) -> np.random.Generator:
    """The generator of parameter ``name`` of trial ``number``: same seed -> same values."""
    return np.random.default_rng([seed, number, zlib.crc32(name.encode())])


class TrialSeededSampler(optuna.samplers.RandomSampler):
    """Random search where trial ``i`` always gets the same values, whichever process asks.

    Optuna's own RandomSampler draws from one generator per process, so several processes with
    the same seed would propose the same configurations; here each value is drawn from a
    generator seeded by ``(seed, trial number, parameter name)``.
    """

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self._base_seed = seed

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return draw(param_distribution, trial_rng(self._base_seed, trial.number, param_name))


def make_sampler(
    name: str, seed: int, entries: Mapping[str, Entry], *, parallel: bool, batch: int = 1
) -> optuna.samplers.BaseSampler:
    """``tpe`` (startup trials drawn like ``random``), ``random`` or ``grid`` (choices and integer
    ranges only). ``parallel``: other processes share the study, so TPE/grid mix the process id
    into their seed. TPE lies about running trials (constant liar) when other processes share the
    study or ``batch`` > 1 trials are asked at once, so it does not propose K near-copies."""
    own_seed = seed if not parallel else int(zlib.crc32(f"{seed}-{os.getpid()}".encode()))
    if name == "random":
        return TrialSeededSampler(seed)
    if name == "tpe":
        sampler = optuna.samplers.TPESampler(seed=own_seed, constant_liar=parallel or batch > 1)
        sampler._random_sampler = TrialSeededSampler(seed)  # startup trials == `random`'s
        return sampler
    if name == "grid":
        return _GridSampler(grid_space(entries), seed=own_seed)
    raise ConfigError(f"unknown sampler {name!r} (choose {', '.join(SAMPLERS)})")


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is exhausted (that only
    works inside ``study.optimize``; here the trial budget stops the loop)."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def grid_space(entries: Mapping[str, Entry]) -> dict[str, list[Any]]:
    """Every point of a grid search; ConfigError for a continuous (float) dimension."""
    grid: dict[str, list[Any]] = {}
    for name, entry in entries.items():
        if entry[0] == "float":
            raise ConfigError(
                f"--sampler grid needs choices or integer ranges, but {name!r} is continuous "
                "(give it a list of values)"
            )
        grid[name] = list(range(entry[1], entry[2] + 1)) if entry[0] == "int" else list(entry[1])
    return grid


def grid_size(entries: Mapping[str, Entry]) -> int:
    """Number of points of the grid of ``entries``."""
    return int(np.prod([len(v) for v in grid_space(entries).values()], dtype=np.int64))


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """``median`` (from the 6th trial, from epoch 2 on), ``hyperband`` (1..max epochs), ``none``."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r} (choose {', '.join(PRUNERS)})")


# ----------------------------------------------------------------------------- storage
def repair_journal(path: Path) -> None:
    """Cut a torn last line (a writer killed mid-append) under the journal's own lock."""
    if not path.is_file():
        return
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        raw = path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            with open(path, "r+b") as fh:
                fh.truncate(raw.rfind(b"\n") + 1)
                os.fsync(fh.fileno())
    finally:
        lock.release()


def open_storage(storage: str | Path) -> BaseStorage | str:
    """A journal file path -> its JournalStorage (repaired); a URL is given to Optuna as is."""
    text = str(storage)
    if "://" in text:
        return text
    path = Path(text)
    repair_journal(path)
    return JournalStorage(JournalFileBackend(str(path)))


@dataclass(frozen=True)
class StudyPlan:
    """Everything a process needs to join the study and run trials (fork-safe, no handles)."""

    storage: str
    study_name: str
    direction: str
    sampler: str
    pruner: str
    seed: int
    entries: dict[str, Entry]
    base: dict[str, Any]
    metric: str
    repeats: int
    train_seed: int
    budget: int
    max_epochs: int
    spec: dict[str, Any] = field(default_factory=dict)
    storage_shared: bool = False  # other processes or machines may be on this study
    batch_trials: int = 1  # trials asked at once and trained together (heads.batched)
    inputs: dict[str, Any] = field(default_factory=dict)  # store, backbone, dataset (see below)


def load_study(plan: StudyPlan, *, parallel: bool) -> optuna.Study:
    """Create or join the study; ConfigError when it holds a different sweep."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            storage=open_storage(plan.storage),
            study_name=plan.study_name,
            direction="minimize" if plan.direction == "min" else "maximize",
            sampler=make_sampler(
                plan.sampler, plan.seed, plan.entries, parallel=parallel, batch=plan.batch_trials
            ),
            pruner=make_pruner(plan.pruner, plan.max_epochs),
            load_if_exists=True,
        )
    except (ImportError, ValueError, RuntimeError) as exc:  # bad URL, missing DB driver, ...
        raise ConfigError(f"cannot open study storage {plan.storage!r}: {exc}") from exc
    wanted_direction = "MINIMIZE" if plan.direction == "min" else "MAXIMIZE"
    if study.direction.name != wanted_direction:
        raise ConfigError(
            f"study {plan.study_name!r} optimises in direction {study.direction.name.lower()}; "
            "choose another --study-name"
        )
    check_inputs(study, plan)
    old = study.user_attrs.get(SPEC_ATTR)
    if old is None:
        study.set_user_attr(SPEC_ATTR, plan.spec)
    elif old != plan.spec:
        differ = sorted(k for k in plan.spec.keys() | old.keys() if old.get(k) != plan.spec.get(k))
        raise ConfigError(
            f"study {plan.study_name!r} in {plan.storage} holds a different sweep "
            f"({', '.join(differ)} differ); resume with the same settings or choose a new "
            "--out / --study-name"
        )
    return study


# ----------------------------------------------------------------------------- sweep inputs
INPUT_KEYS = ("backbone", "store_options", "dataset_fingerprint")  # must match on resume


def describe_inputs(inputs: Mapping[str, Any]) -> str:
    """``store S (backbone NAME, weights HASH), dataset D (fingerprint F)`` for messages."""
    backbone = inputs.get("backbone") or {}
    digest = str(backbone.get("key") or backbone.get("weight_hash") or "?")[:12]
    options = inputs.get("store_options")
    shown = f", options {json.dumps(options, sort_keys=True)}" if options else ""
    return (
        f"store {inputs.get('store') or '(an open reader)'} "
        f"(backbone {inputs.get('backbone_name')!r}, identity {digest}"
        f"{shown}), dataset {inputs.get('dataset')} (fingerprint "
        f"{str(inputs.get('dataset_fingerprint'))[:12]})"
    )


def check_inputs(study: optuna.Study, plan: StudyPlan) -> None:
    """Record what the sweep trains on (store path, backbone identity, dataset fingerprint) in
    the study, or refuse (ConfigError naming both) when the study was run on another backbone,
    store layout or dataset. The store's path is recorded but not compared: a moved or copied
    store with the same backbone identity and options holds the same embeddings."""
    if not plan.inputs:
        return
    old = study.user_attrs.get(INPUTS_ATTR)
    if old is None:
        study.set_user_attr(INPUTS_ATTR, plan.inputs)
        return
    differ = [k for k in INPUT_KEYS if old.get(k) != plan.inputs.get(k)]
    if differ:
        what = ", ".join(k.replace("_", " ") for k in differ)
        raise ConfigError(
            f"study {plan.study_name!r} in {plan.storage} was run on {describe_inputs(old)}, "
            f"not on {describe_inputs(plan.inputs)} ({what} differ); trials on other embeddings "
            "or pairs cannot be ranked together: use the original store and dataset, or a new "
            "--out / --study-name"
        )


def recover_interrupted(study: optuna.Study, budget: int | None = None) -> int:
    """Trials left RUNNING by a dead process of this host -> discarded, their configs enqueued.

    Returns how many were re-enqueued. When two processes recover the same trial, Optuna's
    storage lets only one finish it, and only that one enqueues the retry. With ``budget``, a
    dead trial whose retry would exceed it (one asked beyond the budget, e.g. the next of a
    batch, killed before it was marked surplus) is marked ``discarded: "surplus"`` instead.
    """
    host = socket.gethostname()
    storage = study._storage
    dead = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or not isinstance(pid, int) or pid_running(pid):
            continue
        dead.append(t)
    dead_ids = {t._trial_id for t in dead}
    n = 0
    for t in sorted(dead, key=lambda t: t.number):
        live = sum(
            1
            for x in study.get_trials(deepcopy=False)
            if not is_discarded(x) and x._trial_id not in dead_ids
        )
        reason = "surplus" if budget is not None and live >= budget else "interrupted"
        try:
            storage.set_trial_user_attr(t._trial_id, "discarded", reason)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue
        if reason == "interrupted":
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
            n += 1
    return n


def is_discarded(t: FrozenTrial) -> bool:
    """An interrupted (re-enqueued) or surplus trial: not a result."""
    return "discarded" in t.user_attrs


def in_budget(study: optuna.Study, number: int, budget: int) -> bool:
    """Whether trial ``number`` is one of the first ``budget`` non-discarded trials."""
    before = sum(
        1 for t in study.get_trials(deepcopy=False) if t.number < number and not is_discarded(t)
    )
    return before < budget


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished (complete, pruned, failed) trials that are results, in trial order."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=FINISHED)
        if not is_discarded(t) and "params" in t.user_attrs
    ]


# ----------------------------------------------------------------------------- one trial
def suggest(trial: Trial, entries: Mapping[str, Entry]) -> dict[str, Any]:
    """Ask the sampler for every entry -> decoded parameters (JSON-encoded choices decoded)."""
    params: dict[str, Any] = {}
    for name, entry in entries.items():
        if entry[0] == "float":
            params[name] = trial.suggest_float(name, entry[1], entry[2], log=entry[3])
        elif entry[0] == "int":
            params[name] = trial.suggest_int(name, entry[1], entry[2])
        else:
            value = trial.suggest_categorical(name, entry[1])
            params[name] = json.loads(str(value)) if entry[2] else value
    return dict(sorted(params.items()))


def _epoch_reporter(trial: Trial, metric: str) -> ProgressFn:
    """A ``fit`` progress callback: report the epoch's validation metric, prune when told."""

    def report(row: dict[str, Any]) -> None:
        value = row.get("val_loss") if metric == "loss" else (row.get("val") or {}).get(metric)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return
        trial.report(float(value), int(row["epoch"]))
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

    return report


def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (float(v) if math.isfinite(v) else None)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _mean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()) if arr.size and np.isfinite(arr).all() else math.nan


def run_one(
    study: optuna.Study,
    trial: Trial,
    plan: StudyPlan,
    data: Any,
    fit_fn: FitFn,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Train one asked trial (all repeats), tell Optuna, return its record."""
    start = time.perf_counter()
    record: dict[str, Any] = {"trial": trial.number}
    state = TrialState.FAIL
    value: float | None = None
    try:
        params = suggest(trial, plan.entries)
        overrides = params_to_overrides(params, plan.base)
        record.update(params=params, overrides=overrides)
        trial.set_user_attr("params", params)
        trial.set_user_attr("overrides", overrides)
        repeats: list[dict[str, Any]] = []
        for r in range(plan.repeats):
            head_config, train_config = make_configs(
                data.d_model, {**overrides, "seed": plan.train_seed + r}
            )
            reporter = _epoch_reporter(trial, plan.metric) if r == 0 else None
            result = fit_fn(head_config, train_config, data, progress=reporter)
            repeats.append(_repeat_record(train_config, result))
        record["repeats"] = repeats
        trial.set_user_attr("repeats", repeats)
        vals = [rep["val"].get(plan.metric) for rep in repeats]
        mean = _mean([math.nan if v is None else v for v in vals])
        if math.isfinite(mean):
            state, value = TrialState.COMPLETE, mean
        else:
            record["error"] = f"validation {plan.metric} is not finite"
    except optuna.TrialPruned as exc:
        state = TrialState.PRUNED
        record["pruned"] = str(exc)
        trial.set_user_attr("pruned_epoch", int(str(exc).rsplit(" ", 1)[-1]))
    except EmbedheadError as exc:  # a NaN loss at a too-high learning rate, a bad value, ...
        record["error"] = str(exc)
    except Exception as exc:  # a bug: record it, then let it surface
        record["error"] = f"{type(exc).__name__}: {exc}"
        trial.set_user_attr("error", record["error"])
        study.tell(trial, state=TrialState.FAIL)
        raise
    except BaseException:  # Ctrl-C, SystemExit: try this configuration again on resume
        trial.set_user_attr("discarded", "interrupted")
        study.tell(trial, state=TrialState.FAIL)
        study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        raise
    elapsed = round(time.perf_counter() - start, 4)
    record.update(elapsed_s=elapsed, status=_status(state))
    trial.set_user_attr("elapsed_s", elapsed)
    if "error" in record:
        trial.set_user_attr("error", record["error"])
    study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    if progress is not None:
        progress(record)
    return record


def _repeat_record(train_config: TrainConfig, result: Any) -> dict[str, Any]:
    return {
        "seed": train_config.seed,
        "val": _scalars(result.metrics.get("val", {})),
        "test": _scalars(result.metrics.get("test", {})),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
    }


@dataclass
class _Running:
    """One trial of a batch while it trains."""

    trial: Trial
    record: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    repeats: list[dict[str, Any]] = field(default_factory=list)
    state: TrialState | None = None  # set once the trial has ended (pruned or failed)


def run_batch(
    study: optuna.Study,
    trials: Sequence[Trial],
    plan: StudyPlan,
    data: Any,
    batch_fn: BatchFitFn,
    progress: ProgressFn | None,
    fit_fn: FitFn | None = None,
) -> list[dict[str, Any]]:
    """Train several asked trials together, tell Optuna about each, return their records.

    Repeat ``r`` of every trial is trained with seed ``train_seed + r``; trials whose heads
    share :func:`embedhead.heads.batched.batch_key` (up to ``plan.batch_trials`` of them) train
    in one pass over the data. A trial that shares its shape with no other trial of the batch
    trains alone by ``fit_fn`` when given (the lone run itself: a stack of one only adds the
    stacking's overhead). A pruned member stops (its other repeats are not run) while the
    others go on; a failed member is recorded with its error. ``elapsed_s`` of each trial is
    the batch's wall time divided by the number of trials in it.
    """
    start = time.perf_counter()
    runs = [_Running(t, {"trial": t.number}) for t in trials]
    try:
        for run in runs:
            try:
                params = suggest(run.trial, plan.entries)
                run.overrides = params_to_overrides(params, plan.base)
                run.record.update(params=params, overrides=run.overrides)
                run.trial.set_user_attr("params", params)
                run.trial.set_user_attr("overrides", run.overrides)
                make_configs(data.d_model, run.overrides)
            except EmbedheadError as exc:
                run.record["error"], run.state = str(exc), TrialState.FAIL
        for r in range(plan.repeats):
            live = [run for run in runs if run.state is None]
            configs = [
                make_configs(data.d_model, {**run.overrides, "seed": plan.train_seed + r})
                for run in live
            ]
            for group in group_members(configs, plan.batch_trials):
                members = [live[i] for i in group]
                reporters = [
                    _epoch_reporter(m.trial, plan.metric) if r == 0 else None for m in members
                ]
                if len(group) == 1 and fit_fn is not None:
                    outcomes = [_fit_alone(fit_fn, configs[group[0]], data, reporters[0])]
                else:
                    try:
                        outcomes = batch_fn([configs[i] for i in group], data, progress=reporters)
                    except EmbedheadError as exc:  # e.g. train_size beyond the split: all fail
                        outcomes = [exc] * len(group)
                for i, member, outcome in zip(group, members, outcomes, strict=True):
                    _take_outcome(member, configs[i][1], outcome)
        for run in runs:
            if run.state is not None:
                continue
            run.record["repeats"] = run.repeats
            run.trial.set_user_attr("repeats", run.repeats)
            vals = [rep["val"].get(plan.metric) for rep in run.repeats]
            mean = _mean([math.nan if v is None else v for v in vals])
            if math.isfinite(mean):
                run.state = TrialState.COMPLETE
                run.record["value"] = mean
            else:
                run.record["error"] = f"validation {plan.metric} is not finite"
                run.state = TrialState.FAIL
    except Exception as exc:  # a bug: record it on every unfinished trial, then let it surface
        for run in runs:
            run.trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            study.tell(run.trial, state=TrialState.FAIL)
        raise
    except BaseException:  # Ctrl-C, SystemExit: try these configurations again on resume
        for run in runs:
            run.trial.set_user_attr("discarded", "interrupted")
            study.tell(run.trial, state=TrialState.FAIL)
            study.enqueue_trial(dict(run.trial.params), user_attrs={"retry_of": run.trial.number})
        raise
    elapsed = round((time.perf_counter() - start) / max(len(runs), 1), 4)
    for run in runs:
        state = run.state or TrialState.FAIL
        value = run.record.pop("value", None)
        run.record.update(elapsed_s=elapsed, status=_status(state))
        run.trial.set_user_attr("elapsed_s", elapsed)
        run.trial.set_user_attr("batched", len(runs))
        if "error" in run.record:
            run.trial.set_user_attr("error", run.record["error"])
        study.tell(run.trial, value if state == TrialState.COMPLETE else None, state=state)
        if progress is not None:
            progress(run.record)
    return [run.record for run in runs]


def _fit_alone(
    fit_fn: FitFn,
    configs: tuple[HeadConfig, TrainConfig],
    data: Any,
    reporter: ProgressFn | None,
) -> Any:
    """One trial's lone training as a batch outcome: its FitResult, or the pruning / expected
    error that ended it (a bug's exception propagates, as in :func:`run_one`)."""
    try:
        return fit_fn(configs[0], configs[1], data, progress=reporter)
    except (optuna.TrialPruned, EmbedheadError) as exc:
        return exc


def _take_outcome(run: _Running, train_config: TrainConfig, outcome: Any) -> None:
    """One member's outcome of one repeat -> the trial's repeats, or its end (pruned/failed)."""
    if isinstance(outcome, optuna.TrialPruned):
        run.state = TrialState.PRUNED
        run.record["pruned"] = str(outcome)
        run.trial.set_user_attr("pruned_epoch", int(str(outcome).rsplit(" ", 1)[-1]))
    elif isinstance(outcome, EmbedheadError):  # a NaN loss at a too-high learning rate, ...
        run.record["error"], run.state = str(outcome), TrialState.FAIL
    elif isinstance(outcome, BaseException):
        raise outcome
    else:
        run.repeats.append(_repeat_record(train_config, outcome))


def _status(state: TrialState) -> str:
    return {TrialState.COMPLETE: "ok", TrialState.PRUNED: "pruned"}.get(state, "failed")


def status_of(t: FrozenTrial) -> str:
    """ok / pruned / failed / running of a stored trial."""
    if t.state == TrialState.RUNNING:
        return "running"
    return _status(t.state)


def run_trials(
    plan: StudyPlan,
    data: Any,
    fit_fn: FitFn,
    *,
    parallel: bool,
    progress: ProgressFn | None = None,
    batch_fn: BatchFitFn | None = None,
) -> int:
    """Join the study and train trials until the budget is used up; returns how many ran here.

    With ``batch_fn`` (:func:`embedhead.heads.batched.fit_batched`) and ``plan.batch_trials``
    K > 1, K trials are asked at once and trained by :func:`run_batch`; otherwise one at a time
    by ``fit_fn`` (:func:`run_one`).
    """
    study = load_study(plan, parallel=parallel)
    recover_interrupted(study, plan.budget)
    k = plan.batch_trials if batch_fn is not None else 1
    n = 0
    while True:
        asked: list[Trial] = []
        exhausted = False
        while len(asked) < k:
            trial = study.ask()
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            if not in_budget(study, trial.number, plan.budget):
                trial.set_user_attr("discarded", "surplus")
                study.tell(trial, state=TrialState.FAIL)
                exhausted = True
                break
            asked.append(trial)
        if batch_fn is not None and k > 1 and asked:
            run_batch(study, asked, plan, data, batch_fn, progress, fit_fn)
        elif asked:
            run_one(study, asked[0], plan, data, fit_fn, progress)
        n += len(asked)
        if exhausted:
            return n


def check_bounds(entries: Mapping[str, Entry], base: Mapping[str, Any], where: str) -> None:
    """Every extreme value of every entry makes a valid config (before anything is written)."""

    def extremes(entry: Entry) -> list[Any]:
        if entry[0] in ("float", "int"):
            return [entry[1], entry[2]]
        return [json.loads(v) for v in entry[1]] if entry[2] else list(entry[1])

    firsts = {name: extremes(entry)[0] for name, entry in entries.items()}
    for name, entry in entries.items():
        for value in extremes(entry):
            try:
                make_configs(1, params_to_overrides({**firsts, name: value}, base))
            except ConfigError as exc:
                raise ConfigError(
                    f"{where}: {name}={value!r} gives an invalid config: {exc}; check the "
                    "search space's ranges"
                ) from exc
