"""Markdown summary (and optional PNG plots) from the result JSONs of a results folder.

:func:`write_report` scans a folder (recursively, a few levels deep) for:

- ``sweep.json``       (``embedhead sweep``): ranked trials and Optuna's parameter importances
                       -> tables + optimisation history, importance and "validation metric vs
                       each hyper-parameter" plots;
- ``experiment.json``  (``embedhead experiment``): per-species table (mean +- std),
                       cross-species matrix (+ heat map, pairs removed as seen in training),
                       learning curve (+ plot), ROC curves, confusion matrices, the head beside
                       the random-backbone head and the baselines (ms per pair without/with the
                       embedding), reliability plot (10 bins) + Brier score (classification),
                       predicted-vs-true scatter + R2 (regression), metrics by identity and
                       length bin;
- ``baselines.json``   (``embedhead baselines``): test metrics table with time per pair
                       (+ ROC curves);
- ``run.json``         (``embedhead train`` run folders): final metrics, per-epoch history
                       (+ learning-curve plot) and confusion matrix.

It writes ``report.md`` and, when matplotlib (the optional ``plots`` extra) is importable,
``plots/*.png``; without matplotlib the Markdown says plots were skipped. Also home of the
Table helpers live in :mod:`embedhead.tables` (shared with the experiments, which must not
import this last stage for them) and file writing in :mod:`embedhead.fileio`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from embedhead.errors import InputError
from embedhead.fileio import atomic_write_text, read_json
from embedhead.heads.metrics import CLASSIFICATION_KEYS, REGRESSION_KEYS
from embedhead.results import check_result, result_kind
from embedhead.tables import (
    TIME_COLUMNS,
    beside_head_table,
    bins_table,
    cross_removed_note,
    cross_species_table,
    fmt,
    fmt_mean_std,
    fmt_metric,
    learning_curve_table,
    markdown_table,
    per_species_table,
    time_cells,
)

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"
RESULT_FILES = ("sweep.json", "experiment.json", "baselines.json", "summary.json", "run.json")
_MAX_DEPTH = 4
_EMBEDDING_ROWS = ("head", "random_backbone")  # baselines.json rows of `baselines --store`


# ----------------------------------------------------------------------------- plotting
def load_pyplot() -> ModuleType | None:
    """matplotlib.pyplot with the Agg backend, or None when the ``plots`` extra is missing.

    Imported here, not at module top: the extra is optional, and selecting the Agg backend must
    not happen merely because the report module was imported (allowed in test_architecture).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


@dataclass
class _Plotter:
    """Saves figures into ``out_dir`` (collecting their paths); no-op without pyplot."""

    plt: ModuleType | None
    out_dir: Path
    saved: list[Path] = field(default_factory=list)

    def save(self, name: str, draw: Callable[[Any, Any], None], size: tuple[float, float]) -> str:
        """Draw on a new figure/axes, save ``name``.png; returns a Markdown image line or ''."""
        if self.plt is None:
            return ""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fig, ax = self.plt.subplots(figsize=size)
        try:
            draw(fig, ax)
            fig.tight_layout()
            path = self.out_dir / f"{name}.png"
            fig.savefig(path, dpi=110)
        finally:
            self.plt.close(fig)
        self.saved.append(path)
        return f"![{name}]({PLOTS_DIR}/{path.name})\n"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _plot_roc(plotter: _Plotter, name: str, curves: dict[str, dict[str, Any]]) -> str:
    curves = {k: v for k, v in curves.items() if v and v.get("fpr") and v.get("tpr")}
    if not curves:
        return ""

    def draw(fig: Any, ax: Any) -> None:
        for label, c in curves.items():
            auc = c.get("auc")
            tag = f"{label} (AUC {auc:.3f})" if isinstance(auc, float) else label
            ax.plot(c["fpr"], c["tpr"], label=tag)
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC (test split)")
        ax.legend(fontsize="small")

    return plotter.save(name, draw, (5.0, 4.5))


def _plot_confusion(plotter: _Plotter, name: str, title: str, matrix: Any) -> str:
    cm = np.asarray(matrix)
    if cm.shape != (2, 2):
        return ""

    def draw(fig: Any, ax: Any) -> None:
        im = ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(int(v)), ha="center", va="center")
        ax.set_xticks([0, 1], labels=["pred 0", "pred 1"])
        ax.set_yticks([0, 1], labels=["true 0", "true 1"])
        ax.set_title(title)
        fig.colorbar(im, ax=ax)

    return plotter.save(name, draw, (4.0, 3.5))


