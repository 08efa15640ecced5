"""Options and helpers shared by every command (defined once, used everywhere).

Every option default and ``Choice`` list comes from the light config modules
(:mod:`embedhead.heads.config`, :mod:`embedhead.embed.config`, :mod:`embedhead.prepare.config`,
:mod:`embedhead.experiments.config`, :mod:`embedhead.store.options`), never retyped here;
``tests/test_cli_defaults.py`` checks every command against the library.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from embedhead.embed.config import DEVICES
from embedhead.errors import EmbedheadError
from embedhead.fileio import require_utf8_name
from embedhead.heads.config import HEAD_KINDS, TASKS

F = TypeVar("F", bound=Callable[..., Any])


def library_errors(func: F) -> F:
    """Turn library errors into ``click.ClickException`` (message, exit status 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            _require_utf8_paths(kwargs.values())
            return func(*args, **kwargs)
        except EmbedheadError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _require_utf8_paths(values: Iterable[Any]) -> None:
    """Every string (or path) argument of a command must be valid UTF-8 (file names)."""
    for value in values:
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, str | bytes | os.PathLike):
                require_utf8_name(item)


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass field ``name`` of ``cls`` (the one source of a CLI default)."""
    for field in dataclasses.fields(cls):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
            raise TypeError(f"{cls.__name__}.{name} has no default")
    raise TypeError(f"{cls.__name__} has no field {name!r}")


def comma_list(values: Iterable[object]) -> str:
    """A tuple default shown as the comma-separated text the option parses."""
    return ",".join(str(v) for v in values)


def seed_option(default: int) -> Callable[[F], F]:
    """``--seed`` with the default of the library config the command fills."""
    return click.option(
        "--seed",
        type=int,
        default=default,
        show_default=True,
        help="Random seed (runs are reproducible).",
    )


def device_option(default: str) -> Callable[[F], F]:
    """``--device`` (auto, cpu, cuda) with the default of the library config or function."""
    return click.option(
        "--device",
        type=click.Choice(DEVICES),
        default=default,
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
