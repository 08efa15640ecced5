"""Every CLI default and Choice list equals the library's (one source for every default).

For each command, every option that fills a library config field (or a library function's
keyword) must have that field's default, and every ``click.Choice`` must list exactly the
library's tuple. Every option with a default or choices must be listed here, so a new option
whose default is typed into the CLI fails until it is mapped to the library.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import click
import pytest

from embedhead.cli.main import main
from embedhead.embed.config import DEVICES, PRECISIONS, EmbedConfig
from embedhead.experiments.config import PRUNERS, SAMPLERS, BaselineConfig
from embedhead.heads.config import (
    HEAD_KINDS,
    KEEP_CHOICES,
    LOADERS,
    SPLITS,
    TASKS,
    THRESHOLD_RULES,
    HeadConfig,
    TrainConfig,
)
from embedhead.heads.presets import PRESET_NAMES
from embedhead.prepare.config import (
    DEFAULT_GC_TOLERANCE,
    DEFAULT_KMER_TOLERANCE,
    DEFAULT_MATCH,
    FORMATS,
    MATCH_MODES,
    NEGATIVE_METHODS,
    SPLIT_MODES,
    PrepareConfig,
)
from embedhead.prepare.simulate import SimulateConfig
from embedhead.store.options import COMPRESSIONS, DTYPES


def field(cls: type, name: str) -> Any:
    (found,) = [f for f in dataclasses.fields(cls) if f.name == name]
    assert found.default is not dataclasses.MISSING, f"{cls.__name__}.{name} has no default"
    return found.default


def keyword(func: Callable[..., Any], name: str) -> Any:
    default = inspect.signature(func).parameters[name].default
    assert default is not inspect.Parameter.empty, f"{func.__name__}({name}) has no default"
    return default


def commas(values: tuple[Any, ...]) -> str:
    return ",".join(str(v) for v in values)


def library_defaults() -> dict[str, dict[str, Any]]:
    """command -> {click parameter name: the library's default} (heavy imports allowed here)."""
    from embedhead.backbone.presets import init_backbone
    from embedhead.experiments.sweep import SweepConfig, sweep_from_files
    from embedhead.heads.evaluate import evaluate_run
    from embedhead.heads.predict import predict_to_tsv
    from embedhead.heads.train import run_training

    prep = {
        name: field(PrepareConfig, name)
        for name in (
            "reference",
            "query",
            "chunk_size",
            "min_length",
            "scoring",
            "negatives",
            "negative_ratio",
            "length_match",
            "split_by",
            "chrom_sizes",
            "fmt",
            "seed",
        )
    }
    prep["split_fractions"] = commas(field(PrepareConfig, "split_fractions"))
    prep["match"] = DEFAULT_MATCH
    prep["gc_tolerance"] = DEFAULT_GC_TOLERANCE
    prep["kmer_tolerance"] = DEFAULT_KMER_TOLERANCE
    sim = {
        name: field(SimulateConfig, name)
        for name in ("n_blocks", "reference", "mean_length", "long_fraction", "scoring", "seed")
    }
    sim["species"] = commas(field(SimulateConfig, "species"))
    train = {
        name: field(TrainConfig, name)
        for name in (
            "epochs",
            "batch_size",
            "lr",
            "weight_decay",
            "patience",
            "train_size",
            "seed",
            "device",
            "loader",
            "task",
            "keep",
            "threshold",
        )
    }
    train["head_kind"] = field(TrainConfig, "head")
    train["dropout"] = field(HeadConfig, "dropout")
    train["repeats"] = keyword(run_training, "repeats")
    sweep = {
        "trials": field(SweepConfig, "n_trials"),
        "repeats": field(SweepConfig, "repeats"),
        "workers": field(SweepConfig, "workers"),
        "seed": field(SweepConfig, "seed"),
        "sampler": field(SweepConfig, "sampler"),
        "pruner": field(SweepConfig, "pruner"),
        "batch_trials": field(SweepConfig, "batch_trials"),
    }
    for name, key in (("trials", "n_trials"), ("repeats", "repeats"), ("workers", "workers")):
        assert keyword(sweep_from_files, key) == sweep[name]
    assert keyword(sweep_from_files, "seed") == sweep["seed"]
    assert keyword(sweep_from_files, "sampler") == sweep["sampler"]
    assert keyword(sweep_from_files, "pruner") == sweep["pruner"]
    assert keyword(sweep_from_files, "batch_trials") == sweep["batch_trials"]
    return {
        "prepare": prep,
        "simulate": sim,
        "init-backbone": {"seed": keyword(init_backbone, "seed")},
        "embed": {
            name: field(EmbedConfig, name)
            for name in ("dtype", "device", "precision", "compression", "batch_tokens")
        }
        | {"max_length": field(EmbedConfig, "max_length")},
        "train": train,
        "evaluate": {
            "split": keyword(evaluate_run, "split"),
            "device": keyword(evaluate_run, "device"),
        },
        "predict": {
            "device": keyword(predict_to_tsv, "device"),
            "max_length": keyword(predict_to_tsv, "max_length"),
        },
        "sweep": sweep,
        "baselines": {
            "task": field(BaselineConfig, "task"),
            "ks": commas(field(BaselineConfig, "ks")),
            "models": commas(field(BaselineConfig, "models")),
            "seed": field(BaselineConfig, "seed"),
        },
    }


LIBRARY_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "prepare": {
        "negatives": NEGATIVE_METHODS,
        "split_by": SPLIT_MODES,
        "fmt": FORMATS,
        "match": MATCH_MODES,
    },
    "embed": {
        "dtype": DTYPES,
        "device": DEVICES,
        "precision": PRECISIONS,
        "compression": COMPRESSIONS,
    },
    "train": {
        "task": TASKS,
        "head_kind": HEAD_KINDS,
        "loader": LOADERS,
        "device": DEVICES,
        "keep": KEEP_CHOICES,
        "threshold": THRESHOLD_RULES,
        "preset": PRESET_NAMES,
    },
    "evaluate": {"split": SPLITS, "device": DEVICES},
    "predict": {"device": DEVICES},
    "sweep": {
        "task": TASKS,
        "head_kind": HEAD_KINDS,
        "sampler": SAMPLERS,
        "pruner": PRUNERS,
        "preset": PRESET_NAMES,
    },
    "experiment": {"preset": PRESET_NAMES},
    "baselines": {"task": TASKS, "head_kind": HEAD_KINDS, "preset": PRESET_NAMES},
}


