"""embedhead: would two DNA sequences align? Light heads on cached frozen HyenaDNA embeddings.

Pipeline (data flows one way):
    alignments -> pairs/dataset -> tokens -> backbone -> store      (``prepare``, ``embed``)
    store -> head datasets -> heads -> train/sweep -> metrics       (``train``, ``sweep``, ...)

Heavy modules (torch, transformers) are imported lazily so ``prepare`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_backbone", "tokenize"]


def __getattr__(name: str) -> Any:
    if name == "load_backbone":
        from embedhead.backbone import load_backbone

        return load_backbone
    if name == "tokenize":
        from embedhead.backbone.tokenizer import tokenize

        return tokenize
    raise AttributeError(f"module 'embedhead' has no attribute {name!r}")
