"""Shared fixtures. Real alignment files live in ../shared/realdata (tests skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real-data folder; skips the test cleanly when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real alignment data not found at {REALDATA}")
    return REALDATA
