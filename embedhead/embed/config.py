"""Options of the embed stage (no torch, no numpy): :class:`EmbedConfig` and its choice lists.

``embedhead embed`` takes every option default and choice list from here (and from
:mod:`embedhead.store.options` for the store dtype and codec); ``tests/test_cli_defaults.py``
checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from embedhead.embed.plan import WINDOW_NUCLEOTIDES
from embedhead.errors import ConfigError
from embedhead.store import options as layout

DEFAULT_BATCH_TOKENS = 1 << 16

PRECISIONS = ("float32", "bfloat16", "float16")
"""Backbone compute precisions: float32, or bfloat16/float16 autocast (CUDA only)."""

DEVICES = ("auto", "cpu", "cuda")
"""Where torch runs (``auto``: cuda when available); the library also accepts ``cuda:N``."""
DEFAULT_DEVICE = "auto"


@dataclass(frozen=True)
class EmbedConfig:
    """Options of an embed run (store dtype, device, batching, truncation, layout)."""

    dtype: str = layout.DEFAULT_DTYPE
    device: str = DEFAULT_DEVICE
    precision: str = "float32"
    compression: str = layout.DEFAULT_COMPRESSION
    expect_backbone_key: str | None = None
    """When set, refuse (before embedding anything) a backbone whose identity key differs."""
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    max_length: int | None = None
    pooled_only: bool = False
    progress: bool = True
    command: str = ""
    window_nucleotides: int = WINDOW_NUCLEOTIDES

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"--precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}"
            )
        if self.compression not in layout.COMPRESSIONS:
            raise ConfigError(
                f"--compression must be one of {', '.join(layout.COMPRESSIONS)}, "
                f"not {self.compression!r}"
            )
        if self.dtype not in layout.DTYPES:
            raise ConfigError(
                f"--dtype must be one of {', '.join(layout.DTYPES)}, not {self.dtype!r}"
            )
        if self.batch_tokens < 1:
            raise ConfigError(f"--batch-tokens must be positive, not {self.batch_tokens}")
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError(f"--max-length must be positive, not {self.max_length}")
