"""CLI commands of the heads area: ``train``, ``evaluate``, ``predict`` (thin wrappers)."""

from __future__ import annotations

from typing import Any

import click

from embedhead.cli.common import (
    backbone_option,
    dataset_argument,
    device_option,
    field_default,
    head_option,
    library_errors,
    out_dir_option,
    quiet_option,
    seed_option,
    store_option,
    task_option,
)
from embedhead.embed.config import DEFAULT_DEVICE, EmbedConfig
from embedhead.heads.config import (
    EVAL_SPLIT,
    KEEP_CHOICES,
    LOADERS,
    SPLITS,
    THRESHOLD_RULES,
    TRAIN_REPEATS,
    HeadConfig,
    TrainConfig,
)
from embedhead.heads.presets import PRESET_NAMES


def _train(name: str) -> Any:
    return field_default(TrainConfig, name)


# Override keys taken from flags only when given on the command line (flag > --config > default).
_FLAG_KEYS = {
    "task": "task",
    "head_kind": "head",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "dropout": "dropout",
    "patience": "patience",
    "train_size": "train_size",
    "seed": "seed",
    "device": "device",
    "loader": "loader",
    "keep": "keep",
    "threshold": "threshold",
}


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source != click.core.ParameterSource.DEFAULT


@click.command("train")
@dataset_argument
@store_option
@out_dir_option("Run folder to create (must not exist or be empty).")
@task_option(_train("task"), "Predict the label (BCE) or the normalised score (MSE).")
@head_option(
    _train("head"),
    "thesis: conv1d on per-position embeddings; pooled: MLP on pooled vectors (fast).",
)
@click.option(
    "--epochs", type=int, default=_train("epochs"), show_default=True, help="Maximum epochs."
)
@click.option("--batch-size", type=int, default=_train("batch_size"), show_default=True)
@click.option(
    "--lr", type=float, default=_train("lr"), show_default=True, help="Adam learning rate."
)
@click.option("--weight-decay", type=float, default=_train("weight_decay"), show_default=True)
@click.option(
    "--dropout", type=float, default=field_default(HeadConfig, "dropout"), show_default=True
)
@click.option(
    "--patience",
    type=int,
    default=_train("patience"),
    show_default=True,
    help="Early stopping: epochs without validation improvement (0 = off).",
)
@click.option(
    "--keep",
    type=click.Choice(KEEP_CHOICES),
    default=_train("keep"),
    show_default=True,
    help="Weights to keep: the best validation epoch's, or the last epoch's (the thesis).",
)
@click.option(
    "--threshold",
    type=click.Choice(THRESHOLD_RULES),
    default=_train("threshold"),
    show_default=True,
    help="Decision threshold, chosen on the validation split: maximise accuracy or Youden's J,"
    " or fixed at 0.5. Stored in run.json; evaluate and predict use it.",
)
@click.option(
    "--preset",
    type=click.Choice(PRESET_NAMES),
    default=None,
    help="Named hyperparameters under --config and flags. thesis: every value the thesis"
    " states (conv channels = d_model, fc 256/256, dropout 0.5, Adam without weight decay,"
    " 10 epochs, batch 16, last epoch kept).",
)
@click.option(
    "--repeats",
    type=int,
    default=TRAIN_REPEATS,
    show_default=True,
    help="Train this many seeds (seed, seed+1, ...) and report mean and std.",
)
@click.option(
    "--resplit",
    is_flag=True,
    help="With --repeats: each repeat also re-draws split and negatives (seeded), as the"
    " thesis's runs did, so mean ± std covers both sources of variance.",
)
@click.option(
    "--train-size",
    type=int,
    default=_train("train_size"),
    help="Subsample the training split to N pairs (learning curves).",
)
@click.option(
    "--loader",
    type=click.Choice(LOADERS),
    default=_train("loader"),
    show_default=True,
    help="Hold embeddings in memory or stream them from the store.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=str),
    default=None,
    help="JSON of HeadConfig/TrainConfig field overrides (e.g. a sweep's best config); "
    "flags given on the command line win.",
)
@seed_option(_train("seed"))
@device_option(_train("device"))
@quiet_option
@click.pass_context
@library_errors
def train_command(
    ctx: click.Context,
    dataset: str,
    store: str,
    out_dir: str,
    repeats: int,
    resplit: bool,
    config_path: str | None,
    preset: str | None,
    quiet: bool,
    **flags: Any,
) -> None:
    """Train a Siamese head on the cached embeddings of a dataset.

    \b
    Examples:
      embedhead train ds/ --store ds.zarr --out run/
      embedhead train ds/ --store ds.zarr --out reg/ --task regression --head pooled
      embedhead train ds/ --store ds.zarr --out rep/ --repeats 10 --train-size 1000
      embedhead train ds/ --store ds.zarr --out best/ --config sweep/best.json
      embedhead train thesis-ds/ --store ds.zarr --out thesis/ --preset thesis
    """
    from embedhead.heads.train import (
        RepeatsResult,
        iter_metric_lines,
        iter_summary_lines,
        load_config_overrides,
        run_training,
    )

    overrides: dict[str, Any] = {"preset": preset} if preset else {}
    if config_path:
        overrides.update(load_config_overrides(config_path))
    if preset == "thesis":
        from embedhead.dataset import load_dataset
        from embedhead.heads.presets import thesis_dataset_differences

        parameters = load_dataset(dataset).info.get("parameters", {})
        for note in thesis_dataset_differences(parameters):
            click.echo(f"note: --preset thesis, but the dataset has {note}", err=True)
    for name, key in _FLAG_KEYS.items():
        if _given(ctx, name):
            overrides[key] = flags[name]

    def progress(row: dict[str, Any]) -> None:
        if not quiet:
            click.echo(
                f"epoch {row['epoch']:3d}  train_loss={row['train_loss']:.4f}  "
                f"val_loss={row['val_loss']:.4f}",
                err=True,
            )

    result = run_training(
        dataset, store, out_dir, overrides, repeats=repeats, progress=progress, resplit=resplit
    )
    if isinstance(result, RepeatsResult):
        click.echo(f"{result.path}: {len(result.runs)} runs (seeds {result.summary['seeds']})")
        for line in iter_summary_lines(result.summary["metrics"]):
            click.echo(line)
    else:
        click.echo(
            f"{result.path}: kept epoch {result.fit.best_epoch} of {len(result.fit.history)}"
            f" ({result.fit.train_config.keep})"
        )
        for line in iter_metric_lines(result.fit.metrics):
            click.echo(line)


