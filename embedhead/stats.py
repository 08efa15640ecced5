"""Mean ± standard deviation over repeats: the one rule every summary uses (numpy, no torch).

:func:`mean_std` takes a sequence of floats (metric values over repeats/seeds) and returns
``(mean, std)`` as Python floats:

- ``std`` is the *sample* standard deviation (``ddof=1``);
- one value: ``(value, 0.0)`` (a single run has no spread, reported as 0 rather than undefined);
- no values, or any NaN/inf among them: ``(nan, nan)``. Nothing is dropped silently: a repeat
  whose metric is undefined makes the summary undefined (written as ``null`` in JSON, ``-`` in
  tables).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, sample std)`` of ``values``; see the module docstring for the NaN rule."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or not np.isfinite(arr).all():
        return math.nan, math.nan
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std
