"""CLI commands of the embed stage: ``embed`` and the ``store`` group (info, verify, merge)."""

from __future__ import annotations

import shlex
from typing import Any

import click

from embedhead.cli.common import (
    backbone_option,
    device_option,
    field_default,
    library_errors,
    quiet_option,
)
from embedhead.embed.config import PRECISIONS, EmbedConfig
from embedhead.store.options import COMPRESSIONS, DTYPES


def _embed(name: str) -> object:
    return field_default(EmbedConfig, name)


COMMANDS: list[click.Command] = []


@click.command("embed")
@click.argument("source", type=click.Path(exists=True, path_type=str))
@backbone_option
@click.option(
    "--store",
    "store",
    required=True,
    type=click.Path(path_type=str),
    help="Store to create or extend: STORE.zarr (folder), STORE.h5 (file), or a .zarr at an "
    "fsspec URL (s3://bucket/STORE.zarr; credentials from the AWS_* environment).",
)
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    default=_embed("dtype"),
    show_default=True,
    help="Storage dtype (bfloat16 is stored as raw uint16 bits; reads give float32).",
)
@device_option(field_default(EmbedConfig, "device"))
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=_embed("precision"),
    show_default=True,
    help="Backbone compute precision: bfloat16/float16 autocast runs on CUDA only.",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default=_embed("compression"),
    show_default=True,
    help="Codec of a new store's embeddings: zstd is smallest, lz4 is fastest to write.",
)
@click.option(
    "--batch-tokens",
    type=click.IntRange(min=1),
    default=_embed("batch_tokens"),
    show_default=True,
    help="Padded tokens per backbone call (batches are length-sorted).",
)
@click.option(
    "--max-length",
    type=click.IntRange(min=1),
    default=_embed("max_length"),
    help="Truncate sequences to this many nucleotides (default: refuse over-long ones).",
)
@click.option("--pooled-only", is_flag=True, help="Store only pooled (mean) embeddings.")
@click.option(
    "--no-space-check",
    is_flag=True,
    help="Start even when the store's file system has less free space than the estimate.",
)
@quiet_option
@library_errors
def embed_command(
    source: str,
    backbone: str,
    store: str,
    dtype: str,
    device: str,
    precision: str,
    compression: str,
    batch_tokens: int,
    max_length: int | None,
    pooled_only: bool,
    no_space_check: bool,
    quiet: bool,
) -> None:
    """Embed each unique sequence once into a store (resumable).

    Every sequence of a dataset folder (or FASTA file) not yet in the store is embedded.

    The backbone runs once per unique sequence; rerunning the same command after an
    interruption resumes where it stopped (committed batches are skipped). Under torchrun
    every rank writes straight into a .zarr store; an .h5 store keeps a single writer (each
    rank journals to STORE.h5.parts/, rank 0 assembles the file at the end).

    \b
    Examples:
      embedhead embed ds/ --backbone bb/ --store ds.zarr
      embedhead embed seqs.fa --backbone bb/ --store seqs.h5 --dtype bfloat16 --max-length 1024
      torchrun --nproc-per-node 4 -m embedhead embed ds/ --backbone bb/ --store ds.zarr
    """
    from embedhead.embed.run import embed_dataset

    config = EmbedConfig(
        dtype=dtype,
        device=device,
        precision=precision,
        compression=compression,
        batch_tokens=batch_tokens,
        max_length=max_length,
        pooled_only=pooled_only,
        progress=not quiet,
        command=shlex.join(
            [
                "embedhead",
                "embed",
                source,
                "--backbone",
                backbone,
                "--store",
                store,
                "--dtype",
                dtype,
                "--device",
                device,
                "--precision",
                precision,
                "--compression",
                compression,
                "--batch-tokens",
                str(batch_tokens),
                *(["--max-length", str(max_length)] if max_length else []),
                *(["--pooled-only"] if pooled_only else []),
            ]
        ),
    )
    _space_check(source, store, backbone, config, check=not no_space_check, quiet=quiet)
    summary = embed_dataset(source, store, backbone, config)
    if summary.rank == 0 and not quiet:
        click.echo(summary.describe())