def _plot_heatmap(
    plotter: _Plotter, name: str, title: str, labels: Sequence[str], matrix: Any
) -> str:
    mat = np.asarray(matrix, dtype=np.float64)

    def draw(fig: Any, ax: Any) -> None:
        im = ax.imshow(mat, cmap="viridis")
        for (i, j), v in np.ndenumerate(mat):
            ax.text(j, i, fmt(v, 3), ha="center", va="center", color="white")
        ax.set_xticks(range(len(labels)), labels=list(labels), rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels=list(labels))
        ax.set_xlabel("tested on")
        ax.set_ylabel("trained on")
        ax.set_title(title)
        fig.colorbar(im, ax=ax)

    side = 2.0 + 0.8 * len(labels)
    return plotter.save(name, draw, (side + 1.0, side))


def _plot_reliability(plotter: _Plotter, name: str, curves: dict[str, dict[str, Any]]) -> str:
    """Reliability diagram: per species, fraction positive vs mean predicted probability."""
    curves = {k: v for k, v in curves.items() if v and v.get("bins")}
    if not curves:
        return ""

    def draw(fig: Any, ax: Any) -> None:
        for label, c in curves.items():
            pts = [b for b in c["bins"] if b.get("n")]
            brier = c.get("brier")
            tag = f"{label} (Brier {brier:.3f})" if isinstance(brier, float) else label
            ax.plot(
                [b["mean_predicted"] for b in pts],
                [b["fraction_positive"] for b in pts],
                marker="o",
                label=tag,
            )
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted probability (10 bins)")
        ax.set_ylabel("fraction of positives")
        ax.set_title("Reliability (test split)")
        ax.legend(fontsize="small")

    return plotter.save(name, draw, (5.0, 4.5))


def _plot_scatter(plotter: _Plotter, name: str, title: str, points: dict[str, Any]) -> str:
    true, pred = points.get("true") or [], points.get("predicted") or []
    if not true:
        return ""

    def draw(fig: Any, ax: Any) -> None:
        ax.scatter(true, pred, s=8, alpha=0.6)
        lo, hi = min(min(true), min(pred)), max(max(true), max(pred))
        ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", linewidth=0.8)
        ax.set_xlabel("true norm_score")
        ax.set_ylabel("predicted norm_score")
        ax.set_title(f"{title} (R2 {fmt_metric(points.get('r2'), 3)})")

    return plotter.save(name, draw, (4.5, 4.5))


def _calibration_table(curves: dict[str, dict[str, Any]]) -> str:
    rows = [
        [
            species,
            fmt_metric(c.get("brier")),
            *[
                "-" if not b.get("n") else f"{fmt(b['fraction_positive'], 2)} ({b['n']})"
                for b in c.get("bins", [])
            ],
        ]
        for species, c in curves.items()
    ]
    width = max((len(c.get("bins", [])) for c in curves.values()), default=0)
    bins = [f"{i / width:.1f}-{(i + 1) / width:.1f}" for i in range(width)]
    return markdown_table(["species", "Brier", *bins], rows)


