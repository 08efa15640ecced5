"""Benchmark ``prepare``: blocks/s and peak memory as the input grows.

Two modes.

``--sizes 250,1000,4000`` (default): for each size N a synthetic MAF of N blocks is simulated
(not timed), then:

- ``stream``: the streaming part alone (parse, pick rows, cut windows, re-score, normalise),
  keeping nothing: its peak Python memory (tracemalloc) should stay flat as N grows;
- ``prepare``: the whole command (time without tracing -> blocks/s; a second, traced run ->
  peak memory). The marginal cost ``d peak / d pairs`` between consecutive sizes is the size
  of one pair-table entry (record + sequence id in the seen-set, ~0.7 kB): memory grows with
  the pair table only, not with the alignment text (the stream peak stays flat).

``--size-mb 100,1000,4000`` (genome scale, issue 11): a gzip MAF of about that many MB of
*uncompressed* text is built from ``simulate`` output (one simulated piece of ``--piece-mb``,
repeated: simulating is slower than preparing), then ``prepare --max-pairs`` (default 16,000)
runs in a child process: wall time -> MB/s of uncompressed input, and the child's peak RSS
(``wait4``). The baseline is ``zcat FILE | wc -l`` on the same file. Memory should stay flat
as the input grows, and throughput within 2x of the baseline is the target. Wall and CPU
seconds are both printed: on a shared machine the CPU ratio is the steadier figure.

Usage: ``python benchmarks/bench_prepare.py [--sizes 250,1000,4000] [--mean-length 300]``
or ``python benchmarks/bench_prepare.py --size-mb 100,1000 [--max-pairs 16000]``.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from embedhead.alignments.reader import read_alignments
from embedhead.alignments.scoring import get_scheme
from embedhead.dataset import normalise_sequence
from embedhead.prepare.build import PrepareConfig, prepare
from embedhead.prepare.chunking import chunk_pair, select_pair
from embedhead.prepare.simulate import SimulateConfig, write_maf


def stream_only(path: Path, query: str) -> int:
    """Run the per-block work of prepare and keep nothing; return the number of windows."""
    scheme = get_scheme("hoxd70")
    n = 0
    for block in read_alignments(path):
        pair = select_pair(block, "hg38", query)
        if pair is None:
            continue
        for w in chunk_pair(pair[0], pair[1], scheme, 5000, 50).windows:
            normalise_sequence(w.row1.text)
            normalise_sequence(w.row2.text)
            n += 1
    return n


def traced_peak(func: object, *args: object) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = func(*args)  # type: ignore[operator]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def by_blocks(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'blocks':>7} {'pairs':>7} {'MB in':>6} {'s':>6} {'blocks/s':>9} "
        f"{'stream peak MB':>15} {'prepare peak MB':>16} {'B/added pair':>13}"
    )
    rows: list[tuple[int, int, int, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for n in sizes:
            maf = tmp / f"sim{n}.maf.gz"
            write_maf(maf, SimulateConfig(n_blocks=n, seed=1, mean_length=args.mean_length))
            _, stream_peak = traced_peak(stream_only, maf, args.query)
            cfg = PrepareConfig(reference="hg38", query=args.query)
            began = time.perf_counter()
            summary = prepare([maf], tmp / f"ds{n}", cfg)
            seconds = time.perf_counter() - began
            _, peak = traced_peak(prepare, [maf], tmp / f"ds{n}b", cfg)
            pairs = summary.n_positive + summary.n_negative
            per_pair = math.nan
            if rows:
                per_pair = (peak - rows[-1][2]) / max(1, pairs - rows[-1][4])
            rows.append((n, stream_peak, peak, per_pair, pairs))
            print(
                f"{n:7d} {pairs:7d} {maf.stat().st_size / 1e6:6.2f} {seconds:6.2f}"
                f" {n / seconds:9.0f} {stream_peak / 1e6:15.2f} {peak / 1e6:16.2f}"
                f" {per_pair:13.0f}"
            )
    first, last = rows[0], rows[-1]
    print(
        f"blocks x{last[0] / first[0]:.0f}, pairs x{last[4] / first[4]:.1f}:"
        f" stream peak x{last[1] / first[1]:.2f}, prepare peak x{last[2] / first[2]:.2f}"
    )


def build_input(piece: Path, out: Path, size_mb: float) -> int:
    """A gzip (level 1) MAF of at least ``size_mb`` MB uncompressed: ``piece`` repeated."""
    text = piece.read_bytes()
    target = int(size_mb * 1e6)
    written = 0
    with gzip.open(out, "wb", compresslevel=1) as fh:
        while written < target:
            fh.write(text)
            written += len(text)
    return written


def run_child(maf: Path, out: Path, query: str, max_pairs: int) -> tuple[float, float, int]:
    """``prepare`` in a child process: (wall seconds, CPU seconds, peak RSS bytes)."""
    code = (
        "import sys\n"
        "from embedhead.prepare.build import PrepareConfig, prepare\n"
        "prepare([sys.argv[1]], sys.argv[2], PrepareConfig(reference='hg38',"
        " query=sys.argv[3], max_pairs=int(sys.argv[4])))\n"
    )
    began = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(maf), str(out), query, str(max_pairs)]
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"prepare failed on {maf} (exit {child.returncode})")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss * 1024  # Linux: kilobytes


def zcat_wc(maf: Path) -> tuple[float, float]:
    """``zcat FILE | wc -l``: (wall seconds, CPU seconds of the shell, zcat and wc)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(f"zcat {maf} | wc -l", shell=True, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def by_megabytes(args: argparse.Namespace) -> None:
    sizes = [float(s) for s in args.size_mb.split(",")]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        piece = tmp / "piece.maf"
        n_blocks = max(50, int(args.piece_mb * 1e6 / 4400))  # ~4.4 kB per default block
        began = time.perf_counter()
        write_maf(piece, SimulateConfig(n_blocks=n_blocks, seed=1))
        print(
            f"piece: {n_blocks} simulated blocks, {piece.stat().st_size / 1e6:.1f} MB"
            f" ({time.perf_counter() - began:.0f} s); --max-pairs {args.max_pairs},"
            f" query {args.query}"
        )
        print(
            f"{'MB in':>8} {'MB gz':>7} {'prepare s':>10} {'MB/s':>7} {'peak RSS MB':>12}"
            f" {'zcat|wc s':>10} {'zcat MB/s':>10} {'ratio':>6} {'CPU s':>7} {'zcat CPU s':>11}"
            f" {'CPU ratio':>10}"
        )
        for size in sizes:
            maf = tmp / f"in{size:g}.maf.gz"
            raw = build_input(piece, maf, size)
            seconds, cpu, peak = run_child(maf, tmp / f"ds{size:g}", args.query, args.max_pairs)
            base, base_cpu = zcat_wc(maf)
            print(
                f"{raw / 1e6:8.0f} {maf.stat().st_size / 1e6:7.1f} {seconds:10.1f}"
                f" {raw / 1e6 / seconds:7.1f} {peak / 1e6:12.0f} {base:10.1f}"
                f" {raw / 1e6 / base:10.1f} {seconds / base:6.1f} {cpu:7.1f} {base_cpu:11.1f}"
                f" {cpu / base_cpu:10.1f}",
                flush=True,
            )
            maf.unlink()
            shutil.rmtree(tmp / f"ds{size:g}", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="250,1000,4000", help="numbers of blocks")
    parser.add_argument("--mean-length", type=int, default=300, help="typical block columns")
    parser.add_argument("--query", default="susScr11", help="query species")
    parser.add_argument(
        "--size-mb", default=None, help="MB of uncompressed input, e.g. 100,1000,4000"
    )
    parser.add_argument("--max-pairs", type=int, default=16_000, help="with --size-mb")
    parser.add_argument("--piece-mb", type=float, default=8.0, help="simulated piece size")
    args = parser.parse_args()
    if args.size_mb:
        by_megabytes(args)
    else:
        by_blocks(args)


if __name__ == "__main__":
    main()
