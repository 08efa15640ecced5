"""The ``--write`` half of bench_store.py: the embed write path vs the disk, in one run.

Feeds precomputed float32 rows by a stand-in backbone (benchmarks/fake_backbone.py, no model)
through plan, gather, cast to the store dtype, writer threads, whole-chunk region writes,
per-batch commit records and fold, then fsyncs every file of the store. Against, on the same
disk and in the same run (medians of ``--repeats``):

* the fair baseline: the same store-dtype bytes written as the same number of chunk files
  (a new store's ``c.<k>.0`` layout: one file per chunk, all in the array's folder), each
  fsync'ed, as the writer's store is;
* ``tofile`` + fsync of all the bytes into one file (what the issue first measured);
* both again without fsync (page cache only), and the CPU seconds (all threads) of each:
  the writer's own cost, which a loaded machine distorts far less than wall time.

Target: >= 0.5 of the fair baseline for ``--compression none`` and ``lz4`` (zstd reported).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fake_backbone import FakeBackbone


def _items(total_rows: int, mean_length: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    items, rows, i = [], 0, 0
    while rows < total_rows:
        n = rng.randint(mean_length // 2, mean_length * 3 // 2)
        items.append((f"s{i}", "".join(rng.choices("ACGT", k=n))))
        rows += n
        i += 1
    return items


def _median_seconds(run: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (all threads of this process) of ``run``."""
    walls, cpus = [], []
    for _ in range(repeats):
        cpu = time.process_time()
        walls.append(run())
        cpus.append(time.process_time() - cpu)
    return float(median(walls)), float(median(cpus))


def one_file(folder: Path, data: np.ndarray, sync: bool) -> float:
    """Seconds for ``tofile`` (+ fsync) of ``data`` into one new file."""
    path = folder / "baseline.bin"
    start = time.perf_counter()
    with open(path, "wb") as fh:
        data.tofile(fh)
        fh.flush()
        if sync:
            os.fsync(fh.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def chunk_files(folder: Path, data: np.ndarray, chunk_rows: int, sync: bool) -> float:
    """Seconds to write ``data`` as one new file per chunk in one folder (a new store's
    ``c.<k>.0`` layout), fsync'ed each."""
    root = folder / "baseline-chunks"
    start = time.perf_counter()
    root.mkdir()
    for k in range(-(-data.shape[0] // chunk_rows)):
        with open(root / f"c.{k}.0", "wb") as fh:
            fh.write(data[k * chunk_rows : (k + 1) * chunk_rows].data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
    seconds = time.perf_counter() - start
    shutil.rmtree(root)
    return seconds


def fsync_tree(folder: Path) -> None:
    """fsync every file of a store (what the baselines pay for theirs)."""
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_once(
    folder: Path, items: list[tuple[str, str]], d_model: int, dtype: str, compression: str,
    batch_tokens: int, sync: bool = True,
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
    if sync:
        fsync_tree(path)  # the baselines pay their fsyncs too
    seconds = time.perf_counter() - start
    shutil.rmtree(path)
    return seconds


_MODELS: dict[int, FakeBackbone] = {}


def bench_write(args: argparse.Namespace) -> None:
    import torch

    from embedhead.store import layout

    torch.set_num_threads(1)
    row_bytes = args.d_model * layout.storage_dtype(args.dtype).itemsize
    items = _items(args.mb * 2**20 // row_bytes, args.length, 0)
    rows = sum(len(s) for _, s in items)
    payload = rows * row_bytes
    mib = payload / 2**20
    chunk_rows = layout.rows_per_chunk(args.d_model, args.dtype)
    values = np.random.default_rng(0).standard_normal((rows, args.d_model), dtype=np.float32)
    data = layout.encode(values, args.dtype)
    del values
    folder = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    n_chunks = -(-rows // chunk_rows)
    reps = args.repeats
    try:
        print(f"payload {mib:.0f} MiB of {args.dtype} rows (d_model {args.d_model}, "
              f"{len(items)} sequences, {n_chunks} chunks of {chunk_rows} rows, batch_tokens "
              f"{args.batch_tokens}) in {folder}; medians of {reps}")  # fmt: skip
        runs = {
            "chunks+fsync": lambda: chunk_files(folder, data, chunk_rows, True),
            "tofile+fsync": lambda: one_file(folder, data, True),
            "chunks": lambda: chunk_files(folder, data, chunk_rows, False),
            "tofile": lambda: one_file(folder, data, False),
        }
        timed = {name: _median_seconds(run, reps) for name, run in runs.items()}
        base = {name: wall for name, (wall, _) in timed.items()}
        for name, (wall, cpu) in timed.items():
            print(f"disk: {name:13s} {mib / wall:8.1f} MiB/s ({wall:.2f} s, CPU {cpu:.2f} s)")
        print(f"{'compression':12s} {'MiB/s':>8s} {'seconds':>8s} {'x chunks+fsync':>15s} "
              f"{'x tofile+fsync':>15s} | {'page cache MiB/s':>16s} {'x chunks':>9s} "
              f"{'CPU s':>6s}")  # fmt: skip
        for compression in args.compression:

            def once(sync: bool, compression: str = compression) -> float:
                return write_once(folder, items, args.d_model, args.dtype, compression,
                                  args.batch_tokens, sync)  # fmt: skip

            write_once(folder, items[:50], args.d_model, args.dtype, compression, args.batch_tokens)
            synced, _ = _median_seconds(lambda: once(True), reps)
            cached, cpu = _median_seconds(lambda: once(False), reps)
            print(f"{compression:12s} {mib / synced:8.1f} {synced:8.2f} "
                  f"{base['chunks+fsync'] / synced:15.2f} {base['tofile+fsync'] / synced:15.2f} | "
                  f"{mib / cached:16.1f} {base['chunks'] / cached:9.2f} {cpu:6.2f}")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- read (the read side of issue 10 fills this in) -----------------------------------------
