"""Benchmark: N sweep trials on one load of the cache vs N sequential `train` runs, same trials.

Builds a synthetic dataset (positives = mutated copies, negatives unrelated), a RANDOM tiny
backbone and its .zarr store in a temporary folder, then times

* sweep:      ``embedhead.experiments.sweep.run_sweep`` (one data load, trials in worker processes);
* sequential: for every trial of the same sweep, ``embedhead.heads.train.run_training`` (what
              ``embedhead train --config trial.json`` runs: open dataset + store, load the data,
              train, write a run folder), or with ``--subprocess`` the real command line, one
              process per trial (adds interpreter and torch start-up).

Prints both times and the ratio sweep / sequential (target: <= 0.25). Default scale runs in well
under a minute on 2 CPU cores; flags make it bigger.

    python benchmarks/bench_sweep.py [--trials 20] [--pairs 400] [--epochs 2] [--subprocess]
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

from embedhead.dataset import PairRecord, pair_of_sequences, sequence_id, write_dataset


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=240)
    parser.add_argument("--length", type=int, default=200, help="longest sequence")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--head", choices=["thesis", "pooled"], default="thesis")
    parser.add_argument("--workers", type=int, default=0, help="sweep workers (0 = per core)")
    parser.add_argument("--subprocess", action="store_true", help="sequential = CLI processes")
    parser.add_argument(
        "--seq-threads",
        type=int,
        default=1,
        help="torch threads of the in-process sequential runs (torch's default is one per core; "
        "on a busy machine that is much slower, so 1 is the conservative baseline)",
    )
    args = parser.parse_args()

    import torch

    from embedhead.backbone.presets import write_random_checkpoint
    from embedhead.embed.run import EmbedConfig, embed_dataset
    from embedhead.experiments.sweep import (
        DEFAULT_SPACE,
        SweepConfig,
        params_to_overrides,
        run_sweep,
    )
    from embedhead.heads.train import run_training

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
            f"{args.epochs} epoch(s) per trial, default thesis search space"
        )

        t0 = time.perf_counter()
        result = run_sweep(
            ds,
            store,
            tmp / "sweep",
            SweepConfig(n_trials=args.trials, base=base, workers=args.workers),
        )
        sweep_s = time.perf_counter() - t0

        torch.set_num_threads(args.seq_threads)
        t0 = time.perf_counter()
        for trial in range(args.trials):
            overrides = params_to_overrides(DEFAULT_SPACE.sample(0, trial), base)
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
    workers = args.workers or min(os.cpu_count() or 1, 8)
    print(f"sweep ({args.trials} trials, {ok} ok, one load, {workers} workers): {sweep_s:8.2f} s")
    print(f"sequential ({args.trials} {kind}): {seq_s:8.2f} s")
    print(f"ratio sweep / sequential: {sweep_s / seq_s:.3f}  (target <= 0.25)")


if __name__ == "__main__":
    main()
