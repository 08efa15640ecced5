"""``embedhead experiment FILE``: the thesis's tables from one declarative file.

Experiment file (JSON, or YAML when PyYAML is installed); paths are relative to the file::

    {
      "datasets": {"chicken":   {"dataset": "ds_chicken/", "store": "chicken.zarr"},
                   "zebrafish": {"dataset": "ds_zebrafish/", "store": "zebrafish.zarr"}},
      "tasks": ["classification", "regression"],      default ["classification"]
      "repeats": 5,                                    seeds seed, seed+1, ...; default 3
      "train_sizes": [100, 1000],                      learning curve points; default []
      "cross_species": true,                           default true when >= 2 species
      "baselines": true,                               k-mer/GC/length/aligner baselines,
                                                       tabled beside the head; default false
      "random_backbone": true,                         the same head on a RANDOM backbone of
                                                       the store's shape; default = baselines
      "config": {"head": "pooled", "epochs": 20},      TrainConfig/HeadConfig overrides, or
      "config_file": "sweep/best.json",                ... a file of them (e.g. a sweep's best)
      "preset": "thesis",                              under both (embedhead.heads.presets)
      "seed": 0
    }

For every task, each species' data are loaded once (:func:`~embedhead.heads.train.load_data_for`)
and reused by every fit. Results (all on the test split):

- per-species table (Table 4.1 shape): one row per species, every metric as mean and std over
  the repeats;
- cross-species matrix: heads trained on species A (each repeat) evaluated on B's test pairs;
  cell = mean metric (accuracy / R2), diagonal = own test split; stores built by different
  backbones are refused (:class:`~embedhead.errors.IncompatibleError`). Off the diagonal, B's
  test pairs that share a sequence (ids are content hashes of the sequence text) with A's
  train or validation pairs are removed first; ``removed[i][j]`` / ``n_test[i][j]`` record how
  many were removed and how many remain (also printed);
- learning curve: mean and std of the metric per training-set size (plus the full size);
- ROC curve points and confusion matrix of repeat 0 per species (classification);
- repeat 0's test predictions per species: the reliability curve (10 bins) and Brier score
  (classification, ``calibration``) or a predicted-vs-true sample (<= 500 points) with R2
  (regression, ``scatter``), and metrics by identity bin and by length bin (``by_bin``);
- random backbone (``random_backbone``): per species, the same head config trained (same
  repeats) on a store of the same dataset embedded by a RANDOM backbone of the real store's
  shape, built once in ``OUT/random_backbone/<store name>/`` (species sharing a store share
  it, as they share the real one) and reused
  (:mod:`embedhead.experiments.controls`);
- head beside baselines (``beside_head``, when ``baselines`` or ``random_backbone``): the head,
  the random-backbone head and each baseline on the same test split, with ms per pair without
  and with the embedding (the backbone's speed is measured while building the random store);
- positives dropped for a NaN/inf regression target, per species and split
  (``dropped_non_finite``).

Written to the output folder: ``experiment.json``, ``experiment.md``, ``per_species_<task>.csv``,
``cross_species_<task>.csv``, ``learning_curve.csv``, ``baselines/<species>-<task>/`` when asked,
and ``report.md`` (+ plots with the ``plots`` extra) via
:func:`embedhead.report.render.write_report`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from embedhead.dataset import SPLITS, load_dataset
from embedhead.embed.random_store import RandomStore
from embedhead.errors import ConfigError, InputError
from embedhead.experiments.baselines import (
    BaselineConfig,
    roc_points,
    run_baselines,
    write_baselines,
)
from embedhead.experiments.controls import (
    RANDOM_DIR,
    build_random_store,
    head_seconds_per_pair,
    mean_pair_nucleotides,
    with_embedding,
)
from embedhead.fileio import atomic_write_text, make_out_dir, read_config_file, write_json
from embedhead.heads.config import TASKS
from embedhead.heads.data import check_identity, non_finite_targets
from embedhead.heads.evaluate import breakdown
from embedhead.heads.metrics import CLASSIFICATION_KEYS, REGRESSION_KEYS
from embedhead.heads.train import (
    evaluate_source,
    fit,
    load_config_overrides,
    load_data_for,
    make_configs,
    predict_source,
)
from embedhead.report.render import Report, write_report
from embedhead.results import RESULT_VERSION
from embedhead.stats import mean_std
from embedhead.store import open_store
from embedhead.tables import (
    beside_head_table,
    bins_table,
    cross_removed_note,
    cross_species_table,
    learning_curve_table,
    per_species_table,
)

EXPERIMENT_FILE = "experiment.json"
CROSS_METRIC = {"classification": "accuracy", "regression": "r2"}
_KNOWN_KEYS = {
    "datasets",
    "tasks",
    "repeats",
    "train_sizes",
    "cross_species",
    "baselines",
    "random_backbone",
    "config",
    "config_file",
    "seed",
    "preset",
}
ProgressFn = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class SpeciesSource:
    """One species: its dataset folder and embedding store."""

    name: str
    dataset: Path
    store: Path


@dataclass(frozen=True)
class ExperimentSpec:
    """A validated experiment file."""

    species: tuple[SpeciesSource, ...]
    tasks: tuple[str, ...] = ("classification",)
    repeats: int = 3
    train_sizes: tuple[int, ...] = ()
    cross_species: bool = True
    baselines: bool = False
    random_backbone: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str = "experiment"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (recorded in ``experiment.json``)."""
        return {
            "datasets": {
                s.name: {"dataset": str(s.dataset), "store": str(s.store)} for s in self.species
            },
            "tasks": list(self.tasks),
            "repeats": self.repeats,
            "train_sizes": list(self.train_sizes),
            "cross_species": self.cross_species,
            "baselines": self.baselines,
            "random_backbone": self.random_backbone,
            "config": dict(self.overrides),
            "seed": self.seed,
            "source": self.source,
        }


