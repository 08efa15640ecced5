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
*uncompressed* text in which no sequence text occurs twice: pieces of ``--piece-mb`` (100 MB,
~23,000 blocks) joined as gzip members after one header. Pieces ``0 .. --seeds - 1`` (default
10, i.e. the first GB) are ``simulate`` output, piece ``k`` with seed ``1 + k``; later pieces
are score-preserving variants of those (complemented, reversed, reverse-complemented: HOXD70
and the gap costs are symmetric under both, so every ``a score=`` stays exact, and lengths, GC
and gaps are unchanged): simulating takes ~50 s of CPU per 100 MB (~35 min for 4 GB on one
core), a variant a few seconds. Every piece lies on chromosomes of its own (``chr1_p3``), so no
two pieces overlap. Pieces and inputs are cached in ``--cache`` (reruns reuse them;
``--workers`` processes build pieces). Then the whole
``embedhead prepare --max-pairs`` command (default 16,000; with and without its leak check,
``--leak-check``) runs in a child process: wall time -> MB/s of uncompressed input, and the
child's peak RSS (``wait4``). The baseline is ``zcat FILE | wc -l`` on the same file, right
after. Memory should stay flat as the input grows, and throughput within 2x of the baseline is
the target. Wall and CPU seconds are both printed (medians of ``--repeat`` runs): on a shared
machine the CPU ratio is the steadier figure.

