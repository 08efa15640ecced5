"""Benchmark ``prepare``: blocks/s and peak memory as the number of blocks grows.

For each size N a synthetic MAF of N blocks is simulated (not timed), then:

- ``stream``: the streaming part alone (parse, pick rows, cut windows, re-score, normalise),
  keeping nothing: its peak Python memory (tracemalloc) should stay flat as N grows;
- ``prepare``: the whole command (time without tracing -> blocks/s; a second, traced run ->
  peak memory). The marginal cost ``d peak / d pairs`` between consecutive sizes is the size
  of one pair-table entry (record + sequence id in the seen-set, ~0.7 kB): memory grows with
  the pair table only, not with the alignment text (the stream peak stays flat).

Usage: ``python benchmarks/bench_prepare.py [--sizes 250,1000,4000] [--mean-length 300]``
(default sizes run in well under a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import math
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="250,1000,4000", help="numbers of blocks")
    parser.add_argument("--mean-length", type=int, default=300, help="typical block columns")
    parser.add_argument("--query", default="susScr11", help="query species")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
