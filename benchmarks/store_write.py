"""The ``--write`` half of bench_store.py: the embed write path vs ``tofile`` + fsync.

Feeds precomputed float32 rows by a stand-in backbone (benchmarks/fake_backbone.py, no model)
through plan, gather, cast to the store dtype, writer threads, whole-chunk region writes,
per-batch commit records and fold; against ``numpy.tofile`` + fsync of the same store-dtype
bytes on the same disk. Target: >= 0.5 of the disk for ``--compression none`` and ``lz4``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fake_backbone import FakeBackbone


# -- write ----------------------------------------------------------------------------------
def _items(total_rows: int, mean_length: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    items, rows, i = [], 0, 0
    while rows < total_rows:
        n = rng.randint(mean_length // 2, mean_length * 3 // 2)
        items.append((f"s{i}", "".join(rng.choices("ACGT", k=n))))
        rows += n
        i += 1
    return items


def disk_baseline(folder: Path, nbytes: int, dtype: str) -> float:
    """Seconds for ``tofile`` + fsync of ``nbytes`` of store-dtype rows (median of 3)."""
    values = np.random.default_rng(0).standard_normal(nbytes // 2, dtype=np.float32)
    data = values.astype(np.float16) if dtype != "float32" else values[: nbytes // 4]
    times = []
    for _ in range(3):
        path = folder / "baseline.bin"
        start = time.perf_counter()
        with open(path, "wb") as fh:
            data.tofile(fh)
            fh.flush()
            os.fsync(fh.fileno())
        times.append(time.perf_counter() - start)
        path.unlink()
    return float(np.median(times))


def fsync_tree(folder: Path) -> None:
    """fsync every file of a store (what ``tofile`` + fsync pays for its one file)."""
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_once(
    folder: Path, items: list[tuple[str, str]], d_model: int, dtype: str, compression: str,
    batch_tokens: int,
) -> float:  # fmt: skip
    """Seconds to embed ``items`` with the stand-in backbone into a new store (fsync'ed)."""
    from embedhead.embed.config import EmbedConfig
    from embedhead.embed.run import embed_sequences, store_attrs
    from embedhead.store import open_writer

    if d_model not in _MODELS:
        _MODELS[d_model] = FakeBackbone(d_model)
    model = _MODELS[d_model]
    path = folder / f"bench-{compression}.zarr"
    config = EmbedConfig(dtype=dtype, compression=compression, progress=False)
    start = time.perf_counter()
    with open_writer(path, store_attrs(model, config)) as writer:
        embed_sequences(items, writer, model, batch_tokens=batch_tokens)
    fsync_tree(path)  # the baseline pays its fsync too
    seconds = time.perf_counter() - start
    shutil.rmtree(path)
    return seconds


_MODELS: dict[int, FakeBackbone] = {}


def bench_write(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    row_bytes = args.d_model * (4 if args.dtype == "float32" else 2)
    total_rows = args.mb * 2**20 // row_bytes
    items = _items(total_rows, args.length, 0)
    rows = sum(len(s) for _, s in items)
    payload = rows * row_bytes
    folder = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    try:
        disk = disk_baseline(folder, payload, args.dtype)
        print(f"payload {payload / 2**20:.0f} MiB of {args.dtype} rows (d_model {args.d_model}, "
              f"{len(items)} sequences, batch_tokens {args.batch_tokens}) in {folder}")  # fmt: skip
        print(f"disk: tofile+fsync {payload / disk / 2**20:8.1f} MiB/s ({disk:.2f} s)")
        print(f"{'compression':12s} {'MiB/s':>8s} {'seconds':>8s} {'x disk':>7s}")
        for compression in args.compression:
            write_once(folder, items[:50], args.d_model, args.dtype, compression, args.batch_tokens)
            seconds = min(
                write_once(folder, items, args.d_model, args.dtype, compression, args.batch_tokens)
                for _ in range(args.repeats)
            )
            print(f"{compression:12s} {payload / seconds / 2**20:8.1f} {seconds:8.2f} "
                  f"{disk / seconds:7.2f}")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- read (the read side of issue 10 fills this in) -----------------------------------------
