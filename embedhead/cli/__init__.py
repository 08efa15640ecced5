"""Thin click commands for embedhead, installed as ``embedhead.cli`` (console script ``embedhead``).

Each command parses its options, calls one library function and turns
:class:`embedhead.errors.EmbedheadError` into :class:`click.ClickException`. Library imports
happen inside the command bodies so ``embedhead --help`` stays fast.
"""