# ----------------------------------------------------------------------------- sections
def _section_sweep(data: dict[str, Any], rel: str, plotter: _Plotter) -> str:
    metric = data.get("metric", "val")
    trials = data.get("trials", [])
    params = sorted({k for t in trials for k in t.get("params", {})})
    # rows of sweeps written before Optuna have no status; those were all finished or failed
    counts = {
        s: sum(t.get("status", "ok") == s for t in trials) for s in ("ok", "pruned", "failed")
    }
    how = ", ".join(f"{k} {data[k]}" for k in ("sampler", "pruner") if data.get(k))
    out = [
        f"## Sweep `{rel}`\n",
        f"{len(trials)} trial(s) ({counts['ok']} finished, {counts['pruned']} pruned, "
        f"{counts['failed']} failed), ranked by validation {metric}"
        + (f"; {how}" if how else "")
        + ".\n",
    ]
    if data.get("best") is not None:
        shown = {k: v for k, v in data["best"].get("config", {}).items() if k != "_sweep"}
        out.append(f"Best config (`best.json`): `{json.dumps(shown)}`\n")
    rows = [
        [
            fmt(t.get("rank")),
            str(t.get("trial", "")),
            *[fmt(t.get("params", {}).get(p)) for p in params],
            fmt_mean_std(t.get("val_mean", math.nan), t.get("val_std", math.nan)),
            str(t.get("n_repeats", 1)),
            str(t.get("status", "ok")),
        ]
        for t in trials[:20]
    ]
    out.append(
        markdown_table(["rank", "trial", *params, f"val {metric}", "repeats", "status"], rows)
    )
    importances = data.get("importances") or {}
    if importances:
        out.append("\nParameter importances (Optuna):\n")
        out.append(markdown_table(["parameter", "importance"], importances.items()))
    finished = [t for t in trials if t.get("status", "ok") == "ok"]
    numeric = [
        p for p in params if all(isinstance(t["params"].get(p), int | float) for t in finished)
    ]
    if finished and numeric:

        def draw(fig: Any, ax: Any) -> None:
            fig.clf()
            axes = fig.subplots(1, len(numeric), squeeze=False)[0]
            y = [t.get("val_mean", math.nan) for t in finished]
            for a, p in zip(axes, numeric, strict=True):
                x = [t["params"][p] for t in finished]
                a.scatter(x, y, s=14)
                if min(x) > 0 and max(x) / min(x) > 20:
                    a.set_xscale("log")
                a.set_xlabel(p)
            axes[0].set_ylabel(f"val {metric}")

        out.append(plotter.save(f"sweep_{_safe(rel)}", draw, (3.0 * len(numeric) + 0.5, 3.0)))
    history = data.get("history") or []
    if any(h.get("status") == "ok" for h in history):
        minimise = data.get("direction") == "min"

        def draw_history(fig: Any, ax: Any) -> None:
            done = [h for h in history if h.get("status") == "ok" and h.get("value") is not None]
            x = [h["trial"] for h in done]
            y = [h["value"] for h in done]
            best = (np.minimum if minimise else np.maximum).accumulate(np.asarray(y, float))
            ax.scatter(x, y, s=14, label="finished")
            ax.step(x, best, where="post", color="C1", label="best so far")
            pruned = [h["trial"] for h in history if h.get("status") == "pruned"]
            if pruned:
                ax.scatter(pruned, [min(y)] * len(pruned), marker="x", color="C3", label="pruned")
            ax.set_xlabel("trial")
            ax.set_ylabel(f"val {metric}")
            ax.set_title("Optimisation history")
            ax.legend(loc="best", fontsize="small")

        out.append(plotter.save(f"sweep_history_{_safe(rel)}", draw_history, (5.0, 3.5)))
    if importances:

        def draw_importances(fig: Any, ax: Any) -> None:
            names = list(importances)[::-1]
            ax.barh(names, [importances[n] for n in names])
            ax.set_xlabel("importance")
            ax.set_title("Parameter importances")

        out.append(
            plotter.save(
                f"sweep_importances_{_safe(rel)}",
                draw_importances,
                (5.0, 0.5 * len(importances) + 1.5),
            )
        )
    return "\n".join(out)


def _section_experiment(data: dict[str, Any], rel: str, plotter: _Plotter) -> str:
    out = [f"## Experiment `{rel}`\n"]
    for table in data.get("per_species", []):
        out.append(f"### Per-species test metrics ({table['task']}, mean ± std over repeats)\n")
        out.append(per_species_table(table))
    for table in data.get("beside_head", []):
        out.append(f"### {table['species']}: head beside baselines ({table['task']}, test)\n")
        out.append(beside_head_table(table))
    crosses = data.get("cross_species") or []
    for cross in [crosses] if isinstance(crosses, dict) else crosses:
        labels = cross["species"]
        out.append(
            f"### Cross-species {cross['metric']} ({cross['task']}; rows: trained on, "
            "columns: tested on)\n"
        )
        out.append(cross_species_table(cross))
        out.append(cross_removed_note(cross))
        out.append(
            _plot_heatmap(
                plotter,
                f"cross_species_{_safe(rel)}_{cross['task']}",
                f"cross-species test {cross['metric']} ({cross['task']})",
                labels,
                cross["matrix"],
            )
        )
    curve = data.get("learning_curve", [])
    if curve:
        out.append("### Learning curve (test metric over training-set size)\n")
        out.append(learning_curve_table(curve))

        def draw(fig: Any, ax: Any) -> None:
            groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
            for p in curve:
                groups.setdefault((p["species"], p["task"], p["metric"]), []).append(p)
            for (sp, task, metric), pts in groups.items():
                pts = sorted(pts, key=lambda q: q["train_size"])
                ax.errorbar(
                    [q["train_size"] for q in pts],
                    [math.nan if q["mean"] is None else q["mean"] for q in pts],
                    yerr=[math.nan if q["std"] is None else q["std"] for q in pts],
                    marker="o",
                    capsize=3,
                    label=f"{sp} {task} {metric}",
                )
            ax.set_xscale("log")
            ax.set_xlabel("training pairs")
            ax.set_ylabel("test metric")
            ax.legend(fontsize="small")

        out.append(plotter.save(f"learning_curve_{_safe(rel)}", draw, (5.5, 4.0)))
    roc = data.get("roc") or {}
    if roc:
        out.append(_plot_roc(plotter, f"roc_{_safe(rel)}", roc))
    for species, cm in (data.get("confusion_matrix") or {}).items():
        out.append(
            _plot_confusion(
                plotter, f"confusion_{_safe(rel)}_{_safe(species)}", f"{species} (test)", cm
            )
        )
    calibration = data.get("calibration") or {}
    if calibration:
        out.append(
            "### Calibration (repeat 0, test): fraction of positives (pairs) per predicted-"
            "probability bin\n"
        )
        out.append(_calibration_table(calibration))
        out.append(_plot_reliability(plotter, f"reliability_{_safe(rel)}", calibration))
    scatter = data.get("scatter") or {}
    if scatter:
        out.append("### Regression (repeat 0, test): predicted vs true norm_score\n")
        out.append(
            markdown_table(
                ["species", "R2", "test pairs", "points plotted"],
                [
                    [sp, fmt_metric(p.get("r2")), str(p.get("n", "")), str(len(p.get("true", [])))]
                    for sp, p in scatter.items()
                ],
            )
        )
        for species, points in scatter.items():
            out.append(
                _plot_scatter(plotter, f"scatter_{_safe(rel)}_{_safe(species)}", species, points)
            )
    for entry in data.get("by_bin") or []:
        for key, what in (("by_identity", "identity"), ("by_length", "max length (nt)")):
            if entry.get(key):
                out.append(f"### {entry['species']}: {entry['task']} by {what} (repeat 0, test)\n")
                out.append(bins_table(entry[key], entry["task"], what))
    for entry in data.get("dropped_non_finite") or []:
        if any(entry["dropped"].values()):
            out.append(
                f"{entry['species']} ({entry['task']}): positives dropped for a NaN/inf "
                f"norm_score: {entry['dropped']}\n"
            )
    return "\n".join(o for o in out if o)


