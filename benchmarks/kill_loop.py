"""Run the kill -9 resume test N times in a row under a CPU hog; print pass counts (not CI).

    python benchmarks/kill_loop.py [--runs 20] [--hogs 2] [--suffix .h5 .zarr]

Each run is a fresh ``pytest`` process (fresh fixtures) of
``tests/test_embed_resume.py::test_killed_run_resumes_to_the_clean_result[SUFFIX]`` while
``--hogs`` busy-looping processes compete for the cores, which is how the flake of issue 10 /
issue 14 item 11 showed up. Prints one line per run and a table of passes per suffix.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/test_embed_resume.py::test_killed_run_resumes_to_the_clean_result"
BACKEND_IDS = {".h5": "hdf5", ".zarr": "zarr"}
"""Test id of each suffix (the ``backend`` fixture of tests/conftest.py names its params)."""


def _hog() -> None:  # pragma: no cover - a busy loop
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=2, help="busy-looping processes")
    parser.add_argument("--suffix", nargs="+", default=[".h5", ".zarr"], choices=BACKEND_IDS)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to test (default: this)")
    args = parser.parse_args()
    hogs = [mp.Process(target=_hog, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    env = {**os.environ, "PYTHONPATH": str(args.root)}
    passes = {s: 0 for s in args.suffix}
    try:
        for i in range(args.runs):
            for suffix in args.suffix:
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                     "-p", "no:randomly", f"{TEST}[{BACKEND_IDS[suffix]}]"],
                    cwd=args.root, env=env, capture_output=True, text=True,
                )  # fmt: skip
                ok = proc.returncode == 0
                passes[suffix] += ok
                why = [ln for ln in proc.stdout.splitlines() if ln.startswith("E ")][:3]
                tail = "" if ok else " | " + " ".join(why or proc.stdout.splitlines()[-3:])[:600]
                print(f"run {i + 1:2d} {suffix:6s} {'pass' if ok else 'FAIL'} "
                      f"{time.perf_counter() - t0:5.1f} s{tail}", flush=True)  # fmt: skip
    finally:
        for hog in hogs:
            hog.terminate()
    print(f"\n{'suffix':8s} {'passed':>7s} {'runs':>5s}  (hogs: {args.hogs})")
    for suffix, n in passes.items():
        print(f"{suffix:8s} {n:7d} {args.runs:5d}")


if __name__ == "__main__":
    main()
