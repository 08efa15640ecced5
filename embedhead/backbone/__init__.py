"""The frozen HyenaDNA backbone in plain PyTorch (no code from checkpoints is ever run).

``load_backbone(source, device=, dtype=) -> HyenaDNAModel``; ``model(ids (B, L)) -> (B, L, D)``.
See ``docs/backbone.md``.
"""

from __future__ import annotations

from embedhead.backbone.config import HyenaDNAConfig
from embedhead.backbone.identity import BackboneIdentity
from embedhead.backbone.load import load_backbone
from embedhead.backbone.model import HyenaDNAModel
from embedhead.backbone.presets import PRESETS, init_backbone, write_random_checkpoint
from embedhead.backbone.tokenizer import tokenize

__all__ = [
    "PRESETS",
    "BackboneIdentity",
    "HyenaDNAConfig",
    "HyenaDNAModel",
    "init_backbone",
    "load_backbone",
    "tokenize",
    "write_random_checkpoint",
]