def all_commands() -> dict[str, click.Command]:
    """Every leaf command by its full name ("store info" for a group's subcommand)."""
    out: dict[str, click.Command] = {}
    for name, command in main.commands.items():
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                out[f"{name} {sub_name}"] = sub
        else:
            out[name] = command
    return out


def options(command: click.Command) -> dict[str, click.Option]:
    return {
        p.name: p
        for p in command.params
        if isinstance(p, click.Option) and p.name and p.name not in ("help", "version")
    }


def test_every_mapped_default_equals_the_library() -> None:
    expected = library_defaults()
    commands = all_commands()
    for command_name, defaults in expected.items():
        opts = options(commands[command_name])
        for name, value in defaults.items():
            assert name in opts, f"{command_name}: no option for {name}"
            got = opts[name].default
            assert got == value and type(got) is type(value), (
                f"embedhead {command_name} --{name}: CLI default {got!r}, library {value!r}"
            )


def test_every_choice_equals_the_library_tuple() -> None:
    commands = all_commands()
    for command_name, choices in LIBRARY_CHOICES.items():
        opts = options(commands[command_name])
        for name, values in choices.items():
            param_type = opts[name].type
            assert isinstance(param_type, click.Choice), f"{command_name} --{name} is no Choice"
            assert tuple(param_type.choices) == values, f"{command_name} --{name}"


def test_no_option_default_or_choice_is_unmapped() -> None:
    """A new option with a default/choices must be mapped above (or be a flag / None)."""
    expected = library_defaults()
    for command_name, command in all_commands().items():
        for name, opt in options(command).items():
            if isinstance(opt.type, click.Choice):
                assert name in LIBRARY_CHOICES.get(command_name, {}), (
                    f"embedhead {command_name} --{name}: Choice not tied to a library tuple"
                )
            unset = opt.default is None or type(opt.default).__name__ == "Sentinel"  # click 8.3
            if opt.is_flag or opt.required or unset or opt.multiple or opt.nargs != 1:
                continue
            if name == "preset":  # checked by test_init_backbone_preset_is_known
                continue
            assert name in expected.get(command_name, {}), (
                f"embedhead {command_name} --{name}: default {opt.default!r} not tied to the "
                "library"
            )


def test_init_backbone_preset_is_known() -> None:
    from embedhead.backbone.presets import PRESETS

    preset = options(all_commands()["init-backbone"])["preset"]
    assert preset.default in PRESETS
    assert all(name in (preset.help or "") for name in PRESETS)


@pytest.mark.parametrize(
    "module",
    [
        "embedhead.heads.config",
        "embedhead.embed.config",
        "embedhead.prepare.config",
        "embedhead.experiments.config",
        "embedhead.store.options",
        "embedhead.cli.main",
    ],
)
def test_config_modules_import_neither_torch_nor_numpy(module: str) -> None:
    code = (
        f"import sys, {module}; print(','.join(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_baselines_import_no_torch() -> None:
    code = "import sys, embedhead.experiments.baselines; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_retyped_default_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check fails when a CLI default differs from the library (as after a retype)."""
    epochs = options(all_commands()["train"])["epochs"]
    monkeypatch.setattr(epochs, "default", field(TrainConfig, "epochs") + 1)
    with pytest.raises(AssertionError, match="--epochs"):
        test_every_mapped_default_equals_the_library()
