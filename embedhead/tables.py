"""Markdown tables shared by the experiment outputs and the report (numpy, no torch).

Cells: :func:`fmt` (floats with 4 decimals, ``g`` for very small/large, ``-`` for None),
:func:`fmt_mean_std` (``mean ± std``); :func:`markdown_table` (GitHub table from headers + rows);
the experiment tables :func:`per_species_table`, :func:`cross_species_table` and
:func:`learning_curve_table` and :func:`beside_head_table` take the corresponding parts of
``experiment.json``; :func:`ms_per_pair` formats a time per pair.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: floats with ``digits`` decimals (``g`` for very small/large), '-' for None."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if v != 0 and (abs(v) < 10**-digits or abs(v) >= 1e6):
            return f"{v:.3g}"
        return f"{v:.{digits}f}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    return str(value)


def fmt_mean_std(mean: float | None, std: float | None, digits: int = 4) -> str:
    """``mean ± std`` cell ('-' when the mean is undefined)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{fmt(mean, digits)} ± {fmt(std, digits)}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table; cells go through :func:`fmt` unless already strings."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for row in rows:
        cells = [c if isinstance(c, str) else fmt(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def per_species_table(table: Mapping[str, Any]) -> str:
    """Markdown of one ``per_species`` table of an experiment: species, repeats, mean ± std.

    Metric columns follow ``metrics_order`` (else every metric found, sorted); '-' where a
    species lacks a metric.
    """
    keys = table.get("metrics_order") or sorted(
        {k for row in table["rows"] for k in row["metrics"]}
    )
    rows = [
        [
            row["species"],
            str(row.get("n_repeats", "")),
            *[
                fmt_mean_std(row["metrics"][k]["mean"], row["metrics"][k]["std"])
                if k in row["metrics"]
                else "-"
                for k in keys
            ],
        ]
        for row in table["rows"]
    ]
    return markdown_table(["species", "repeats", *keys], rows)


def ms_per_pair(seconds: Any) -> str:
    """Seconds per pair -> a milliseconds cell, 3 significant digits ('' when unknown)."""
    return "" if not isinstance(seconds, int | float) else f"{1000 * seconds:.3g}"


def beside_head_table(table: Mapping[str, Any]) -> str:
    """Markdown of one ``beside_head`` table of an experiment: the head (mean over repeats) and
    each embedding-free baseline on the same test split, with milliseconds per pair (the
    head's excludes computing embeddings: they come from the store)."""
    keys = list(table.get("metrics_order") or [])
    rows = [
        [
            row["model"],
            *[fmt(row["metrics"].get(k)) for k in keys],
            ms_per_pair(row.get("seconds_per_pair")),
        ]
        for row in table["rows"]
    ]
    return markdown_table(["model", *keys, "ms/pair"], rows)


def cross_species_table(cross: Mapping[str, Any]) -> str:
    """Markdown of a cross-species matrix: row = trained on, column = tested on."""
    labels = cross["species"]
    return markdown_table(
        ["trained on \\ tested on", *labels],
        [[labels[i], *row] for i, row in enumerate(cross["matrix"])],
    )


def learning_curve_table(points: Iterable[Mapping[str, Any]]) -> str:
    """Markdown of learning-curve points: species, task, train size, metric, mean ± std."""
    return markdown_table(
        ["species", "task", "train size", "metric", "mean ± std"],
        [
            [
                p["species"],
                p["task"],
                str(p["train_size"]),
                p["metric"],
                fmt_mean_std(p["mean"], p["std"]),
            ]
            for p in points
        ],
    )
