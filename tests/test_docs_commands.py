"""Every ``embedhead ...`` command line in README.md and docs/*.md parses with the real CLI.

Command lines are read from code blocks (fenced, or indented by 4 spaces); ``\\`` continuations
are joined, ``$`` prompts and ``#`` comments dropped, and ``&&``/``;``/``|`` chains split. Each
line is parsed (never run) by the real click group: option names, choices, numbers and argument
counts must be valid. Files named on the line need not exist: path parameters are parsed as
paths without the existence check.
"""

from __future__ import annotations

import copy
import shlex
from pathlib import Path

import click
import pytest

from embedhead.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines inside code blocks."""
    out: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or (line.startswith("    ") and line.strip()):
            out.append((number, line.strip()))
    return out


def command_lines(text: str) -> list[tuple[int, list[str]]]:
    """(line number, argv without 'embedhead') of every embedhead command in the code blocks."""
    found: list[tuple[int, list[str]]] = []
    pending: tuple[int, str] | None = None
    for number, line in _code_lines(text):
        if pending is not None:
            number, line = pending[0], pending[1] + " " + line
            pending = None
        if line.endswith("\\"):
            pending = (number, line[:-1])
            continue
        if line.startswith("$ "):
            line = line[2:]
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|"):
                if words and words[0] == "embedhead":
                    found.append((number, words[1:]))
                words = []
            else:
                words.append(token)
    return found


def _without_exists_checks(command: click.Command) -> click.Command:
    """A shallow copy of ``command`` whose path parameters do not require the file to exist."""
    clone = copy.copy(command)
    params = []
    for param in command.params:
        if isinstance(param.type, click.Path) and param.type.exists:
            param = copy.copy(param)
            param.type = copy.copy(param.type)
            param.type.exists = False
        params.append(param)
    clone.params = params
    return clone


def parse(args: list[str]) -> None:
    """Parse ``embedhead ARGS`` like the CLI would, without running anything."""
    command: click.Command = main
    name = "embedhead"
    while isinstance(command, click.Group):
        if not args or args[0].startswith("-"):
            break
        sub = command.get_command(click.Context(command), args[0])
        if sub is None:
            raise click.UsageError(f"no such command {args[0]!r} in {name!r}")
        name, command, args = f"{name} {args[0]}", sub, args[1:]
    _without_exists_checks(command).make_context(name, list(args))


CASES = [
    pytest.param(args, id=f"{doc.name}:{number}")
    for doc in DOCS
    for number, args in command_lines(doc.read_text())
]


def test_docs_hold_command_lines():
    assert len(CASES) >= 20


def test_extraction_joins_continuations_and_splits_chains():
    text = (
        "```bash\n"
        "$ embedhead store info a.zarr && embedhead store verify a.zarr  # check\n"
        "embedhead prepare x.maf --reference hg38 \\\n"
        "    --query galGal6 --out ds/\n"
        "```\n"
    )
    assert command_lines(text) == [
        (2, ["store", "info", "a.zarr"]),
        (2, ["store", "verify", "a.zarr"]),
        (3, ["prepare", "x.maf", "--reference", "hg38", "--query", "galGal6", "--out", "ds/"]),
    ]


def test_parser_rejects_bad_lines():
    with pytest.raises(click.UsageError):
        parse(["train", "ds/", "--store", "s.zarr", "--out", "r/", "--no-such-option"])
    with pytest.raises(click.UsageError):
        parse(["train", "ds/", "--store", "s.zarr", "--out", "r/", "--head", "nonsense"])
    with pytest.raises(click.UsageError):
        parse(["no-such-command"])
    parse(["train", "missing-ds/", "--store", "missing.zarr", "--out", "r/"])


@pytest.mark.parametrize("args", CASES)
def test_documented_command_parses(args):
    parse(args)
