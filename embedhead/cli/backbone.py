"""CLI commands ``init-backbone`` (random checkpoint of a public shape) and ``backbone-info``."""

from __future__ import annotations

import json

import click

from embedhead.cli.common import library_errors, seed_option

DEFAULT_PRESET = "tiny-1k"

PRESET_HELP = (
    "Public checkpoint shape: tiny-1k, tiny-1k-d256, tiny-16k-d128, small-32k, medium-160k, "
    "medium-450k or large-1m."
)


@click.command("init-backbone")
@click.option("--preset", default=DEFAULT_PRESET, show_default=True, help=PRESET_HELP)
@seed_option(0)
@click.argument("out", type=click.Path(file_okay=False))
@library_errors
def init_backbone_command(preset: str, seed: int, out: str) -> None:
    """Write a RANDOMLY initialised HyenaDNA checkpoint (-hf layout) for demos and tests.

    The folder holds config.json and model.safetensors in the layout of the public
    LongSafari/hyenadna-*-hf files; its identity says random, so it is never taken for
    pretrained weights. OUT must not exist (or be empty).

    \b
    Example:
      embedhead init-backbone --preset tiny-1k --seed 0 bb/
      embedhead init-backbone --preset small-32k bb-small/
    """
    from embedhead.backbone.load import load_backbone
    from embedhead.backbone.presets import init_backbone

    path = init_backbone(preset, out, seed=seed)
    identity = load_backbone(path).identity
    click.echo(f"wrote {path}: {identity.describe()}")


@click.command("backbone-info")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print the identity as JSON.")
@library_errors
def backbone_info_command(source: str, as_json: bool) -> None:
    """Load a backbone (folder, weights.ckpt or Hub id) and print its identity.

    \b
    Example:
      embedhead backbone-info bb/
      embedhead backbone-info LongSafari/hyenadna-small-32k-seqlen-hf --json
    """
    from embedhead.backbone.load import load_backbone

    model = load_backbone(source)
    identity = model.identity
    if as_json:
        click.echo(json.dumps(identity.to_dict(), indent=2, sort_keys=True))
        return
    n_params = sum(p.numel() for p in model.parameters())
    config = identity.config
    click.echo(f"name:        {identity.name}")
    click.echo(f"key:         {identity.key}")
    click.echo(
        f"weights:     {'RANDOM (not pretrained)' if identity.random_init else 'pretrained'}"
    )
    click.echo(f"weight hash: {identity.weight_hash}")
    click.echo(
        f"shape:       d_model={config['d_model']} n_layer={config['n_layer']} "
        f"d_inner={config['d_inner']} max_seq_len={config['max_seq_len']} "
        f"({n_params:,} parameters)"
    )


COMMANDS: list[click.Command] = [init_backbone_command, backbone_info_command]