def _need(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_spec(data: Any, base_dir: Path, where: str) -> ExperimentSpec:
    """Validate a parsed experiment file; every error names the file and the key."""

    _need(isinstance(data, dict), where, "an experiment file must be a mapping")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    _need(not unknown, where, f"unknown key(s) {unknown} (known: {sorted(_KNOWN_KEYS)})")
    datasets = data.get("datasets")
    _need(
        isinstance(datasets, dict) and bool(datasets),
        where,
        "'datasets' must map species names to {dataset: DIR, store: PATH}",
    )
    species = []
    for name, entry in datasets.items():
        ok = isinstance(entry, dict) and {"dataset", "store"} <= set(entry)
        _need(ok, where, f"datasets.{name} needs 'dataset' and 'store'")
        species.append(
            SpeciesSource(
                str(name), base_dir / str(entry["dataset"]), base_dir / str(entry["store"])
            )
        )
    tasks = data.get("tasks", ["classification"])
    tasks = [tasks] if isinstance(tasks, str) else tasks
    _need(
        isinstance(tasks, list) and bool(tasks) and all(t in TASKS for t in tasks),
        where,
        f"'tasks' must be a list of {TASKS}, not {tasks!r}",
    )
    repeats = data.get("repeats", 3)
    _need(_is_int(repeats) and repeats >= 1, where, f"bad 'repeats' {repeats!r}")
    sizes = data.get("train_sizes", [])
    _need(
        isinstance(sizes, list) and all(_is_int(n) and n >= 1 for n in sizes),
        where,
        f"'train_sizes' must be positive integers, not {sizes!r}",
    )
    seed = data.get("seed", 0)
    _need(_is_int(seed) and seed >= 0, where, f"bad 'seed' {seed!r}")
    overrides: dict[str, Any] = {}
    if data.get("preset") is not None:  # under config_file and config (heads.presets)
        overrides["preset"] = data["preset"]
    if "config_file" in data:
        overrides.update(load_config_overrides(base_dir / str(data["config_file"])))
    config = data.get("config", {})
    _need(isinstance(config, dict), where, "'config' must be a mapping of overrides")
    overrides.update(config)
    overrides = {k: v for k, v in overrides.items() if k not in ("task", "seed", "train_size")}
    try:
        make_configs(1, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{where}: config: {exc}") from exc
    cross = data.get("cross_species", len(species) > 1)
    return ExperimentSpec(
        species=tuple(species),
        tasks=tuple(tasks),
        repeats=repeats,
        train_sizes=tuple(sorted(set(sizes))),
        cross_species=bool(cross) and len(species) > 1,
        baselines=bool(data.get("baselines", False)),
        random_backbone=bool(data.get("random_backbone", data.get("baselines", False))),
        overrides=overrides,
        seed=seed,
        source=where,
    )


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate an experiment file (JSON/YAML)."""
    path = Path(path)
    return parse_spec(read_config_file(path), path.parent, str(path))


@dataclass(frozen=True)
class ExperimentResult:
    """What :func:`run_experiment` wrote and computed."""

    out_dir: Path
    results: dict[str, Any]
    report: Report


def _summary(values: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric key: mean, std (ddof=1) and values over repeats (scalar metrics only)."""
    out: dict[str, dict[str, Any]] = {}
    for key, first in values[0].items():
        if key in ("n", "loss") or not isinstance(first, int | float) or isinstance(first, bool):
            continue
        vals = [float(v[key]) if v.get(key) is not None else float("nan") for v in values]
        mean, std = mean_std(vals)
        out[key] = {"mean": mean, "std": std, "values": vals}
    return out


def run_experiment(
    spec: ExperimentSpec,
    out_dir: str | Path,
    *,
    progress: ProgressFn | None = None,
    open_store_fn: Callable[[Path], Any] | None = None,
) -> ExperimentResult:
    """Run every table of ``spec`` and write them (see the module docstring).

    ``open_store_fn(path)`` opens a store (default :func:`embedhead.store.open_store`); the
    returned object needs the heads' ``StoreReader`` interface and ``close()`` (and ``attrs``,
    recording the backbone's shape, for ``random_backbone``).
    """

    if open_store_fn is None:
        open_store_fn = open_store
    say = progress or (lambda _msg: None)
    datasets = {
        s.name: _named(spec, s, "dataset", partial(load_dataset, s.dataset)) for s in spec.species
    }
    out = make_out_dir(out_dir)
    results: dict[str, Any] = {
        "kind": "experiment",
        "version": RESULT_VERSION,
        "spec": spec.to_dict(),
        "per_species": [],
        "cross_species": [],
        "learning_curve": [],
        "roc": {},
        "confusion_matrix": {},
        "calibration": {},
        "scatter": {},
        "by_bin": [],
        "random_backbone": [],
        "dropped_non_finite": [],
        "skipped": [],
        "beside_head": [],
    }
    controls: dict[str, RandomStore] = {}  # built once per species, reused by every task
    for task in spec.tasks:
        base = {**spec.overrides, "task": task}
        loaded = {}
        stores = []  # kept open for the task: a streamed loader reads from them
        random_rows: dict[str, dict[str, Any]] = {}
        try:
            for s in spec.species:
                say(f"[{task}] loading {s.name}")
                store = _named(spec, s, "store", partial(open_store_fn, s.store))
                stores.append(store)
                _, cfg = make_configs(store.d_model, base)
                loaded[s.name] = load_data_for(datasets[s.name], store, cfg, str(s.store))
                if task == "regression":
                    dropped = {n: non_finite_targets(datasets[s.name], n) for n in SPLITS}
                    results["dropped_non_finite"].append(
                        {"species": s.name, "task": task, "dropped": dropped}
                    )
                    if any(dropped.values()):
                        say(
                            f"[{task}] {s.name}: dropped {sum(dropped.values())} positive(s) "
                            f"with a NaN/inf norm_score ({dropped})"
                        )
                if spec.random_backbone and s.name not in controls:
                    say(f"[{task}] {s.name}: building the random-backbone store (cached)")
                    controls[s.name] = _named(
                        spec,
                        s,
                        "store",
                        partial(
                            build_random_store,
                            store,
                            s.dataset,
                            out / RANDOM_DIR / _safe_name(s.store.name),
                            seed=spec.seed,
                            where=s.store,
                        ),
                    )
            _run_task(spec, task, loaded, results, say, datasets)
        finally:
            for store in stores:
                store.close()
        for s in spec.species:
            if s.name in controls:
                random_rows[s.name] = _random_backbone(
                    spec, task, s.name, datasets[s.name], controls[s.name], say
                )
        if random_rows:
            results["random_backbone"].append({"task": task, "rows": list(random_rows.values())})
        _add_embedding_time(results, task, datasets, controls)
        if spec.baselines or random_rows:
            for s in spec.species:
                res: list[Any] = []
                if spec.baselines:
                    say(f"[{task}] baselines: {s.name}")
                    res = run_baselines(s.dataset, BaselineConfig(task=task, seed=spec.seed))
                    write_baselines(res, out / "baselines" / f"{s.name}-{task}", dataset=s.dataset)
                results["beside_head"].append(
                    _beside_head(results, task, s.name, res, random_rows.get(s.name))
                )
    _write_tables(results, out)
    write_json(out / EXPERIMENT_FILE, results)
    report = write_report(out)
    return ExperimentResult(out, results, report)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _random_backbone(
    spec: ExperimentSpec,
    task: str,
    name: str,
    dataset: Any,
    control: RandomStore,
    say: ProgressFn,
) -> dict[str, Any]:
    """The head config of ``spec`` trained (every repeat) on the random-backbone store."""
    with open_store(control.store) as store:
        _, cfg = make_configs(store.d_model, {**spec.overrides, "task": task})
        data = load_data_for(dataset, store, cfg, str(control.store))
        fits = _fit_repeats(spec, task, data, {}, say, f"{name} (random backbone)")
        seconds = head_seconds_per_pair(fits[0].head, data["test"])
        identity = dict(store.identity)
    return {
        "species": name,
        "n_repeats": spec.repeats,
        "n_pairs": fits[0].n_pairs,
        "metrics": _summary([f.metrics["test"] for f in fits]),
        "seconds_per_pair": seconds,
        "store": str(control.store),
        "backbone": identity.get("name"),
        "seconds_per_nt": control.seconds_per_nt,
    }


def _add_embedding_time(
    results: dict[str, Any],
    task: str,
    datasets: Mapping[str, Any],
    controls: Mapping[str, RandomStore],
) -> None:
    """``seconds_per_pair_with_embedding`` of the head and random-backbone rows of ``task``."""
    tables = [t for t in results["per_species"] if t["task"] == task]
    tables += [t for t in results["random_backbone"] if t["task"] == task]
    for table in tables:
        for row in table["rows"]:
            control = controls.get(row["species"])
            if control is None:
                continue
            nucleotides = mean_pair_nucleotides(datasets[row["species"]], "test", task)
            row["seconds_per_pair_with_embedding"] = with_embedding(
                row["seconds_per_pair"], nucleotides, control.seconds_per_nt
            )


def _beside_head(
    results: Mapping[str, Any],
    task: str,
    species: str,
    baselines: Sequence[Any],
    random_row: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The head's mean test metrics (per_species), the random-backbone head's and each
    baseline's, in one table."""
    table = next(t for t in results["per_species"] if t["task"] == task)
    head = next(r for r in table["rows"] if r["species"] == species)
    keys = list(table["metrics_order"])
    heads = [(f"head (mean of {head['n_repeats']})", head)]
    if random_row is not None:
        heads.append((f"random backbone (mean of {random_row['n_repeats']})", random_row))
    rows = [
        {
            "model": label,
            "metrics": {k: v["mean"] for k, v in row["metrics"].items()},
            "seconds_per_pair": row.get("seconds_per_pair"),
            "seconds_per_pair_with_embedding": row.get("seconds_per_pair_with_embedding"),
        }
        for label, row in heads
    ]
    rows += [
        {
            "model": b.model,
            "metrics": {k: b.test.get(k) for k in keys},
            "seconds_per_pair": b.extra.get("seconds_per_pair"),
            "no_embedding": True,
        }
        for b in baselines
    ]
    return {"task": task, "species": species, "metrics_order": keys, "rows": rows}


def _named(spec: ExperimentSpec, species: SpeciesSource, key: str, load: Callable[[], T]) -> T:
    """``load()``, its input errors prefixed with the experiment file and the entry's key."""
    try:
        return load()
    except (InputError, ConfigError) as exc:
        raise ConfigError(f"{spec.source}: datasets.{species.name}.{key}: {exc}") from exc


def _run_task(
    spec: ExperimentSpec,
    task: str,
    loaded: Mapping[str, Any],
    results: dict[str, Any],
    say: ProgressFn,
    datasets: Mapping[str, Any],
) -> None:
    """Per-species, learning-curve and cross-species results of one task into ``results``."""

    keys = CLASSIFICATION_KEYS if task == "classification" else REGRESSION_KEYS
    if spec.cross_species:
        first = spec.species[0]
        for s in spec.species[1:]:
            check_identity(loaded[first.name].identity, loaded[s.name].identity, s.store)
    rows = []
    heads: dict[str, list[Any]] = {}
    for s in spec.species:
        fits = _fit_repeats(spec, task, loaded[s.name], {}, say, s.name)
        heads[s.name] = [(f.head, f.threshold) for f in fits]
        rows.append(
            {
                "species": s.name,
                "n_repeats": spec.repeats,
                "n_pairs": fits[0].n_pairs,
                "metrics": _summary([f.metrics["test"] for f in fits]),
                "seconds_per_pair": head_seconds_per_pair(fits[0].head, loaded[s.name]["test"]),
            }
        )
        _predictions(task, s.name, datasets[s.name], loaded[s.name], fits[0], results)
        if spec.train_sizes:
            _learning_curve(spec, task, s.name, loaded[s.name], fits, results, say)
        if task == "classification":
            _roc_and_confusion(s.name, loaded[s.name], fits[0], results)
    results["per_species"].append({"task": task, "metrics_order": list(keys), "rows": rows})
    if spec.cross_species:
        results["cross_species"].append(_cross_matrix(task, loaded, heads, say))


SCATTER_POINTS = 500


def _predictions(
    task: str, name: str, dataset: Any, data: Any, fit_result: Any, results: dict[str, Any]
) -> None:
    """Repeat 0's test predictions: calibration or scatter, and metrics by identity/length bin."""
    test = data["test"]
    outputs, _ = predict_source(fit_result.head.to(test.device), test, 256)
    cut = 0.5 if fit_result.threshold is None else fit_result.threshold
    bins = breakdown(dataset, test, task, outputs, cut)
    if task == "classification":
        results["calibration"][name] = bins.pop("reliability")
    else:
        targets = test.pairs.targets
        keep = np.unique(np.linspace(0, len(targets) - 1, min(SCATTER_POINTS, len(targets))))
        keep = keep.astype(int)
        results["scatter"][name] = {
            "true": [float(v) for v in targets[keep]],
            "predicted": [float(v) for v in outputs[keep]],
            "r2": fit_result.metrics["test"].get("r2"),
            "n": len(targets),
        }
    results["by_bin"].append({"species": name, "task": task, **bins})


def _fit_repeats(
    spec: ExperimentSpec,
    task: str,
    data: Any,
    extra: Mapping[str, Any],
    say: ProgressFn,
    label: str,
) -> list[Any]:
    """``spec.repeats`` fits (seeds seed, seed+1, ...) on loaded data -> FitResults."""

    fits = []
    for r in range(spec.repeats):
        say(f"[{task}] {label}: repeat {r + 1}/{spec.repeats}")
        overrides = {**spec.overrides, **extra, "task": task, "seed": spec.seed + r}
        head_cfg, train_cfg = make_configs(data.d_model, overrides)
        fits.append(fit(head_cfg, train_cfg, data))
    return fits


def _learning_curve(
    spec: ExperimentSpec,
    task: str,
    name: str,
    data: Any,
    full_fits: Sequence[Any],
    results: dict[str, Any],
    say: ProgressFn,
) -> None:
    """Test metric (mean, std over repeats) per training-set size, the full size included."""
    full = len(data["train"])
    metric = CROSS_METRIC[task]
    for n in [*spec.train_sizes, full]:
        if n > full:
            results["skipped"].append(f"{name} {task}: train size {n} > {full} training pairs")
            continue
        if n == full:
            fits = full_fits
        else:
            fits = _fit_repeats(spec, task, data, {"train_size": n}, say, f"{name} n={n}")
        mean, std = mean_std([_num(f.metrics["test"].get(metric)) for f in fits])
        results["learning_curve"].append(
            {"species": name, "task": task, "train_size": n, "metric": metric}
            | {"mean": mean, "std": std}
        )


def _roc_and_confusion(name: str, data: Any, fit_result: Any, results: dict[str, Any]) -> None:
    """ROC curve points and confusion matrix of one fitted head on its test split."""

    test = data["test"]
    prob, _ = predict_source(fit_result.head.to(test.device), test, 256)
    roc = roc_points(test.pairs.labels, prob)
    if roc:
        results["roc"][name] = roc
    results["confusion_matrix"][name] = fit_result.metrics["test"]["confusion_matrix"]


def _seen_ids(data: Any) -> set[str]:
    """Sequence ids (content hashes) of a species' train and validation pairs."""
    ids = data.seq_ids
    seen: set[str] = set()
    for split in ("train", "val"):
        if split in data.splits:
            pairs = data[split].pairs
            seen.update(ids[i] for i in pairs.left)
            seen.update(ids[i] for i in pairs.right)
    return seen


def _unseen_test(data: Any, seen: set[str]) -> tuple[Any, int]:
    """``data``'s test pairs neither of whose sequences is in ``seen``, and how many were cut."""
    test = data["test"]
    ids = data.seq_ids
    pairs = test.pairs
    keep = np.array(
        [
            ids[a] not in seen and ids[b] not in seen
            for a, b in zip(pairs.left, pairs.right, strict=True)
        ],
        dtype=bool,
    )
    if keep.all():
        return test, 0
    return test.subset(np.flatnonzero(keep)), int((~keep).sum())


def _cross_matrix(
    task: str, loaded: Mapping[str, Any], heads: Mapping[str, list[Any]], say: ProgressFn
) -> dict[str, Any]:
    """Heads of each species (rows) on every species' test split (columns): mean metric.

    ``heads`` holds ``(head, threshold)`` per repeat: each head is cut at the threshold chosen
    on its own species' validation split. Off the diagonal, test pairs sharing a sequence
    with the training species' train/val pairs are removed (counted in ``removed``)."""

    metric = CROSS_METRIC[task]
    names = list(heads)
    matrix, removed, remaining = [], [], []
    for a in names:
        row, cut_row, n_row = [], [], []
        seen = _seen_ids(loaded[a])
        for b in names:
            say(f"[{task}] cross-species: {a} -> {b}")
            test_b, n_cut = (loaded[b]["test"], 0) if a == b else _unseen_test(loaded[b], seen)
            if n_cut:
                say(
                    f"[{task}] cross-species: removed {n_cut} of {n_cut + len(test_b)} {b} test "
                    f"pair(s) sharing a sequence with {a}'s train/val pairs"
                )
            vals = (
                [
                    _num(evaluate_source(h.to(test_b.device), test_b, 256, t or 0.5).get(metric))
                    for h, t in heads[a]
                ]
                if len(test_b)
                else [float("nan")]
            )
            row.append(mean_std(vals)[0])
            cut_row.append(n_cut)
            n_row.append(len(test_b))
        matrix.append(row)
        removed.append(cut_row)
        remaining.append(n_row)
    return {
        "task": task,
        "metric": metric,
        "species": names,
        "matrix": matrix,
        "removed": removed,
        "n_test": remaining,
    }


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def experiment_markdown(results: Mapping[str, Any]) -> str:
    """The experiment's tables as Markdown."""
    parts = ["# Experiment results (test split)\n"]
    for table in results["per_species"]:
        parts.append(f"## Per species: {table['task']} (mean ± std over repeats)\n")
        parts.append(per_species_table(table))
    for cross in results["cross_species"]:
        parts.append(f"## Cross-species {cross['metric']} ({cross['task']}; row = trained on)\n")
        parts.append(cross_species_table(cross))
        parts.append(cross_removed_note(cross))
    if results["learning_curve"]:
        parts.append("## Learning curve\n")
        parts.append(learning_curve_table(results["learning_curve"]))
    for table in results.get("beside_head", []):
        parts.append(f"## {table['species']}: head beside baselines ({table['task']}, test)\n")
        parts.append(beside_head_table(table))
    for entry in results.get("by_bin", []):
        for key, what in (("by_identity", "identity"), ("by_length", "max length (nt)")):
            if entry.get(key):
                parts.append(f"## {entry['species']}: {entry['task']} by {what} (repeat 0, test)\n")
                parts.append(bins_table(entry[key], entry["task"], what))
    for entry in results.get("dropped_non_finite", []):
        if any(entry["dropped"].values()):
            parts.append(
                f"{entry['species']} ({entry['task']}): positives dropped for a NaN/inf "
                f"norm_score: {entry['dropped']}\n"
            )
    if results["skipped"]:
        parts.append("Skipped: " + "; ".join(results["skipped"]) + "\n")
    return "\n".join(parts)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _write_tables(results: Mapping[str, Any], out: Path) -> None:
    for table in results["per_species"]:
        keys = table["metrics_order"]
        header = ["species", "n_repeats", *[f"{k}_{s}" for k in keys for s in ("mean", "std")]]
        rows = [
            [
                row["species"],
                row["n_repeats"],
                *[
                    row["metrics"].get(k, {}).get(stat, "")
                    for k in keys
                    for stat in ("mean", "std")
                ],
            ]
            for row in table["rows"]
        ]
        atomic_write_text(out / f"per_species_{table['task']}.csv", _csv(header, rows))
    for cross in results["cross_species"]:
        labels = cross["species"]
        rows = [[labels[i], *row] for i, row in enumerate(cross["matrix"])]
        atomic_write_text(
            out / f"cross_species_{cross['task']}.csv", _csv(["trained_on", *labels], rows)
        )
    if results["learning_curve"]:
        cols = ["species", "task", "train_size", "metric", "mean", "std"]
        rows = [[p[c] for c in cols] for p in results["learning_curve"]]
        atomic_write_text(out / "learning_curve.csv", _csv(cols, rows))
    atomic_write_text(out / "experiment.md", experiment_markdown(results))


def run_experiment_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    progress: ProgressFn | None = None,
    preset: str | None = None,
) -> ExperimentResult:
    """``embedhead experiment FILE --out DIR [--preset NAME]``: load, validate, run, write.

    ``preset`` (e.g. 'thesis') goes under the file's own config, as if the file said
    ``"preset": NAME`` (it replaces a preset the file names).
    """
    spec = load_spec(path)
    if preset is not None:
        overrides = {"preset": preset, **{k: v for k, v in spec.overrides.items() if k != "preset"}}
        try:
            make_configs(1, overrides)
        except ConfigError as exc:
            raise ConfigError(f"{path}: config: {exc}") from exc
        spec = dataclasses.replace(spec, overrides=overrides)
    return run_experiment(spec, out_dir, progress=progress)


__all__ = [
    "ExperimentResult",
    "ExperimentSpec",
    "SpeciesSource",
    "experiment_markdown",
    "load_spec",
    "parse_spec",
    "run_experiment",
    "run_experiment_file",
]
