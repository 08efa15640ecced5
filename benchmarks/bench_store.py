"""Benchmark: the store at disk speed (``--read``: the training reader; ``--write``: the writer).

``--read`` builds a float16 zstd ``.zarr`` store of random rows (``--sequences`` sequences of
``--min-len``..``--max-len`` positions, d_model ``--d-model``) plus pairs over it (each sequence
with a storage neighbour and with a random partner), then measures in one run:

* direct: reading every chunk file of ``positions`` and blosc-decoding it (thread pool and one
  thread): what the disk and codec allow;
* in-memory load: ``load_pairs(..., loader="memory")`` (every needed stored chunk read once);
* epochs over the training order (``PairSource.epoch_order``): gathering batches only, and
  training a thesis head, both streamed and in memory; the streamed ones with the reader
  budget users get by default (``BLOCK_CACHE_BYTES``) and with a small one (``--cache-mb``,
  below the store's size), with the chunk reads each streamed epoch makes;
* peak RSS of a streamed epoch in a fresh process at 1x, 2x and 4x the dataset size (both
  budgets; ``--scales 1,2,4,8,16`` for more points).

Figures are MB/s of stored (float16) payload; ratios against the direct read (target >= 0.5) and
streamed / in-memory epoch time (target <= 1.2). Runs in about a minute on 2 CPU cores:

    python benchmarks/bench_store.py --read
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median
from typing import Any

import numcodecs
import numpy as np
import torch

from benchmarks.store_write import bench_write
from embedhead.heads import data as heads_data
from embedhead.heads.data import PairSpec, load_pairs
from embedhead.heads.models import HeadConfig, build_head
from embedhead.store import layout, open_store, open_writer

MB = 1e6


def say(message: str) -> None:
    """Progress on stderr (the figures go to stdout)."""
    print(f"[bench_store] {message}", file=sys.stderr, flush=True)


def make_store(path: Path, n: int, min_len: int, max_len: int, d_model: int, seed: int) -> None:
    """A float16 zstd store of ``n`` random sequences (ids ``s00000``...), written in batches."""
    rng = np.random.default_rng(seed)
    attrs = {
        "format_version": layout.FORMAT_VERSION,
        "backbone": {"name": "bench", "config": {"d_model": d_model}, "weight_hash": "0"},
        "backbone_key": "bench",
        "tokenizer": {"name": "bench"},
        "dtype": "float16",
        "storage_dtype": "float16",
        "d_model": d_model,
        "pooled_only": False,
        "max_length": None,
        "compression": "zstd",
        "command": "bench_store",
        "created": "now",
    }
    with open_writer(path, attrs) as writer:
        for start in range(0, n, 64):
            ids = [f"s{i:05d}" for i in range(start, min(n, start + 64))]
            arrays = [
                rng.standard_normal((int(rng.integers(min_len, max_len + 1)), d_model)).astype(
                    np.float32
                )
                for _ in ids
            ]
            writer.write(ids, arrays, np.stack([a.mean(axis=0) for a in arrays]))
            writer.commit()


def make_specs(store: Any, seed: int) -> dict[str, list[PairSpec]]:
    """Each sequence paired with its storage neighbour (positive) and a random one (negative)."""
    ids = store.ids()
    rng = np.random.default_rng(seed)
    specs = []
    for i, sid in enumerate(ids):
        specs.append(PairSpec(f"p{i}", sid, ids[i ^ 1 if i ^ 1 < len(ids) else i], 1.0, 1))
        specs.append(PairSpec(f"n{i}", sid, ids[int(rng.integers(len(ids)))], 0.0, 0))
    return {"train": specs}


def direct_read(path: Path, threads: int) -> tuple[float, int]:
    """Seconds to read + blosc-decode every chunk file of ``positions``; decoded bytes."""
    meta = json.loads((path / layout.POSITIONS / "zarr.json").read_text())
    rows = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
    n_chunks = -(-int(meta["shape"][0]) // rows)
    sep = meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/")
    files = [path / layout.POSITIONS / f"c{sep}{k}{sep}0" for k in range(n_chunks)]
    blosc = numcodecs.Blosc()

    def one(file: Path) -> int:
        raw = blosc.decode(file.read_bytes())
        return np.frombuffer(raw, dtype=np.float16).nbytes

    start = time.perf_counter()
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(one, files))
    else:
        total = sum(one(f) for f in files)
    return time.perf_counter() - start, total


def epoch_order(source: Any, seed: int, batch_size: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    if hasattr(source, "epoch_order"):
        return np.asarray(source.epoch_order(generator, batch_size))
    return torch.randperm(len(source), generator=generator).numpy()  # the reader before issue 10


def gather_epoch(source: Any, order: np.ndarray, batch_size: int) -> tuple[float, int]:
    """Seconds to gather every batch of ``order``; float16 bytes gathered (both sides)."""
    start = time.perf_counter()
    total = 0
    for batch in source.batches(batch_size, order):
        assert batch.m1 is not None and batch.m2 is not None
        total += int(batch.m1.sum() + batch.m2.sum()) * batch.x1.shape[-1] * 2
    return time.perf_counter() - start, total


def _blocks_read(source: Any, order: np.ndarray, batch_size: int) -> str:
    """Stored chunks one streamed epoch reads, against the number of chunks in the store."""
    reader = getattr(source.sequences, "reader", None)
    if reader is None:
        return "n/a (per-sequence reads)"
    gather_epoch(source, order, batch_size)
    plan = getattr(source.sequences, "last_plan", None)
    held = (
        ""
        if plan is None
        else (f", budget {plan.budget / MB:.1f} MB, rows held at most {plan.peak / MB:.1f} MB")
    )
    return f"{reader.blocks_read} ({reader.store.n_blocks()} chunks in the store{held})"


def train_epoch(source: Any, order: np.ndarray, batch_size: int, d_model: int) -> float:
    """Seconds for one epoch of BCE + Adam on a small thesis head."""
    torch.manual_seed(0)
    head = build_head(HeadConfig(d_model=d_model, conv_channels=16, hidden_sizes=(32,)))
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-3)
    start = time.perf_counter()
    for batch in source.batches(batch_size, order):
        raw = head(batch.x1, batch.x2, batch.m1, batch.m2)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(raw, batch.targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def _rss_mb() -> float:
    """Peak resident memory of this process so far (VmHWM: reset by exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def set_cache(mb: float) -> None:
    """Budget of the streamed reader's chunk cache (only where the reader has one)."""
    if hasattr(heads_data, "BLOCK_CACHE_BYTES"):
        heads_data.BLOCK_CACHE_BYTES = int(mb * MB)


def peak_child(path: str, batch_size: int, cache_mb: float) -> None:
    """(child process) Peak RSS before and after one streamed gather epoch, as JSON."""
    set_cache(cache_mb)
    with open_store(path) as store:
        data = load_pairs(store, make_specs(store, 0), kind="thesis", task="classification",
                          loader="stream")  # fmt: skip
        source = data["train"]
        before = _rss_mb()
        gather_epoch(source, epoch_order(source, 0, batch_size), batch_size)
        plan = getattr(source.sequences, "last_plan", None)
        held = {} if plan is None else {"budget_mb": plan.budget / MB, "held_mb": plan.peak / MB}
        print(json.dumps({"before_mb": before, "peak_mb": _rss_mb(), **held}))


def bench_read(args: argparse.Namespace) -> None:
    """The ``--read`` benchmark (see the module docstring)."""
    torch.set_num_threads(args.threads)
    default_cache = float(getattr(heads_data, "BLOCK_CACHE_BYTES", 0))
    set_cache(args.cache_mb)
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=args.tmp) as tmp:
        root = Path(tmp)
        paths = {}
        for scale in args.scales:
            say(f"writing the {scale}x store")
            paths[scale] = root / f"x{scale}.zarr"
            make_store(paths[scale], scale * args.sequences, args.min_len, args.max_len,
                       args.d_model, args.seed)  # fmt: skip
        path = paths[1]
        direct_pool, payload = min(direct_read(path, args.read_threads) for _ in range(3))
        direct_one, _ = min(direct_read(path, 1) for _ in range(3))
        with open_store(path) as store:
            specs = make_specs(store, args.seed)
            kw: dict[str, Any] = {"kind": "thesis", "task": "classification"}

            def load() -> float:
                t0 = time.perf_counter()
                load_pairs(store, specs, loader="memory", **kw)
                return time.perf_counter() - t0

            def direct_now() -> float:
                return direct_read(path, args.read_threads)[0]

            # each ratio is taken from back-to-back runs (the machine is shared), median of 5
            load_ratios = [d / t for d, t in ((direct_now(), load()) for _ in range(5))]
            t_load = load()
            memory = load_pairs(store, specs, loader="memory", **kw)["train"]
            order = epoch_order(memory, args.seed, args.batch_size)

            def stream() -> Any:  # a fresh streamed source: a cold chunk cache every epoch
                return load_pairs(store, specs, loader="stream", **kw)["train"]

            t_gm, gathered = min(gather_epoch(memory, order, args.batch_size) for _ in range(3))
            share = gathered / payload  # bytes gathered per byte stored

            def stream_ratio() -> float:
                d = direct_now()
                return share * d / gather_epoch(stream(), order, args.batch_size)[0]

            figures = {}  # cache MB -> streamed figures, the library default first
            for cache_mb in (default_cache / MB, args.cache_mb):
                set_cache(cache_mb)
                gather_ratios = [stream_ratio() for _ in range(3)]
                t_gs, _ = min(gather_epoch(stream(), order, args.batch_size) for _ in range(3))
                reads = _blocks_read(stream(), order, args.batch_size)
                train_ratios, t_tm, t_ts = [], 0.0, 0.0
                for _ in range(3):
                    t_tm = train_epoch(memory, order, args.batch_size, args.d_model)
                    t_ts = train_epoch(stream(), order, args.batch_size, args.d_model)
                    train_ratios.append(t_ts / t_tm)
                figures[cache_mb] = (gather_ratios, t_gs, reads, train_ratios, t_tm, t_ts)
        peaks: dict[float, dict[int, dict[str, float]]] = {}
        for cache_mb in figures:
            for scale, p in paths.items():
                out = subprocess.run(
                    [sys.executable, __file__, "--peak-child", str(p), "--batch-size",
                     str(args.batch_size), "--cache-mb", str(cache_mb)],
                    check=True, capture_output=True, text=True,
                    env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                )  # fmt: skip
                peaks.setdefault(cache_mb, {})[scale] = json.loads(
                    out.stdout.strip().splitlines()[-1]
                )
    mbs = payload / MB
    print(
        f"store: {args.sequences} sequences x {args.min_len}-{args.max_len} positions, d_model "
        f"{args.d_model}, float16 zstd, {mbs:.1f} MB of rows; {len(order)} pairs, batch "
        f"{args.batch_size}; {args.threads} torch threads, {args.read_threads} read threads"
    )
    print(f"direct read+decode of chunk files: pool {mbs / direct_pool:8.1f} MB/s, "
          f"1 thread {mbs / direct_one:8.1f} MB/s")  # fmt: skip
    print(f"in-memory load:                    {mbs / t_load:8.1f} MB/s   "
          f"ratio to direct {median(load_ratios):.2f} (target >= 0.5)")  # fmt: skip
    gm = gathered / MB / t_gm
    print(f"gather epoch, in memory:           {gm:8.1f} MB/s gathered ({t_gm:.3f} s)")
    for cache_mb, (gather_ratios, t_gs, reads, train_ratios, t_tm, t_ts) in figures.items():
        which = (
            "library default (sized from the plan)" if cache_mb == default_cache / MB else "small"
        )
        print(f"streamed, {which} budget, ceiling {cache_mb:.0f} MB:")
        print(f"  gather epoch {gathered / MB / t_gs:8.1f} MB/s gathered ({t_gs:.3f} s)   "
              f"ratio to direct {median(gather_ratios):.2f} (target >= 0.5); "
              f"chunk reads per epoch {reads}")  # fmt: skip
        print(
            f"  train epoch in memory {t_tm:.3f} s, streamed {t_ts:.3f} s: streamed / "
            f"in-memory {median(train_ratios):.2f}x (median of 3 pairs; target <= 1.2x)"
        )
        print("  peak RSS of a streamed epoch (growth during the epoch; rows held / budget): "
              + ", ".join(
            f"{s}x {v['peak_mb']:.0f} MB (+{v['peak_mb'] - v['before_mb']:.0f}; "
            f"{v.get('held_mb', 0):.0f}/{v.get('budget_mb', 0):.0f})"
            for s, v in peaks[cache_mb].items()
        ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--read", action="store_true", help="benchmark the training reader")
    mode.add_argument("--write", action="store_true", help="benchmark the writer")
    mode.add_argument("--peak-child", metavar="STORE", help=argparse.SUPPRESS)
    parser.add_argument("--sequences", type=int, default=400, help="sequences at 1x")
    parser.add_argument("--min-len", type=int, default=100)
    parser.add_argument("--max-len", type=int, default=400)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--read-threads",
        type=int,
        default=getattr(heads_data, "READ_THREADS", os.cpu_count() or 1),
        help="threads of the direct read (default: those of the library reader)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scales",
        type=lambda text: sorted({int(v) for v in text.split(",")} | {1}),
        default=[1, 2, 4],
        help="dataset sizes (x --sequences) of the peak-memory children; 1 is always added "
        "(the timed figures use the 1x store; default 1,2,4)",
    )
    parser.add_argument(
        "--cache-mb", type=float, default=16, help="small streamed budget (below the store size)"
    )
    parser.add_argument("--tmp", default=None, help="folder for the temporary stores")
    write = parser.add_argument_group("--write")
    write.add_argument("--mb", type=int, default=256, help="payload MiB (store dtype)")
    write.add_argument("--dtype", default="float16")
    write.add_argument("--length", type=int, default=1000, help="mean sequence length")
    write.add_argument("--batch-tokens", type=int, default=1 << 14)
    write.add_argument("--compression", nargs="+", default=["none", "lz4", "zstd"])
    write.add_argument("--repeats", type=int, default=3)
    write.add_argument("--dir", default=None, help="folder on the disk to measure")
    args = parser.parse_args()
    if args.peak_child:
        peak_child(args.peak_child, args.batch_size, args.cache_mb)
    elif args.read:
        bench_read(args)
    else:
        bench_write(args)


if __name__ == "__main__":
    main()
