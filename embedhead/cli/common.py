"""Options and helpers shared by every command (defined once, used everywhere)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from embedhead.errors import EmbedheadError

F = TypeVar("F", bound=Callable[..., Any])


def library_errors(func: F) -> F:
    """Turn library errors into ``click.ClickException`` (message, exit status 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EmbedheadError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


seed_option = click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (runs are reproducible)."
)
device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where torch runs: auto picks cuda when available.",
)
store_option = click.option(
    "--store",
    "store",
    required=True,
    type=click.Path(path_type=str),
    help="Embedding store written by `embedhead embed`: a .zarr folder, an .h5 file, or the "
    "URL of a .zarr store in object storage (s3://bucket/cache.zarr).",
)
backbone_option = click.option(
    "--backbone",
    required=True,
    help="Backbone: local checkpoint folder, weights.ckpt, or Hugging Face Hub id.",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")

TASKS = ("classification", "regression")
HEAD_KINDS = ("thesis", "pooled")
dataset_argument = click.argument("dataset", type=click.Path(path_type=str))


def out_dir_option(help: str) -> Callable[[F], F]:
    """Required ``--out`` folder (passed as ``out_dir``); ``help`` says what the command writes."""
    return click.option(
        "--out", "out_dir", required=True, type=click.Path(path_type=str), help=help
    )


def task_option(default: str | None, help: str | None = None) -> Callable[[F], F]:
    """``--task`` (classification or regression); a None default means "not given"."""
    return click.option(
        "--task",
        type=click.Choice(TASKS),
        default=default,
        show_default=default is not None,
        help=help,
    )


def head_option(default: str | None, help: str) -> Callable[[F], F]:
    """``--head`` (thesis or pooled), passed as ``head_kind``."""
    return click.option(
        "--head",
        "head_kind",
        type=click.Choice(HEAD_KINDS),
        default=default,
        show_default=default is not None,
        help=help,
    )