def _section_baselines(data: dict[str, Any], rel: str, plotter: _Plotter) -> str:
    results = data.get("results", [])
    if not results:
        return f"## Baselines `{rel}`\n\n_no results_\n"
    task = results[0].get("task", "classification")
    keys = list(CLASSIFICATION_KEYS if task == "classification" else REGRESSION_KEYS)
    rows = [
        [
            r["model"],
            ", ".join(f"{k}={v:g}" for k, v in r.get("chosen", {}).items()),
            *[fmt_metric(r.get("test", {}).get(k)) for k in keys],
            *time_cells(
                {
                    "seconds_per_pair": r.get("extra", {}).get("seconds_per_pair"),
                    "seconds_per_pair_with_embedding": r.get("extra", {}).get(
                        "seconds_per_pair_with_embedding"
                    ),
                    "no_embedding": r["model"] not in _EMBEDDING_ROWS,
                }
            ),
        ]
        for r in results
    ]
    out = [
        f"## Baselines `{rel}` ({task}, test split)\n",
        markdown_table(["baseline", "chosen", *keys, *TIME_COLUMNS], rows),
    ]
    roc = {r["model"]: r.get("extra", {}).get("roc") for r in results}
    out.append(_plot_roc(plotter, f"roc_baselines_{_safe(rel)}", roc))  # type: ignore[arg-type]
    return "\n".join(o for o in out if o)