def _space_check(
    source: str, store: str, backbone: str, config: Any, *, check: bool, quiet: bool
) -> None:
    """Print the store size the dataset needs; refuse to start without the free space."""
    import os

    from embedhead.embed.space import (
        backbone_d_model,
        check_free_space,
        estimate_store,
        format_bytes,
    )
    from embedhead.store import open_store
    from embedhead.store.zarr_backend import is_url, store_exists

    present = None
    if store_exists(store):
        reader = open_store(store)
        ids = set(reader.ids())
        reader.close()
        present = ids.__contains__
    estimate = estimate_store(
        source,
        backbone_d_model(backbone),
        config.dtype,
        max_length=config.max_length,
        pooled_only=config.pooled_only,
        present=present,
    )
    rank0 = os.environ.get("RANK", "0") == "0"
    if rank0 and not quiet:
        click.echo(estimate.describe(), err=True)
    if check and is_url(store):
        if rank0 and not quiet:
            click.echo("free space at the store: not checked (object storage)", err=True)
    elif check:
        free = check_free_space(estimate, store)
        if rank0 and not quiet:
            click.echo(f"free space at the store: {format_bytes(free)}", err=True)


@click.group("store")
def store_group() -> None:
    """Inspect, check and merge embedding stores.

    \b
    Examples:
      embedhead store info ds.zarr
      embedhead store verify ds.zarr --dataset ds/
      embedhead store merge ds.zarr
    """


@store_group.command("info")
@click.argument("store", type=str, metavar="STORE")
@click.option(
    "--dataset",
    "source",
    type=click.Path(exists=True, path_type=str),
    default=None,
    help="Dataset folder or FASTA file: also print the store size it needs (uncompressed).",
)
@library_errors
def store_info_command(store: str, source: str | None) -> None:
    """Counts, bytes per nucleotide, backbone and dtype of a store.

    With --dataset, also the store size that dataset needs (positions x d_model x bytes +
    pooled, with this store's d_model, dtype and truncation) and how much is still to write.

    \b
    Example:
      embedhead store info ds.zarr
      embedhead store info ds.zarr --dataset ds/
    """
    from embedhead.store.verify import store_info

    click.echo(store_info(store).describe())
    if source is not None:
        from embedhead.embed.space import estimate_store
        from embedhead.store import open_store

        reader = open_store(store)
        try:
            ids = set(reader.ids())
            max_length = reader.attrs.get("max_length")
            estimate = estimate_store(
                source,
                reader.d_model,
                reader.dtype,
                max_length=None if max_length is None else int(max_length),
                pooled_only=reader.pooled_only,
                present=ids.__contains__,
            )
        finally:
            reader.close()
        click.echo(estimate.describe())


@store_group.command("verify")
@click.argument("store", type=str, metavar="STORE")
@click.option(
    "--dataset",
    "source",
    type=click.Path(exists=True, path_type=str),
    default=None,
    help="Dataset folder or FASTA file whose every sequence must be present.",
)
@library_errors
def store_verify_command(store: str, source: str | None) -> None:
    """Check index, finite values and lengths; exit 1 on problems.

    \b
    Example:
      embedhead store verify ds.zarr --dataset ds/
    """
    from embedhead.store.verify import verify_store

    report = verify_store(store, source)
    click.echo(report.describe())
    if not report.ok:
        raise click.exceptions.Exit(1)


@store_group.command("merge")
@click.argument("store", type=click.Path(path_type=str))
@library_errors
def store_merge_command(store: str) -> None:
    """Merge shards left in STORE.parts/ into the store.

    Shards remain when a distributed run was interrupted; the next run merges them too. A
    shard that a running embed still writes (its lock is held) is refused, not merged.

    \b
    Example:
      embedhead store merge ds.zarr
    """
    from embedhead.store import merge_store

    added = merge_store(store)
    click.echo(f"{store}: merged {added} sequences from shards")


COMMANDS.extend([embed_command, store_group])