@click.command("evaluate")
@click.argument("run_dir", type=click.Path(path_type=str))
@click.option(
    "--dataset",
    "dataset",
    required=True,
    type=click.Path(path_type=str),
    help="Dataset folder (any dataset: e.g. another species' pairs).",
)
@store_option
@click.option("--split", type=click.Choice(SPLITS), default=EVAL_SPLIT, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@device_option(DEFAULT_DEVICE)
@library_errors
def evaluate_command(
    run_dir: str, dataset: str, store: str, split: str, as_json: bool, device: str
) -> None:
    """Evaluate a trained head on a split of a dataset (refuses a store of another backbone).

    RUN_DIR is a run folder, or a `--repeats` folder: then every seed's run is evaluated and
    the mean ± std is printed.

    \b
    Examples:
      embedhead evaluate run/ --dataset ds/ --store ds.zarr
      embedhead evaluate run/ --dataset zebrafish/ --store zebrafish.zarr --split test
      embedhead evaluate repeats/ --dataset zebrafish/ --store zebrafish.zarr --json
    """
    import json

    from embedhead.heads.evaluate import evaluate_repeats, evaluate_run
    from embedhead.heads.run import jsonable, repeat_run_dirs
    from embedhead.heads.train import iter_metric_lines, iter_summary_lines

    if repeat_run_dirs(run_dir):
        result = evaluate_repeats(run_dir, dataset, store, split, device=device)
        if as_json:
            click.echo(json.dumps(jsonable(result), indent=2))
            return
        click.echo(f"{run_dir}: {len(result['runs'])} runs ({', '.join(result['runs'])})")
        for line in iter_summary_lines(result["summary"]):
            click.echo(line)
        return
    metrics = evaluate_run(run_dir, dataset, store, split, device=device)
    if as_json:
        click.echo(json.dumps(jsonable(metrics), indent=2))
        return
    for line in iter_metric_lines({split: metrics}):
        click.echo(line)
    if "confusion_matrix" in metrics:
        (tn, fp), (fn, tp) = metrics["confusion_matrix"]
        click.echo(f"confusion tn={tn} fp={fp} fn={fn} tp={tp}")


@click.command("predict")
@click.argument("run_dir", type=click.Path(path_type=str))
@backbone_option
@click.option(
    "--pairs",
    "pairs_path",
    type=click.Path(path_type=str),
    default=None,
    help="A prepare pairs.tsv(.gz), or a TSV with seq1 and seq2 columns of sequences.",
)
@click.option(
    "--fasta",
    type=click.Path(path_type=str),
    nargs=2,
    default=None,
    help="Two FASTA files; record i of the first is paired with record i of the second.",
)
@click.option(
    "--store",
    "store",
    type=click.Path(path_type=str),
    default=None,
    help="Embedding cache to read and extend (default: a temporary store).",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=str),
    help="Output TSV (pair_id, seq ids, lengths, probability or score).",
)
@click.option(
    "--max-length",
    type=click.IntRange(min=1),
    default=field_default(EmbedConfig, "max_length"),
    help="Truncate new sequences to this many nucleotides before embedding them "
    "(default: refuse sequences longer than the backbone's maximum).",
)
@device_option(DEFAULT_DEVICE)
@library_errors
def predict_command(
    run_dir: str,
    backbone: str,
    pairs_path: str | None,
    fasta: tuple[str, str] | None,
    store: str | None,
    out_path: str,
    max_length: int | None,
    device: str,
) -> None:
    """Score new pairs end to end, embedding only sequences the store lacks.

    \b
    Examples:
      embedhead predict run/ --backbone bb/ --pairs new_pairs.tsv --out scores.tsv
      embedhead predict run/ --backbone bb/ --fasta human.fa chicken.fa --store ds.zarr --out s.tsv
    """
    from embedhead.heads.predict import predict_to_tsv

    rows = predict_to_tsv(
        run_dir,
        backbone,
        out_path,
        pairs_path=pairs_path,
        fasta=fasta or None,
        store_path=store,
        device=device,
        max_length=max_length,
    )
    click.echo(f"{out_path}: {len(rows)} pairs scored")


COMMANDS: list[click.Command] = [train_command, evaluate_command, predict_command]
