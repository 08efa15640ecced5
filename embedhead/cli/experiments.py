"""CLI commands of the experiments area: ``sweep``, ``experiment``, ``baselines``, ``report``."""

from __future__ import annotations

from typing import Any

import click

from embedhead.cli.common import (
    comma_list,
    dataset_argument,
    field_default,
    head_option,
    library_errors,
    out_dir_option,
    quiet_option,
    seed_option,
    store_option,
    task_option,
)
from embedhead.experiments.config import (
    DEFAULT_KS,
    MODELS,
    PRUNERS,
    SAMPLERS,
    SWEEP_BATCH_TRIALS,
    SWEEP_PRUNER,
    SWEEP_REPEATS,
    SWEEP_SAMPLER,
    SWEEP_SEED,
    SWEEP_TRIALS,
    SWEEP_WORKERS,
    BaselineConfig,
)
from embedhead.heads.presets import PRESET_NAMES


def _echo_top(ranked: list[dict[str, Any]], metric: str, top: int = 5) -> None:
    shown = [r for r in ranked if r["rank"] is not None][:top]
    shown += [r for r in ranked if r["status"] == "failed"][: max(top - len(shown), 1)]
    n_pruned = sum(r["status"] == "pruned" for r in ranked)
    for row in shown:
        params = " ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items()
        )
        if row["status"] != "ok":
            click.echo(f"  trial {row['trial']}: FAILED ({row['error']})  {params}")
            continue
        click.echo(
            f"  #{row['rank']} trial {row['trial']}: val {metric} "
            f"{row['val_mean']:.4f} ± {row['val_std']:.4f}  {params}"
        )
    if n_pruned:
        click.echo(f"  ({n_pruned} trial(s) pruned early, not ranked)")


@click.command("sweep")
@dataset_argument
@store_option
@out_dir_option("Sweep folder; an existing one with the same settings is resumed.")
@click.option(
    "--trials", type=int, default=SWEEP_TRIALS, show_default=True, help="Number of trials."
)
@click.option(
    "--repeats",
    type=int,
    default=SWEEP_REPEATS,
    show_default=True,
    help="Training seeds per trial.",
)
@click.option(
    "--space",
    "space_file",
    type=click.Path(path_type=str),
    default=None,
    help="Search space (JSON/YAML). Default: the thesis space (lr, weight decay, dropout, "
    "layers, units).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=str),
    default=None,
    help="Fixed TrainConfig/HeadConfig overrides for every trial (JSON).",
)
@task_option(None, "Task.")
@head_option(None, "Head.")
@click.option("--epochs", type=int, default=None, help="Maximum epochs per trial.")
@click.option(
    "--preset",
    type=click.Choice(PRESET_NAMES),
    default=None,
    help="Base hyperparameters of every trial (under --config and flags); thesis: the thesis's.",
)
@click.option("--metric", default=None, help="Validation metric to rank by (default roc_auc / r2).")
@click.option(
    "--workers",
    type=int,
    default=SWEEP_WORKERS,
    show_default=True,
    help="Local processes on the study (sharing one data load, copy-on-write); 0 = one per core.",
)
@click.option(
    "--batch-trials",
    type=click.IntRange(min=1),
    default=SWEEP_BATCH_TRIALS,
    show_default=True,
    help="Trials each process asks for at once; those with the same head shape (kind, depth, "
    "conv) train together in one pass over the data. 1 = one trial at a time.",
)
@click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    default=SWEEP_SAMPLER,
    show_default=True,
    help="Optuna sampler (random: trial i always gets the same seeded config; grid: choices "
    "and integer ranges only).",
)
@click.option(
    "--pruner",
    type=click.Choice(PRUNERS),
    default=SWEEP_PRUNER,
    show_default=True,
    help="Stop bad trials early on the per-epoch validation metric.",
)
@click.option(
    "--storage",
    default=None,
    help="Study storage: a database URL Optuna accepts (postgresql://..., sqlite:///...) or a "
    "journal file, shared by every process/machine that joins. Default: OUT/study.journal.",
)
@click.option(
    "--study-name",
    default=None,
    help="Study to create or join in --storage (default embedhead-sweep).",
)
@seed_option(SWEEP_SEED)
@quiet_option
@library_errors
def sweep_command(
    dataset: str,
    store: str,
    out_dir: str,
    trials: int,
    repeats: int,
    space_file: str | None,
    config_file: str | None,
    task: str | None,
    head_kind: str | None,
    epochs: int | None,
    preset: str | None,
    metric: str | None,
    workers: int,
    batch_trials: int,
    sampler: str,
    pruner: str,
    storage: str | None,
    study_name: str | None,
    seed: int,
    quiet: bool,
) -> None:
    """Hyper-parameter search on the cached embeddings: an Optuna study (resumable, shareable).

    Writes sweep.json / sweep.csv (finished trials ranked by the validation metric, then pruned
    and failed ones), the study (OUT/study.journal unless --storage; rerun the same command to
    resume, or start it on more machines with the same --storage/--study-name to share the
    search) and best.json, which `embedhead train --config best.json` reuses.
    `optuna-dashboard OUT/study.journal` shows the study live.

    \b
    Example:
      embedhead sweep ds/ --store ds.zarr --out sweep/ --trials 20 --head pooled --epochs 10
      embedhead sweep ds/ --store ds.zarr --out sweep/ --space space.json --repeats 3
      embedhead sweep ds/ --store ds.zarr --out sweep/ --storage postgresql://db/hp \\
          --study-name chicken-pooled      # same command on every machine
      embedhead train ds/ --store ds.zarr --out best-run/ --config sweep/best.json
    """
    from embedhead.experiments.sweep import sweep_from_files

    overrides: dict[str, Any] = {}
    if preset is not None:
        overrides["preset"] = preset
    if task is not None:
        overrides["task"] = task
    if head_kind is not None:
        overrides["head"] = head_kind
    if epochs is not None:
        overrides["epochs"] = epochs

    def progress(rec: dict[str, Any]) -> None:
        if quiet:
            return
        keys = ("loss", "accuracy", "roc_auc", "mse", "r2")
        reps = rec.get("repeats") or [{}]
        val = reps[-1].get("val") or {}
        summary = " ".join(f"val_{k}={val[k]:.4f}" for k in keys if isinstance(val.get(k), float))
        if rec.get("status") == "pruned":
            summary = rec.get("pruned", "pruned")
        elif rec.get("status") != "ok":
            summary = f"FAILED: {rec.get('error')}"
        click.echo(f"trial {rec['trial']}: {summary}", err=True)

    result = sweep_from_files(
        dataset,
        store,
        out_dir,
        space_file=space_file,
        config_file=config_file,
        overrides=overrides,
        n_trials=trials,
        repeats=repeats,
        seed=seed,
        workers=workers,
        metric=metric,
        sampler=sampler,
        pruner=pruner,
        storage=storage,
        study_name=study_name,
        batch_trials=batch_trials,
        progress=progress,
    )
    click.echo(
        f"{result.n_trained} trained, {result.n_resumed} resumed, "
        f"{result.elapsed_s:.1f} s; ranked by val {result.metric}:"
    )
    _echo_top(result.ranked, result.metric)
    click.echo(f"results: {result.out_dir / 'sweep.csv'}")
    if result.best_config is not None:
        click.echo(f"best config: {result.out_dir / 'best.json'}")
        return
    failed = [r for r in result.ranked if r["status"] == "failed"]
    reason = failed[0]["error"] if failed else f"no trial has a finite validation {result.metric}"
    raise click.ClickException(f"no best config ({len(failed)} trial(s) failed): {reason}")


