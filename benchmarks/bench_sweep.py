"""Benchmark: N sweep trials on one load of the cache vs N sequential `train` runs, same trials.

Builds a synthetic dataset (positives = mutated copies, negatives unrelated), a RANDOM tiny
backbone and its .zarr store in a temporary folder, then times

* sweep:      ``embedhead.experiments.sweep.run_sweep`` (one data load, trials in worker processes);
* sequential: for every trial of the same sweep, ``embedhead.heads.train.run_training`` (what
              ``embedhead train --config trial.json`` runs: open dataset + store, load the data,
              train, write a run folder), or with ``--subprocess`` the real command line, one
              process per trial (adds interpreter and torch start-up).

Prints both times and the ratio sweep / sequential (target: <= 0.25), after an untimed warm-up
(a small sweep and a training: the first sweep of a process pays seconds of one-time imports).
Default scale runs in well under a minute on 2 CPU cores; flags make it bigger. The sequential
runs train the configurations the sweep's sampler chose, in full (the sweep may prune some of
them: that is part of its gain).

``--compare-samplers`` instead prepares and embeds the shipped demo data (data/demo.maf.gz,
hg38 vs galGal6, RANDOM tiny-1k backbone), runs 40-trial studies with TPE and with random search
for a few seeds (pooled head, a few epochs, no pruning) and prints the median over seeds of the
best validation ROC-AUC after 10, 20 and 40 trials.

    python benchmarks/bench_sweep.py [--trials 20] [--pairs 400] [--epochs 2] [--subprocess]
    python benchmarks/bench_sweep.py --compare-samplers [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from embedhead.dataset import PairRecord, pair_of_sequences, sequence_id, write_dataset
from embedhead.experiments.config import SWEEP_BATCH_TRIALS


def make_dataset(out: Path, n_pairs: int, length: int, seed: int) -> Path:
    """A learnable dataset folder: n_pairs/2 positives (10% substitutions), as many negatives."""
    rng = random.Random(seed)
    seqs: dict[str, str] = {}
    records: list[PairRecord] = []

    def rand() -> str:
        return "".join(rng.choices("ACGT", k=rng.randint(length // 2, length)))

    for i in range(n_pairs):
        label = i % 2
        a = rand()
        b = "".join(rng.choice("ACGT") if rng.random() < 0.1 else c for c in a) if label else rand()
        for s in (a, b):
            seqs[sequence_id(s)] = s
        records.append(
            pair_of_sequences(
                f"p{i:06d}",
                label,
                a,
                b,
                split=("train", "train", "train", "train", "val", "test")[(i // 2) % 6],
                score=float(len(a)) * 0.8 if label else math.nan,
                identity=0.9 if label else math.nan,
                db1="ref",
                chrom1="chr1",
                db2="qry",
                chrom2="chr1",
                block_id=f"b{i}",
            )
        )
    return write_dataset(out, seqs.values(), records, {"command": "benchmarks/bench_sweep.py"})


def compare_samplers(seeds: int, epochs: int) -> None:
    """Median over seeds of the best val ROC-AUC after 10/20/40 trials, TPE vs random."""
    import statistics

    import torch

    from embedhead.experiments.sweep import SweepConfig, run_sweep

    torch.set_num_threads(1)
    demo = Path(__file__).resolve().parent.parent / "data" / "demo.maf.gz"
    checkpoints = (10, 20, 40)
    with tempfile.TemporaryDirectory(prefix="bench_samplers_") as tmp_name:
        tmp = Path(tmp_name)
        cli = [sys.executable, "-m", "embedhead"]
        t0 = time.perf_counter()
        for argv in (
            ["prepare", str(demo), "--reference", "hg38", "--query", "galGal6",
             "--chunk-size", "1000", "--out", str(tmp / "ds")],
            ["init-backbone", "--preset", "tiny-1k", str(tmp / "bb")],
            ["embed", str(tmp / "ds"), "--backbone", str(tmp / "bb"), "--store",
             str(tmp / "s.zarr"), "--device", "cpu", "-q"],
        ):  # fmt: skip
            subprocess.run([*cli, *argv], check=True, capture_output=True)
        print(
            f"setup: demo data (galGal6) prepared and embedded in {time.perf_counter() - t0:.1f} s"
        )
        base = {"head": "pooled", "epochs": epochs, "patience": 0}
        best: dict[str, list[list[float]]] = {"tpe": [], "random": []}
        for sampler in best:
            for seed in range(seeds):
                t0 = time.perf_counter()
                config = SweepConfig(n_trials=max(checkpoints), seed=seed, base=base,
                                     workers=1, sampler=sampler, pruner="none")  # fmt: skip
                result = run_sweep(tmp / "ds", tmp / "s.zarr", tmp / f"{sampler}-{seed}", config)
                by_trial = {r["trial"]: r["val_mean"] for r in result.ranked}
                values = [by_trial.get(i, float("nan")) for i in range(max(checkpoints))]
                running = [max((v for v in values[:n] if v == v), default=float("nan"))
                           for n in checkpoints]  # fmt: skip
                best[sampler].append(running)
                took = time.perf_counter() - t0
                shown = [round(v, 4) for v in running]
                print(f"  {sampler:6s} seed {seed}: after {checkpoints}: {shown} ({took:.0f} s)")
    print("median over seeds of the best validation ROC-AUC:")
    print("  trials  " + "  ".join(f"{s:>7s}" for s in best))
    for i, n in enumerate(checkpoints):
        cells = [statistics.median(run[i] for run in best[s]) for s in best]
        print(f"  {n:6d}  " + "  ".join(f"{c:7.4f}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=240)
    parser.add_argument("--length", type=int, default=200, help="longest sequence")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--head", choices=["thesis", "pooled"], default="thesis")
    parser.add_argument("--workers", type=int, default=0, help="sweep workers (0 = per core)")
    parser.add_argument(
        "--batch-trials",
        type=int,
        default=SWEEP_BATCH_TRIALS,
        help="trials asked at once and trained together when their heads have one shape "
        "(embedhead.heads.batched); 1 = one at a time",
    )
    parser.add_argument("--subprocess", action="store_true", help="sequential = CLI processes")
    parser.add_argument(
        "--space",
        choices=["thesis", "fixed-shape"],
        default="thesis",
        help="thesis: the default space (layers 1..4, units 256..1024: few trials share a shape); "
        "fixed-shape: lr, weight decay and dropout only (every trial has one shape, the case "
        "batched trials are for)",
    )
    parser.add_argument("--sampler", default="tpe", choices=["tpe", "random", "grid"])
    parser.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    parser.add_argument("--compare-samplers", action="store_true", help="TPE vs random (demo)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of --compare-samplers")
    parser.add_argument(
        "--seq-threads",
        type=int,
        default=1,
        help="torch threads of the in-process sequential runs (torch's default is one per core; "
        "on a busy machine that is much slower, so 1 is the conservative baseline)",
    )
    args = parser.parse_args()
    if args.compare_samplers:
        compare_samplers(args.seeds, max(args.epochs, 3))
        return

    import torch

    from embedhead.backbone.presets import write_random_checkpoint
    from embedhead.embed.run import EmbedConfig, embed_dataset
    from embedhead.experiments.sweep import DEFAULT_SPACE_SPEC, SearchSpace, SweepConfig, run_sweep
    from embedhead.heads.train import run_training

    spec = dict(DEFAULT_SPACE_SPEC)
    if args.space == "fixed-shape":
        spec = {k: v for k, v in spec.items() if k not in ("layers", "units")}

    base = {"head": args.head, "epochs": args.epochs, "patience": 0, "conv_channels": 32}
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp_name:
        tmp = Path(tmp_name)
        ds = make_dataset(tmp / "ds", args.pairs, args.length, seed=0)
        backbone = write_random_checkpoint(
            tmp / "bb", preset="tiny-1k", seed=0, d_model=64, n_layer=2, max_seq_len=1024
        )
        store = tmp / "ds.zarr"
        t0 = time.perf_counter()
        embed_dataset(ds, store, backbone, EmbedConfig(progress=False, device="cpu"))
        print(
            f"setup: {args.pairs} pairs, RANDOM tiny backbone (d_model 64), "
            f"embedded in {time.perf_counter() - t0:.1f} s; head {args.head}, "
            f"{args.epochs} epoch(s) per trial, {args.space} search space"
        )

        def timed_sweep(name: str, batch_trials: int) -> tuple[Any, float]:
            t0 = time.perf_counter()
            config = SweepConfig(
                space=SearchSpace.from_spec(spec),
                n_trials=args.trials,
                base=base,
                workers=args.workers,
                sampler=args.sampler,
                pruner=args.pruner,
                batch_trials=batch_trials,
            )
            return run_sweep(ds, store, tmp / name, config), time.perf_counter() - t0

        # Warm the process up first, untimed: the first sweep of a process pays seconds of
        # one-time imports and set-up (optuna's samplers and fANOVA, sklearn's metrics, torch's
        # optimiser machinery) that the sequential runs, timed later in the same process, would
        # not pay; measured 3.8 s vs 0.85 s for the same 2-trial sweep, cold vs warm.
        t0 = time.perf_counter()
        warm = SweepConfig(space=SearchSpace.from_spec(spec), n_trials=3, base=base,
                           workers=args.workers, batch_trials=args.batch_trials)  # fmt: skip
        warm_row = run_sweep(ds, store, tmp / "warm-up", warm).ranked[0]
        run_training(ds, store, tmp / "warm-up-run", warm_row["overrides"])
        print(f"process warm-up (a 3-trial sweep and a training), not timed: "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip

        result, sweep_s = timed_sweep("sweep", args.batch_trials)
        unbatched_s = None
        if args.batch_trials > 1:  # the same sweep one trial at a time, in the same run
            _, unbatched_s = timed_sweep("sweep-unbatched", 1)

        torch.set_num_threads(args.seq_threads)
        t0 = time.perf_counter()
        for row in sorted(result.ranked, key=lambda r: r["trial"]):
            trial, overrides = row["trial"], row["overrides"]
            run_dir = tmp / f"run-{trial}"
            if args.subprocess:
                config = tmp / f"trial-{trial}.json"
                config.write_text(json.dumps(overrides))
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "embedhead",
                        "train",
                        str(ds),
                        "--store",
                        str(store),
                        "--out",
                        str(run_dir),
                        "--config",
                        str(config),
                    ],
                    check=True,
                    capture_output=True,
                )
            else:
                run_training(ds, store, run_dir, overrides)
        seq_s = time.perf_counter() - t0

    kind = (
        "subprocess `embedhead train`"
        if args.subprocess
        else f"in-process train runs, {args.seq_threads} torch thread(s)"
    )
    ok = sum(r["status"] == "ok" for r in result.ranked)
    pruned = sum(r["status"] == "pruned" for r in result.ranked)
    workers = args.workers or min(os.cpu_count() or 1, 8)
    print(
        f"sweep ({args.trials} trials, {ok} ok, {pruned} pruned, {args.sampler}/{args.pruner}, "
        f"one load, {workers} workers, batches of {args.batch_trials}): {sweep_s:8.2f} s"
    )
    trained = sum(r["pruned_epoch"] or args.epochs for r in result.ranked)
    print(
        f"epochs trained: sweep {trained}, sequential {args.epochs * len(result.ranked)} "
        f"(pruning saved {1 - trained / max(args.epochs * len(result.ranked), 1):.0%})"
    )
    print(f"sequential ({args.trials} {kind}): {seq_s:8.2f} s")
    print(f"ratio sweep / sequential: {sweep_s / seq_s:.3f}  (target <= 0.25)")
    if unbatched_s is not None:
        print(
            f"same sweep, one trial at a time: {unbatched_s:8.2f} s; batched / unbatched "
            f"{sweep_s / unbatched_s:.3f} (same configs only with --sampler random)"
        )


if __name__ == "__main__":
    main()
