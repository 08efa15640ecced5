"""``BackboneIdentity``: what a store records about the backbone that produced it.

``name`` is for people (a Hub id, a folder name, ``random-<preset>``); ``config`` holds the
architecture fields; ``weight_hash`` is the SHA-256 of the backbone tensors (independent of the
file format); ``random_init`` says the weights are random, not pretrained. Two identities describe
the same network exactly when their ``key`` (config hash + weight hash) is equal; the name is not
part of the key, so the same weights read from another folder compare equal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from embedhead.errors import IncompatibleError


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a config dict (sorted keys)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BackboneIdentity:
    """Identity of a loaded backbone (stored in embedding stores, compared before reuse)."""

    name: str
    config: dict[str, Any] = field(hash=False)
    weight_hash: str
    random_init: bool

    @property
    def key(self) -> str:
        """Short stable string ``<config hash 12>-<weight hash 16>`` that compares identities."""
        return f"{config_hash(self.config)[:12]}-{self.weight_hash[:16]}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (``key`` included for readers that only compare keys)."""
        return {
            "name": self.name,
            "config": dict(self.config),
            "weight_hash": self.weight_hash,
            "random_init": self.random_init,
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackboneIdentity:
        """Inverse of :meth:`to_dict` (an extra ``key`` entry is checked, then dropped)."""
        try:
            identity = cls(
                name=str(data["name"]),
                config=dict(data["config"]),
                weight_hash=str(data["weight_hash"]),
                random_init=bool(data["random_init"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IncompatibleError(f"not a backbone identity: {exc!r} in {data!r}") from exc
        stored_key = data.get("key")
        if stored_key is not None and stored_key != identity.key:
            raise IncompatibleError(
                f"backbone identity {identity.name!r}: stored key {stored_key!r} does not match "
                f"its config and weight hash ({identity.key!r})"
            )
        return identity

    def describe(self) -> str:
        """One human line: name, key, and a warning when the weights are random."""
        kind = "RANDOM weights (not pretrained)" if self.random_init else "pretrained weights"
        return f"{self.name} [{self.key}] {kind}"
