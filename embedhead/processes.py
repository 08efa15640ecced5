"""Process liveness (light: no torch, no numpy): used by the owners of lock objects, temporary
folders and sweep trials to tell a dead holder from a running one on this host."""

from __future__ import annotations

import os


def pid_running(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (one we may not signal counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
