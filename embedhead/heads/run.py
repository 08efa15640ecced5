"""Run folders: what ``train`` writes and ``evaluate``/``predict`` rebuild a head from.

Layout of a run folder::

    head.safetensors   head weights (and the regression target mean/std buffers)
    config.json        {"format": "embedhead-head-config", "version": 1,
                        "head": HeadConfig fields, "train": TrainConfig fields}
    run.json           seed, dataset path + fingerprint, store path + backbone identity,
                        per-epoch history, best epoch, final metrics {"val": ..., "test": ...}

A ``--repeats N`` folder holds ``seed-<s>/`` run folders plus ``summary.json`` (mean and standard
deviation of every metric). Folders are written under a temporary name next to the target and
renamed at the end (:func:`atomic_dir`), so a folder with the final name is always complete.
JSON files hold no NaN: undefined metrics are written as ``null``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from embedhead import fileio
from embedhead.errors import ConfigError, InputError
from embedhead.fileio import read_json, write_json
from embedhead.heads.config import TrainConfig
from embedhead.heads.models import HeadConfig, SiameseHead, build_head

HEAD_FILE = "head.safetensors"
CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
CONFIG_FORMAT = "embedhead-head-config"
RUN_FORMAT = "embedhead-head-run"
FORMAT_VERSION = 1

jsonable = fileio.to_jsonable  # strict-JSON copy (NaN/inf -> None), kept under its old name


def ensure_free(out_dir: Path) -> None:
    """ConfigError when ``out_dir`` already exists and is not empty (runs are never overwritten)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir} already exists; choose another --out or remove it first")


@contextmanager
def atomic_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; renamed to ``out_dir`` only on success."""
    ensure_free(Path(out_dir))
    with fileio.atomic_dir(out_dir) as tmp:
        yield tmp


def write_run(
    folder: Path, head: SiameseHead, train_config: TrainConfig, info: dict[str, Any]
) -> None:
    """Write the three files of a run folder into the existing ``folder``."""
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(folder / HEAD_FILE))
    write_json(
        folder / CONFIG_FILE,
        {
            "format": CONFIG_FORMAT,
            "version": FORMAT_VERSION,
            "head": head.config.to_dict(),
            "train": train_config.to_dict(),
        },
    )
    write_json(folder / RUN_FILE, {"format": RUN_FORMAT, "version": FORMAT_VERSION, **info})


@dataclass(frozen=True)
class LoadedRun:
    """A run folder read back: the head (eval mode, CPU), its configs and ``run.json``."""

    path: Path
    head: SiameseHead
    head_config: HeadConfig
    train_config: TrainConfig
    info: dict[str, Any]

    @property
    def threshold(self) -> float:
        """Classification decision threshold chosen on validation (``run.json``; 0.5 for runs
        written before thresholds were tuned)."""
        value = self.info.get("threshold", {}).get("value")
        return 0.5 if value is None else float(value)

    @property
    def identity(self) -> dict[str, Any]:
        """Backbone identity of the store the head was trained on."""
        return dict(self.info.get("store", {}).get("identity", {}))


def repeat_run_dirs(path: str | Path) -> list[Path]:
    """The ``seed-<s>/`` run folders of a ``--repeats`` folder, or [] for a single run folder."""
    folder = Path(path)
    if not (folder / SUMMARY_FILE).is_file() or (folder / CONFIG_FILE).is_file():
        return []
    runs = (p for p in folder.glob("seed-*") if p.is_dir() and p.name[5:].isdigit())
    return sorted(runs, key=lambda p: int(p.name[5:]))  # a copied 'seed-0-old' is not a run


def load_run(path: str | Path) -> LoadedRun:
    """Rebuild a head from a run folder; clear errors for anything missing or inconsistent."""

    folder = Path(path)
    if not folder.is_dir():
        raise InputError("not a run folder (run `embedhead train` first)", folder)
    if (folder / SUMMARY_FILE).is_file() and not (folder / CONFIG_FILE).is_file():
        seeds = sorted(p.name for p in folder.glob("seed-*"))
        raise InputError(
            f"this folder holds {len(seeds)} repeated runs; pass one of them "
            f"(e.g. {folder / seeds[0]})"
            if seeds
            else "repeats folder without runs",
            folder,
        )
    for name in (HEAD_FILE, CONFIG_FILE, RUN_FILE):
        if not (folder / name).is_file():
            raise InputError(f"run folder lacks {name}", folder)
    config = read_json(folder / CONFIG_FILE)
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise InputError(f"not a {CONFIG_FORMAT} file", folder / CONFIG_FILE)
    try:
        head_config = HeadConfig.from_dict(config["head"])
        train_config = TrainConfig.from_dict(config["train"])
    except (KeyError, TypeError) as exc:
        raise InputError(f"incomplete config: {exc}", folder / CONFIG_FILE) from exc
    head = build_head(head_config)
    try:
        head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    except Exception as exc:  # safetensors and torch raise assorted types
        raise InputError(f"weights do not match config.json: {exc}", folder / HEAD_FILE) from exc
    head.eval()
    info = read_json(folder / RUN_FILE)
    check_run_info(info, folder / RUN_FILE)
    return LoadedRun(folder, head, head_config, train_config, info)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_run_info(info: Any, path: Path) -> None:
    """InputError naming ``run.json`` and the key when its content has the wrong shape.

    ``run.json`` must be an object; where present, ``store`` an object whose ``identity`` is an
    object with a ``config`` object and whose ``options`` is an object; ``threshold`` an object
    whose ``value`` is a number or null; ``target_scale`` numbers ``mean`` / ``std``; ``metrics``
    an object of ``{split: {metric: value}}``.
    """
    if not isinstance(info, dict):
        raise InputError(f"run.json must hold a JSON object, not a {type(info).__name__}", path)

    def wrong(key: str, want: str) -> InputError:
        return InputError(f"{key} must be {want} (damaged or hand-edited run)", path)

    store = info.get("store", {})
    if not isinstance(store, dict):
        raise wrong("store", "an object")
    identity = store.get("identity", {})
    if not isinstance(identity, dict):
        raise wrong("store.identity", "an object")
    if "config" in identity and not isinstance(identity["config"], dict):
        raise wrong("store.identity.config", "an object")
    if not isinstance(store.get("options", {}), dict):
        raise wrong("store.options", "an object")
    threshold = info.get("threshold", {})
    if not isinstance(threshold, dict):
        raise wrong("threshold", "an object")
    if threshold.get("value") is not None and not _is_number(threshold["value"]):
        raise wrong("threshold.value", "a number or null")
    scale = info.get("target_scale")
    if scale is not None and (
        not isinstance(scale, dict) or not all(_is_number(scale.get(k)) for k in ("mean", "std"))
    ):
        raise wrong("target_scale", 'an object of numbers "mean" and "std"')
    metrics = info.get("metrics", {})
    if not isinstance(metrics, dict):
        raise wrong("metrics", "an object of {split: {metric: value}}")
    for split, values in metrics.items():
        if not isinstance(values, dict):
            raise wrong(f"metrics.{split}", "an object of {metric: value}")