def _final_metrics(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{split: metrics} from a run.json, whatever nesting the heads use."""
    metrics = data.get("metrics") or data.get("final_metrics") or {}
    if isinstance(metrics, dict) and any(isinstance(v, dict) for v in metrics.values()):
        return {k: v for k, v in metrics.items() if isinstance(v, dict)}
    return {"final": metrics} if isinstance(metrics, dict) and metrics else {}


def _section_run(data: dict[str, Any], rel: str, plotter: _Plotter) -> str:
    out = [f"## Run `{rel}`\n"]
    if "seed" in data:
        out.append(f"Seed {data['seed']}.\n")
    by_split = _final_metrics(data)
    scalar_keys = sorted(
        {
            k
            for m in by_split.values()
            for k, v in m.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
    )
    if by_split:
        out.append(
            markdown_table(
                ["split", *scalar_keys],
                [
                    [split, *[fmt_metric(m.get(k)) if k in m else "-" for k in scalar_keys]]
                    for split, m in by_split.items()
                ],
            )
        )
    history = data.get("history") or []
    series = sorted(
        {
            k
            for h in history
            if isinstance(h, dict)
            for k, v in h.items()
            if k != "epoch" and isinstance(v, int | float) and "loss" in k
        }
    )
    if history and series:

        def draw(fig: Any, ax: Any) -> None:
            x = [h.get("epoch", i + 1) for i, h in enumerate(history)]
            for s in series:
                ax.plot(x, [h.get(s, math.nan) for h in history], marker=".", label=s)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss")
            ax.legend(fontsize="small")

        out.append(plotter.save(f"history_{_safe(rel)}", draw, (5.0, 3.5)))
    for split, m in by_split.items():
        if "confusion_matrix" in m:
            out.append(
                _plot_confusion(
                    plotter, f"confusion_{_safe(rel)}_{split}", f"{split}", m["confusion_matrix"]
                )
            )
            break
    return "\n".join(o for o in out if o)


def _section_repeats(data: dict[str, Any], rel: str, plotter: _Plotter) -> str:
    """A ``train --repeats`` summary: mean ± std of every metric, per split."""
    metrics: dict[str, dict[str, Any]] = data["metrics"]
    keys = sorted({k for m in metrics.values() for k in m if k != "loss"})
    seeds = data.get("seeds", [])
    return "\n".join(
        [
            f"## Repeated runs `{rel}`\n",
            f"{data.get('repeats', len(seeds))} seeds ({', '.join(map(str, seeds))}); "
            "mean ± sample standard deviation.\n",
            markdown_table(
                ["split", *keys],
                [
                    [
                        split,
                        *[fmt_mean_std(m[k]["mean"], m[k]["std"]) if k in m else "-" for k in keys],
                    ]
                    for split, m in metrics.items()
                ],
            ),
        ]
    )


_SECTIONS: dict[str, Callable[[dict[str, Any], str, _Plotter], str]] = {
    "sweep.json": _section_sweep,
    "experiment.json": _section_experiment,
    "baselines.json": _section_baselines,
    "summary.json": _section_repeats,
    "run.json": _section_run,
}


def is_result(name: str, data: Any) -> bool:
    """Whether parsed JSON ``data`` of a file called ``name`` is a result this report reads."""
    return result_kind(data) == name.removesuffix(".json")


def find_results(directory: Path) -> list[Path]:
    """Result JSONs under ``directory`` (depth <= 4), in a stable order (sweep, experiment, ...)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        depth = len(Path(root).relative_to(directory).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and depth < _MAX_DEPTH)
        found += [Path(root) / f for f in files if f in _SECTIONS]
    return sorted(found, key=lambda p: (RESULT_FILES.index(p.name), str(p)))


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` produced."""

    path: Path
    plots: tuple[Path, ...]
    plots_skipped: bool
    sources: tuple[Path, ...]


def write_report(
    directory: str | Path, *, out: str | Path | None = None, plots: bool = True
) -> Report:
    """Summarise every result JSON under ``directory`` into ``report.md`` (+ ``plots/``).

    ``out`` defaults to ``directory/report.md``. Raises :class:`InputError` when the folder
    holds no result file or a result file is not valid JSON.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("not a results folder", directory)
    out_path = Path(out) if out is not None else directory / REPORT_FILE
    if out_path.is_dir():
        raise InputError("is a folder; give the report's file path", out_path)
    sources = find_results(directory)
    if not sources:
        raise InputError(
            f"no result files ({', '.join(RESULT_FILES)}) found in this folder", directory
        )
    loaded: list[tuple[Path, dict[str, Any]]] = []
    for src in sources:
        data = read_json(src)
        if is_result(src.name, data):  # e.g. an experiment *spec* named experiment.json is not
            loaded.append((src, check_result(data, src.name.removesuffix(".json"), src)))
    if not loaded:
        raise InputError(
            f"no result files ({', '.join(RESULT_FILES)}) found in this folder", directory
        )
    plt = load_pyplot() if plots else None
    plotter = _Plotter(plt, out_path.parent / PLOTS_DIR)
    sections: list[str] = []
    for src, data in loaded:
        rel = str(src.parent.relative_to(directory)) or "."
        sections.append(_SECTIONS[src.name](data, rel, plotter))
    header = ["# embedhead report\n", f"Results folder: `{directory}`\n"]
    if plt is None:
        why = "disabled" if not plots else "matplotlib is not installed"
        header.append(
            f"_Plots skipped ({why}); install the `plots` extra: "
            "`pip install 'embedhead[plots]'`._\n"
        )
    text = "\n".join(header + sections)
    atomic_write_text(out_path, text)
    return Report(
        path=out_path,
        plots=tuple(plotter.saved),
        plots_skipped=plt is None,
        sources=tuple(src for src, _ in loaded),
    )
