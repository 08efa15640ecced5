"""Attack embedhead as a hostile user would and count the outcomes (not CI).

    python benchmarks/stress.py [--quick] [--tries N] [--hogs H] [--work DIR]

Cases (each try is a real ``python -m embedhead`` subprocess):

* ``embed-kill .zarr`` / ``embed-kill .h5``: kill -9 at a random moment, rerun, compare with a
  clean run of the same store type id by id (positions and pooled rows, bit for bit).
* ``train-kill``: kill -9 ``train`` at a random moment; the ``--out`` folder must be absent or
  complete, and the same command must then succeed.
* ``sweep-kill``: kill -9 ``sweep`` at a random moment; the same command must finish the study.
* ``damaged <how>``: a copy of the clean Zarr store with one chunk deleted / truncated /
  byte-flipped / replaced by a copy of another chunk of ``positions`` (valid crc32c, wrong
  place), and the ``lengths`` index chunk deleted, read by ``store verify`` and ``train``: each
  must fail with a clear error; exit 0 counts as silent-wrong.
* ``disk-full``: ``embed`` into a small tmpfs (only as root, where ``mount`` works; otherwise
  the case is skipped and the table says so).

Kills run while ``--hogs`` busy-looping processes compete for the cores. The table has one row
per case: tries, ok, clear errors, tracebacks, silent-wrong, data lost. Targets: 0 tracebacks,
0 silent-wrong, 0 data lost. ``--quick`` (2 tries, small data) takes a few minutes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SLOW_ENV = "EMBEDHEAD_TEST_BATCH_SLEEP"  # embedhead.embed.run.SLOW_ENV (no torch import here)
BATCH_TOKENS = "800"


@dataclass
class Tally:
    """Outcomes of one case."""

    tries: int = 0
    ok: int = 0
    clear: int = 0
    tracebacks: int = 0
    silent_wrong: int = 0
    data_lost: int = 0
    notes: list[str] = field(default_factory=list)


def _hog() -> None:  # pragma: no cover - a busy loop
    while True:
        pass


def cli(args: list[str], *, slow: float = 0.0) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", SLOW_ENV: str(slow)}
    return subprocess.Popen(
        [sys.executable, "-m", "embedhead", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run(args: list[str], *, slow: float = 0.0, timeout: float = 900) -> tuple[int, str]:
    proc = cli(args, slow=slow)
    try:
        out = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9, proc.communicate()[0] + "\n(timeout)"
    return proc.returncode, out


def killed(args: list[str], *, slow: float, after: float) -> tuple[bool, str]:
    """Start ``args``, kill -9 after ``after`` seconds; (was it still running, output)."""
    proc = cli(args, slow=slow)
    deadline = time.monotonic() + after
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    return alive, proc.communicate()[0]


def judge(tally: Tally, rc: int, out: str, *, want_ok: bool) -> bool:
    """Count one outcome; True when the command succeeded as wanted."""
    tally.tries += 1
    if "Traceback" in out or rc < 0 or rc > 2:
        tally.tracebacks += 1
        tally.notes.append(out.strip().splitlines()[-1][:160] if out.strip() else f"rc={rc}")
        return False
    if rc == 0 and want_ok:
        tally.ok += 1
        return True
    if rc == 0:
        tally.silent_wrong += 1
        return False
    if want_ok:
        tally.clear += 1  # a clear error where success was expected: still counted as clear
        tally.notes.append(out.strip().splitlines()[-1][:160])
        return False
    tally.clear += 1
    return False


def same_store(got: Path, ref: Path) -> tuple[bool, bool]:
    """(identical, nothing missing) of two stores, compared id by id."""
    sys.path.insert(0, str(ROOT))
    from embedhead.store import open_store

    with open_store(got) as a, open_store(ref) as b:
        missing = set(b.ids()) - set(a.ids())
        if missing:
            return False, False
        equal = all(np.array_equal(a.get(s), b.get(s)) for s in b.ids())
        equal = equal and np.array_equal(a.get_pooled(b.ids()), b.get_pooled(b.ids()))
        return equal, True


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    parts = path.with_name(path.name + ".parts")
    if parts.exists():
        shutil.rmtree(parts)


def embed_args(ds: Path, bb: Path, store: Path) -> list[str]:
    return ["embed", str(ds), "--backbone", str(bb), "--store", str(store), "--device", "cpu",
            "--batch-tokens", BATCH_TOKENS, "--quiet"]  # fmt: skip


def case_embed_kill(work: Path, ds: Path, bb: Path, suffix: str, tries: int, rng: random.Random,
                    refs: dict[str, Path]) -> Tally:  # fmt: skip
    tally = Tally()
    for i in range(tries):
        store = work / f"kill-{i}{suffix}"
        remove(store)
        alive, _ = killed(embed_args(ds, bb, store), slow=0.1, after=rng.uniform(3.0, 12.0))
        if not alive:
            tally.notes.append(f"try {i}: the run finished before the kill")
        rc, out = run(embed_args(ds, bb, store))
        if judge(tally, rc, out, want_ok=True):
            equal, complete = same_store(store, refs[suffix])
            if not equal:
                tally.ok -= 1
                tally.silent_wrong += 1
                tally.data_lost += not complete
        remove(store)
    return tally


def train_args(ds: Path, store: Path, out: Path, epochs: int) -> list[str]:
    return ["train", str(ds), "--store", str(store), "--out", str(out), "--epochs", str(epochs),
            "--device", "cpu", "--quiet"]  # fmt: skip


def case_train_kill(work: Path, ds: Path, store: Path, tries: int, rng: random.Random) -> Tally:
    tally = Tally()
    for i in range(tries):
        out = work / f"train-kill-{i}"
        alive, _ = killed(train_args(ds, store, out, 30), slow=0, after=rng.uniform(2.0, 15.0))
        if out.exists() and not (out / "run.json").is_file() and alive:
            tally.data_lost += 1  # a half-written run under the final name
            tally.notes.append(f"try {i}: partial {out.name}")
        if out.exists():
            shutil.rmtree(out)
        rc, text = run(train_args(ds, store, out, 2))
        judge(tally, rc, text, want_ok=True)
        shutil.rmtree(out, ignore_errors=True)
    return tally


def case_sweep_kill(work: Path, ds: Path, store: Path, tries: int, rng: random.Random) -> Tally:
    tally = Tally()
    for i in range(tries):
        out = work / f"sweep-kill-{i}"
        args = ["sweep", str(ds), "--store", str(store), "--out", str(out), "--trials", "4",
                "--epochs", "2", "--workers", "1", "--seed", "1", "--head", "pooled"]  # fmt: skip
        killed(args, slow=0, after=rng.uniform(3.0, 20.0))
        rc, text = run(args)
        if judge(tally, rc, text, want_ok=True) and not (out / "best.json").is_file():
            tally.ok -= 1
            tally.data_lost += 1
        shutil.rmtree(out, ignore_errors=True)
    return tally


def _chunk(store: Path, array: str) -> Path:
    files = sorted(p for p in (store / array).rglob("*") if p.is_file() and p.name != "zarr.json")
    return files[len(files) // 2]


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _copy_over(path: Path) -> None:
    """``cp`` another chunk file of the same array over this one (a valid, misplaced chunk)."""
    array = next(p for p in path.parents if (p / "zarr.json").is_file())
    others = sorted(p for p in array.rglob("*") if p.is_file() and p.name != "zarr.json")
    source = next(p for p in others if p != path and p.read_bytes() != path.read_bytes())
    shutil.copy(source, path)


DAMAGE: dict[str, tuple[str, Callable[[Path], None]]] = {
    "delete positions chunk": ("positions", _delete),
    "truncate positions chunk": ("positions", _truncate),
    "flip positions chunk": ("positions", _flip),
    "copy a positions chunk": ("positions", _copy_over),
    "delete lengths chunk": ("lengths", _delete),
}


def case_damaged(work: Path, ds: Path, ref: Path, how: str) -> Tally:
    tally = Tally()
    array, damage = DAMAGE[how]
    copy = work / "damaged.zarr"
    for command in ("verify", "train"):
        remove(copy)
        shutil.copytree(ref, copy)
        damage(_chunk(copy, array))
        if command == "verify":
            rc, out = run(["store", "verify", str(copy), "--dataset", str(ds)])
        else:
            rc, out = run(train_args(ds, copy, work / "damaged-run", 1))
            shutil.rmtree(work / "damaged-run", ignore_errors=True)
        judge(tally, rc, out, want_ok=False)
    remove(copy)
    return tally


def case_disk_full(work: Path, ds: Path, bb: Path) -> Tally | str:
    if os.geteuid() != 0:
        return "skipped: needs root to mount a small tmpfs"
    mnt = work / "full"
    mnt.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        return f"skipped: mount failed ({mounted.stderr.strip()[:80]})"
    tally = Tally()
    try:
        for suffix in (".zarr", ".h5"):
            rc, out = run([*embed_args(ds, bb, mnt / f"s{suffix}"), "--no-space-check"])
            judge(tally, rc, out, want_ok=False)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 tries per case, small data")
    parser.add_argument("--tries", type=int, default=None, help="kills per case (default 5)")
    parser.add_argument("--hogs", type=int, default=1, help="busy-looping processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    tries = args.tries or (2 if args.quick else 5)
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="embedhead-stress-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    blocks = "30" if args.quick else "80"
    steps = [  # (what it makes, the command)
        (work / "s.maf", ["simulate", "--out", str(work / "s.maf"), "--blocks", blocks]),
        (work / "ds", ["prepare", str(work / "s.maf"), "--out", str(work / "ds"),
                       "--chunk-size", "400", "--quiet"]),
        (work / "bb", ["init-backbone", "--preset", "tiny-1k", "--seed", "0", str(work / "bb")]),
    ]  # fmt: skip
    for made, step in steps:
        if not made.exists():
            rc, out = run(step)
            if rc != 0:
                sys.exit(f"setup step {step[0]} failed: {out[-500:]}")
    ds, bb = work / "ds", work / "bb"
    refs = {}
    for suffix in (".zarr", ".h5"):
        refs[suffix] = work / f"clean{suffix}"
        if not refs[suffix].exists():
            rc, out = run(embed_args(ds, bb, refs[suffix]))
            if rc != 0:
                sys.exit(f"clean embed failed: {out[-500:]}")
    print(f"setup in {time.perf_counter() - t0:.0f} s; work folder {work}", flush=True)

    results: dict[str, Tally | str] = {}
    hogs = [mp.Process(target=_hog, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    try:
        for suffix in (".zarr", ".h5"):
            results[f"embed-kill {suffix}"] = case_embed_kill(
                work, ds, bb, suffix, tries, rng, refs
            )
            print(f"done: embed-kill {suffix}", flush=True)
        results["train-kill"] = case_train_kill(work, ds, refs[".zarr"], tries, rng)
        print("done: train-kill", flush=True)
        results["sweep-kill"] = case_sweep_kill(work, ds, refs[".zarr"], tries, rng)
        print("done: sweep-kill", flush=True)
    finally:
        for hog in hogs:
            hog.terminate()
    for how in DAMAGE:
        results[f"damaged: {how}"] = case_damaged(work, ds, refs[".zarr"], how)
    results["disk-full (tmpfs)"] = case_disk_full(work, ds, bb)

    header = (
        f"{'case':34s} {'tries':>5s} {'ok':>4s} {'clear':>6s} {'traceb':>7s} {'silent':>7s} "
        f"{'lost':>5s}"
    )
    print("\n" + header)
    print("-" * len(header))
    total = Tally()
    for name, tally in results.items():
        if isinstance(tally, str):
            print(f"{name:34s} {tally}")
            continue
        for attr in ("tries", "ok", "clear", "tracebacks", "silent_wrong", "data_lost"):
            setattr(total, attr, getattr(total, attr) + getattr(tally, attr))
        print(f"{name:34s} {tally.tries:5d} {tally.ok:4d} {tally.clear:6d} {tally.tracebacks:7d} "
              f"{tally.silent_wrong:7d} {tally.data_lost:5d}")  # fmt: skip
    print("-" * len(header))
    print(f"{'total':34s} {total.tries:5d} {total.ok:4d} {total.clear:6d} {total.tracebacks:7d} "
          f"{total.silent_wrong:7d} {total.data_lost:5d}")  # fmt: skip
    print(
        f"(hogs: {args.hogs}; {time.perf_counter() - t0:.0f} s; ok = succeeded where success "
        "was expected; clear = a clean error message, exit 1)"
    )
    for name, tally in results.items():
        if not isinstance(tally, str):
            for note in tally.notes[:3]:
                print(f"  {name}: {note}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