Usage: ``python benchmarks/bench_prepare.py [--sizes 250,1000,4000] [--mean-length 300]``
or ``python benchmarks/bench_prepare.py --size-mb 100,1000,4000 [--max-pairs 16000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import itertools
import math
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from embedhead.alignments.reader import read_alignments
from embedhead.alignments.scoring import get_scheme
from embedhead.dataset import normalise_sequence
from embedhead.fileio import atomic_file
from embedhead.prepare.build import PrepareConfig, prepare
from embedhead.prepare.chunking import chunk_pair, select_pair
from embedhead.prepare.simulate import SimRow, SimulateConfig, simulate_blocks, write_maf


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


#: Uncompressed MAF bytes per simulated block (default SimulateConfig, six rows): measured.
BYTES_PER_BLOCK = 4335
#: Seed of piece 0; piece k uses seed FIRST_SEED + k.
FIRST_SEED = 1


def _piece_rows(rows: list[SimRow], k: int) -> list[SimRow]:
    """Piece ``k > 0`` lies on its own chromosomes (``chr1_p3``): pieces never overlap."""
    if k == 0:
        return rows
    return [dataclasses.replace(r, src=f"{r.src}_p{k}") for r in rows]


def _maf_block(score: int, rows: list[SimRow]) -> str:
    width = max(len(r.src) for r in rows)
    start_w = max(len(str(r.start)) for r in rows)
    size_w = max(len(str(r.size)) for r in rows)
    total_w = max(len(str(r.src_size)) for r in rows)
    lines = [f"a score={score:.6f}"]
    lines.extend(
        f"s {r.src:<{width}} {r.start:>{start_w}} {r.size:>{size_w}} {r.strand}"
        f" {r.src_size:>{total_w}} {r.text}"
        for r in rows
    )
    return "\n".join(lines) + "\n\n"


def make_piece(job: tuple[Path, int, float]) -> tuple[Path, int]:
    """Simulate piece ``k`` (about ``piece_mb`` MB of MAF blocks, seed ``FIRST_SEED + k``) into
    ``cache`` as headerless gzip (level 1) blocks, once: (path, uncompressed bytes)."""
    cache, k, piece_mb = job
    n_blocks = max(50, round(piece_mb * 1e6 / BYTES_PER_BLOCK))
    path = cache / f"piece-{piece_mb:g}MB-{k:03d}.maf.gz"
    size_file = path.with_suffix(".bytes")
    if path.is_file() and size_file.is_file():
        return path, int(size_file.read_text())
    os.nice(5)  # the machine is shared: simulate politely
    written = 0
    config = SimulateConfig(n_blocks=n_blocks, seed=FIRST_SEED + k)
    with atomic_file(path, "wb") as raw, gzip.GzipFile("", "wb", 1, raw, mtime=0) as gz:
        for score, rows in simulate_blocks(config):
            data = _maf_block(score, _piece_rows(rows, k)).encode("ascii")
            gz.write(data)
            written += len(data)
    size_file.write_text(str(written))
    return path, written


_COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")
#: Score-preserving variants of a simulated piece (HOXD70 and the gap costs are symmetric under
#: complementing both rows, and reversing every row keeps each column and each gap run).
VARIANTS = ("as simulated", "complemented", "reversed", "reverse-complemented")


def _variant_text(text: str, variant: int) -> str:
    if variant & 1:
        text = text.translate(_COMPLEMENT)
    return text[::-1] if variant & 2 else text


def derive_piece(job: tuple[Path, int, float, int]) -> tuple[Path, int]:
    """Piece ``k >= seeds``: simulated piece ``k % seeds`` turned into variant ``k // seeds``
    (:data:`VARIANTS`) on chromosomes of its own (``_p{k}``), once: (path, uncompressed bytes).
    Distinct sequences (no text repeats), the same scores, lengths, GC and gaps."""
    cache, k, piece_mb, seeds = job
    source_k, variant = k % seeds, k // seeds
    if variant == 0:
        return make_piece((cache, k, piece_mb))
    path = cache / f"piece-{piece_mb:g}MB-{k:03d}-of-{source_k:03d}.maf.gz"
    size_file = path.with_suffix(".bytes")
    if path.is_file() and size_file.is_file():
        return path, int(size_file.read_text())
    source, _ = make_piece((cache, source_k, piece_mb))
    suffix = f"_p{source_k}" if source_k else ""
    written = 0
    with (
        gzip.open(source, "rt", encoding="ascii") as fh,
        atomic_file(path, "wb") as raw,
        gzip.GzipFile("", "wb", 1, raw, mtime=0) as gz,
    ):
        out: list[str] = []
        for line in fh:
            if line.startswith("s "):
                _, src, start, size, strand, src_size, text = line.split()
                src = src.removesuffix(suffix) + f"_p{k}"
                line = (
                    f"s {src} {start} {size} {strand} {src_size} {_variant_text(text, variant)}\n"
                )
            out.append(line)
            if len(out) >= 4096:
                data = "".join(out).encode("ascii")
                gz.write(data)
                written += len(data)
                out = []
        data = "".join(out).encode("ascii")
        gz.write(data)
        written += len(data)
    size_file.write_text(str(written))
    return path, written


def build_input(
    cache: Path, size_mb: float, piece_mb: float, workers: int, seeds: int
) -> tuple[Path, int]:
    """A gzip MAF of about ``size_mb`` MB uncompressed, no sequence text in it twice: the first
    ``ceil(size_mb / piece_mb)`` pieces after one header, as gzip members; pieces ``0 ..
    seeds - 1`` simulated (each its own seed and chromosomes), later ones score-preserving
    variants of them (:func:`derive_piece`). Cached: reruns reuse pieces and inputs.
    (path, raw bytes)."""
    n = max(1, math.ceil(size_mb / piece_mb - 1e-9))
    path = cache / f"input-{n}x{piece_mb:g}MB-{seeds}seeds.maf.gz"
    size_file = path.with_suffix(".bytes")
    if path.is_file() and size_file.is_file():
        return path, int(size_file.read_text())
    if n > len(VARIANTS) * seeds:
        raise SystemExit(
            f"{size_mb:g} MB needs {n} pieces: --seeds {seeds} gives at most"
            f" {len(VARIANTS) * seeds} (x {len(VARIANTS)} variants)"
        )
    began = time.perf_counter()
    simulated = [(cache, k, piece_mb) for k in range(min(n, seeds))]
    derived = [(cache, k, piece_mb, seeds) for k in range(seeds, n)]
    if workers > 1 and n > 1:
        with multiprocessing.Pool(min(workers, n)) as pool:
            pieces = pool.map(make_piece, simulated, chunksize=1)
            pieces += pool.map(derive_piece, derived, chunksize=1)
    else:
        pieces = [make_piece(job) for job in simulated] + [derive_piece(job) for job in derived]
    head = b"##maf version=1 scoring=hoxd70.sum_of_pairs\n# bench_prepare: simulated pieces\n\n"
    tail = b"##eof maf\n"
    with atomic_file(path, "wb") as out:
        out.write(gzip.compress(head, 1, mtime=0))
        for piece, _ in pieces:
            with open(piece, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 22)
        out.write(gzip.compress(tail, 1, mtime=0))
    raw = len(head) + len(tail) + sum(b for _, b in pieces)
    size_file.write_text(str(raw))
    print(
        f"input {path.name}: {min(n, seeds)} simulated pieces + {max(0, n - seeds)} variants,"
        f" {raw / 1e6:.0f} MB"
        f" ({time.perf_counter() - began:.0f} s)",
        flush=True,
    )
    return path, raw


def run_child(
    maf: Path, out: Path, query: str, max_pairs: int, leak_check: bool
) -> tuple[float, float, int]:
    """``embedhead prepare`` (the whole command: start-up, imports, and the leak check unless
    ``leak_check`` is false) in a child process: (wall seconds, CPU seconds, peak RSS bytes)."""
    command = [
        sys.executable, "-m", "embedhead", "prepare", str(maf), "--out", str(out),
        "--reference", "hg38", "--query", query, "--max-pairs", str(max_pairs), "--quiet",
        "--leak-check" if leak_check else "--no-leak-check",
    ]  # fmt: skip
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
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
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    inputs = [build_input(cache, size, args.piece_mb, args.workers, args.seeds) for size in sizes]
    if args.inputs_only:
        return
    variants = [v == "yes" for v in args.leak_check.split(",")]
    print(
        f"inputs: pieces of {args.piece_mb:g} MB, up to {args.seeds} simulated (seeds"
        f" {FIRST_SEED}..), then {', '.join(VARIANTS[1:])} copies on their own chromosomes,"
        f" cached in {cache}; --max-pairs {args.max_pairs}, query {args.query},"
        f" {args.repeat} runs each (medians)"
    )
    print(
        f"{'MB in':>8} {'MB gz':>7} {'leak check':>10} {'prepare s':>10} {'MB/s':>7}"
        f" {'peak RSS MB':>12}"
        f" {'zcat|wc s':>10} {'zcat MB/s':>10} {'ratio':>6} {'CPU s':>7} {'zcat CPU s':>11}"
        f" {'CPU ratio':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        out = Path(tmp_dir) / "ds"
        for (maf, raw), leak_check in itertools.product(inputs, variants):
            runs, bases = [], []
            for _ in range(args.repeat):
                runs.append(run_child(maf, out, args.query, args.max_pairs, leak_check))
                shutil.rmtree(out, ignore_errors=True)
                bases.append(zcat_wc(maf))
            seconds, cpu = (
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs),
            )
            peak = max(r[2] for r in runs)
            base, base_cpu = (
                statistics.median(b[0] for b in bases),
                statistics.median(b[1] for b in bases),
            )
            print(
                f"{raw / 1e6:8.0f} {maf.stat().st_size / 1e6:7.1f}"
                f" {'yes' if leak_check else 'no':>10} {seconds:10.1f}"
                f" {raw / 1e6 / seconds:7.1f} {peak / 1e6:12.0f} {base:10.1f}"
                f" {raw / 1e6 / base:10.1f} {seconds / base:6.1f} {cpu:7.1f} {base_cpu:11.1f}"
                f" {cpu / base_cpu:10.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="250,1000,4000", help="numbers of blocks")
    parser.add_argument("--mean-length", type=int, default=300, help="typical block columns")
    parser.add_argument("--query", default="susScr11", help="query species")
    parser.add_argument(
        "--size-mb", default=None, help="MB of uncompressed input, e.g. 100,1000,4000"
    )
    parser.add_argument("--max-pairs", type=int, default=16_000, help="with --size-mb")
    parser.add_argument(
        "--piece-mb", type=float, default=100.0, help="MB of one simulated piece (--size-mb)"
    )
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "embedhead-bench-prepare"),
        help="folder keeping the simulated inputs between runs",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes simulating pieces")
    parser.add_argument(
        "--seeds",
        type=int,
        default=10,
        help="pieces simulated (seeds); later pieces are their score-preserving variants",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (medians)")
    parser.add_argument(
        "--leak-check",
        default="yes,no",
        help="with --size-mb: prepare with its leak check (yes), without (no), or both",
    )
    parser.add_argument(
        "--inputs-only", action="store_true", help="only simulate the inputs (into --cache)"
    )
    args = parser.parse_args()
    if args.size_mb:
        by_megabytes(args)
    else:
        by_blocks(args)


if __name__ == "__main__":
    main()
