"""The ``embedhead`` command group: every command, each with a one-line summary."""

from __future__ import annotations

import click

from embedhead import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="embedhead")
def main() -> None:
    """Would two DNA sequences align? Frozen HyenaDNA embeddings, cached once, light heads on top.

    \b
    Typical pipeline:
      embedhead prepare hg38.galGal6.maf.gz --reference hg38 --query galGal6 --out ds/
      embedhead init-backbone --preset tiny-1k bb/      (or a real checkpoint folder)
      embedhead embed ds/ --backbone bb/ --store ds.zarr
      embedhead train ds/ --store ds.zarr --out run/
      embedhead evaluate run/ --dataset ds/ --store ds.zarr
    """


def _register() -> None:
    from embedhead.cli import backbone, embed, experiments, heads, prepare

    for module in (prepare, backbone, embed, heads, experiments):
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()
