"""Markdown tables shared by the experiment outputs and the report (numpy, no torch).

Cells: :func:`fmt` (floats with 4 decimals, ``g`` for very small/large, ``-`` for None),
:func:`fmt_metric` (undefined metrics as ``n/a``),
:func:`fmt_metric` (undefined metrics as ``n/a``), :func:`fmt_mean_std` (``mean ± std``);
:func:`markdown_table` (GitHub table from headers + rows);
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
            return "n/a"
        if v != 0 and (abs(v) < 10**-digits or abs(v) >= 1e6):
            return f"{v:.3g}"
        return f"{v:.{digits}f}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    return str(value)


def fmt_metric(value: Any, digits: int = 4) -> str:
    """A metric cell: like :func:`fmt`, but None (an undefined metric read back from JSON,
    where NaN is written as null) is 'n/a', never '-' or 0."""
    return "n/a" if value is None else fmt(value, digits)


def fmt_mean_std(mean: float | None, std: float | None, digits: int = 4) -> str:
    """``mean ± std`` cell ('n/a' when the mean is undefined)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
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


TIME_COLUMNS = ("ms/pair (no embedding)", "ms/pair (with embedding)")
"""Time per pair: the head alone from cached embeddings, and with the backbone's cost of
embedding both sequences; an embedding-free baseline's two columns are equal."""


def time_cells(row: Mapping[str, Any]) -> list[str]:
    """The two :data:`TIME_COLUMNS` cells of a row with ``seconds_per_pair`` and optionally
    ``seconds_per_pair_with_embedding`` (absent: the row needs no embeddings, same value)."""
    alone = row.get("seconds_per_pair")
    embedding = row.get("seconds_per_pair_with_embedding")
    if embedding is None and row.get("no_embedding"):
        embedding = alone
    return [ms_per_pair(alone), ms_per_pair(embedding)]


def beside_head_table(table: Mapping[str, Any]) -> str:
    """Markdown of one ``beside_head`` table of an experiment: the head (mean over repeats), the
    same head on a random backbone's store and each embedding-free baseline on the same test
    split, with milliseconds per pair without and with computing the embeddings."""
    keys = list(table.get("metrics_order") or [])
    rows = [
        [row["model"], *[fmt_metric(row["metrics"].get(k)) for k in keys], *time_cells(row)]
        for row in table["rows"]
    ]
    return markdown_table(["model", *keys, *TIME_COLUMNS], rows)


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


def cross_removed_note(cross: Mapping[str, Any]) -> str:
    """One line: per off-diagonal cell of a cross-species matrix, the test pairs removed for
    sharing a sequence with the training species' train/val pairs ('' when not recorded)."""
    removed, kept, labels = cross.get("removed"), cross.get("n_test"), cross["species"]
    if not removed or not kept:
        return ""
    cells = [
        f"{labels[i]} → {labels[j]}: {removed[i][j]} removed, {kept[i][j]} kept"
        for i in range(len(labels))
        for j in range(len(labels))
        if i != j
    ]
    return (
        "Off the diagonal, test pairs sharing a sequence with the training species' train/val "
        "pairs are removed: " + "; ".join(cells) + ".\n"
    )


BIN_KEYS = {
    "classification": ("accuracy", "recall", "f1", "roc_auc", "brier"),
    "regression": ("mse", "mae", "r2", "pearson"),
}


def bins_table(rows: Sequence[Mapping[str, Any]], task: str, what: str) -> str:
    """Markdown of per-bin metrics (``by_identity`` / ``by_length`` rows): bin, n, metrics."""
    wanted = (*BIN_KEYS.get(task, BIN_KEYS["regression"]), "mean_probability")
    keys = [k for k in wanted if any(k in r for r in rows)]
    return markdown_table(
        [what, "n", *keys],
        [
            [
                f"[{fmt(r['lo'], 2)}, {fmt(r['hi'], 2)})",
                str(r.get("n", "")),
                *[fmt_metric(r.get(k)) for k in keys],
            ]
            for r in rows
        ],
    )