@click.command("experiment")
@click.argument("file", type=click.Path(path_type=str))
@out_dir_option("Results folder.")
@click.option(
    "--preset",
    type=click.Choice(PRESET_NAMES),
    default=None,
    help="Hyperparameters under the file's config (thesis: the thesis's); replaces the file's"
    ' own "preset".',
)
@quiet_option
@library_errors
def experiment_command(file: str, out_dir: str, preset: str | None, quiet: bool) -> None:
    """The thesis's tables from one experiment file (species, tasks, repeats, train sizes).

    Per-species test metrics (mean ± std over repeats), cross-species matrix (test pairs
    sharing a sequence with the training species' train/val pairs removed and counted),
    learning curve, regression metrics, calibration and metrics by identity/length bin, as
    Markdown + CSV/JSON, plus report.md. With "baselines"/"random_backbone": the head beside
    the embedding-free baselines and the same head on a RANDOM backbone of the store's shape
    (its store built once in OUT/random_backbone/), with ms/pair without/with the embedding.

    \b
    Example:
      embedhead experiment experiment.json --out results/
    \b
    experiment.json:
      {"datasets": {"chicken": {"dataset": "ds_chicken/", "store": "chicken.zarr"},
                    "zebrafish": {"dataset": "ds_zebrafish/", "store": "zebrafish.zarr"}},
       "tasks": ["classification", "regression"], "repeats": 5,
       "train_sizes": [100, 1000], "config": {"head": "pooled", "epochs": 20},
       "baselines": true, "random_backbone": true}
    """
    from embedhead.experiments.experiment import run_experiment_file

    def progress(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    result = run_experiment_file(file, out_dir, progress=progress, preset=preset)
    click.echo(f"tables: {result.out_dir / 'experiment.md'}")
    click.echo(f"report: {result.report.path}")


@click.command("baselines")
@dataset_argument
@out_dir_option("Results folder.")
@task_option(field_default(BaselineConfig, "task"))
@click.option(
    "--k",
    "ks",
    default=comma_list(DEFAULT_KS),
    show_default=True,
    help="Comma-separated k values of the k-mer profile baseline.",
)
@click.option(
    "--models",
    default=comma_list(MODELS),
    show_default=True,
    help="Comma-separated baselines to fit (aligner: Smith-Waterman with the dataset's"
    " scoring scheme, score per length).",
)
@click.option(
    "--store",
    "store",
    type=click.Path(path_type=str),
    default=None,
    help="Embedding store of the dataset: adds the head trained on it and the same head on a"
    " RANDOM backbone of the same shape (store built once in OUT/random_backbone/), with ms/pair"
    " without and with the embedding.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=str),
    default=None,
    help="TrainConfig/HeadConfig overrides of the head rows (JSON/YAML; with --store).",
)
@click.option(
    "--preset",
    type=click.Choice(PRESET_NAMES),
    default=None,
    help="Base hyperparameters of the head rows (under --config; with --store).",
)
@head_option(None, "Head of the head rows (with --store).")
@seed_option(field_default(BaselineConfig, "seed"))
@library_errors
def baselines_command(
    dataset: str,
    out_dir: str,
    task: str,
    ks: str,
    models: str,
    store: str | None,
    config_file: str | None,
    preset: str | None,
    head_kind: str | None,
    seed: int,
) -> None:
    """Baselines without embeddings (k-mer, GC, length, all three, a local aligner), same splits.

    With --store, two more rows: the head on the store's embeddings, and the same head on a
    random backbone of the store's backbone shape (what length and composition alone give).

    \b
    Example:
      embedhead baselines ds/ --out baselines/
      embedhead baselines ds/ --out baselines-reg/ --task regression --k 3,4,5
      embedhead baselines ds/ --out baselines/ --store ds.zarr --head pooled --preset thesis
    """
    from embedhead.errors import ConfigError
    from embedhead.experiments.baselines import baselines_markdown, run_and_write

    try:
        k_values = tuple(int(k) for k in ks.split(",") if k.strip())
    except ValueError as exc:
        raise ConfigError(f"--k must be comma-separated integers, not {ks!r}") from exc
    config = BaselineConfig(
        models=tuple(m.strip() for m in models.split(",") if m.strip()),
        ks=k_values,
        task=task,
        seed=seed,
    )
    overrides: dict[str, Any] = {}
    if preset is not None:
        overrides["preset"] = preset
    if config_file is not None:
        from embedhead.heads.train import load_config_overrides

        overrides.update(load_config_overrides(config_file))
    if head_kind is not None:
        overrides["head"] = head_kind
    if store is None:
        if overrides:
            raise ConfigError("--config, --preset and --head describe the head rows: give --store")
        results, path = run_and_write(dataset, out_dir, config)
    else:
        from embedhead.experiments.controls import run_and_write_all

        results, path = run_and_write_all(
            dataset, out_dir, config, store=store, overrides=overrides
        )
    dropped = next(
        (r.extra["n_dropped_non_finite"] for r in results if r.extra.get("n_dropped_non_finite")),
        None,
    )
    if dropped and any(dropped.values()):
        click.echo(
            f"dropped {sum(dropped.values())} positive(s) with a NaN/inf norm_score: {dropped}",
            err=True,
        )
    click.echo(baselines_markdown(results), nl=False)
    click.echo(f"results: {path}")


@click.command("report")
@click.argument("directory", type=click.Path(path_type=str))
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=str),
    default=None,
    help="Markdown file to write (default DIRECTORY/report.md).",
)
@click.option("--no-plots", is_flag=True, help="Markdown only, even with matplotlib installed.")
@library_errors
def report_command(directory: str, out_file: str | None, no_plots: bool) -> None:
    """Markdown summary (+ PNG plots with the `plots` extra) of every result in a folder.

    Reads sweep.json, experiment.json, baselines.json and run.json files found below
    DIRECTORY. Without matplotlib the report says plots were skipped.

    \b
    Example:
      embedhead report results/
    """
    from embedhead.report.render import write_report

    report = write_report(directory, out=out_file, plots=not no_plots)
    click.echo(f"report: {report.path}")
    if report.plots_skipped and not no_plots:
        click.echo("plots skipped: install the plots extra (pip install 'embedhead[plots]')")
    elif report.plots:
        click.echo(f"{len(report.plots)} plot(s) in {report.plots[0].parent}")


COMMANDS: list[click.Command] = [
    sweep_command,
    experiment_command,
    baselines_command,
    report_command,
]
