"""embedhead: would two DNA sequences align? Light heads on cached frozen HyenaDNA embeddings.

Pipeline (data flows one way):
    alignments -> pairs/dataset -> tokens -> backbone -> store      (``prepare``, ``embed``)
    store -> head datasets -> heads -> train/sweep -> metrics       (``train``, ``sweep``, ...)

This package module imports nothing, so ``prepare`` stays light; the backbone lives in
:mod:`embedhead.backbone` (``from embedhead.backbone import load_backbone, tokenize``).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
