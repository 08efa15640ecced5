"""Benchmark: one training epoch on the cache vs one epoch recomputing the backbone every step.

The thesis's design loads the backbone and embeds both sequences of every pair at every
training step; embedhead embeds each unique sequence once into a store and trains on the cache.
This script builds a synthetic dataset (positives = mutated copies, negatives = shuffled
partners), a RANDOM backbone of a public shape and its float32 .zarr store in a temporary folder,
then trains the SAME head (same seed, same initial weights, same batch order) for one epoch

* cached:    batches gathered from the in-memory cache (``embedhead.heads.data``);
* recompute: batches embedded by the backbone at every step (tokenise + forward, both sides);

and prints both epoch times, their ratio (target: 50x or better) and the test metrics of both
trained heads (evaluated on the cached test split; they agree up to float noise, since the
embeddings are the same). The one-time costs (embedding the store, loading the cache) are
printed too. Default scale runs in under a minute on 2 CPU cores; the brief's demo scale:

    python benchmarks/bench_train.py --preset small-32k --pairs 300 --min-len 1000 --max-len 5000

Only this script touches the backbone directly; the library heads never do.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedhead.dataset import (
    PairRecord,
    load_dataset,
    pair_of_sequences,
    sequence_id,
    write_dataset,
)
from embedhead.heads.data import PairBatch, PairSource, load_head_data
from embedhead.heads.models import HeadConfig, SiameseHead, build_head
from embedhead.heads.train import evaluate_source

SPLITS = ("train", "train", "train", "val", "test")  # 60 / 20 / 20


def make_dataset(out: Path, n_pairs: int, min_len: int, max_len: int, seed: int) -> Path:
    """Positives: a random sequence and a 10%-mutated copy; negatives: shuffled partners."""
    rng = random.Random(seed)
    half = n_pairs // 2
    firsts = ["".join(rng.choices("ACGT", k=rng.randint(min_len, max_len))) for _ in range(half)]
    seconds = ["".join(c if rng.random() > 0.1 else rng.choice("ACGT") for c in s) for s in firsts]
    seqs = {sequence_id(s): s for s in firsts + seconds}
    records: list[PairRecord] = []

    def add(pid: str, label: int, a: str, b: str, split: str) -> None:
        score, identity = (float(len(a)), 0.9) if label else (math.nan, math.nan)
        records.append(
            pair_of_sequences(
                pid,
                label,
                a,
                b,
                split=split,
                score=score,
                identity=identity,
                db1="hg38",
                chrom1="chr1",
                db2="galGal6",
                chrom2="chr2",
            )
        )

    for i in range(half):
        split = SPLITS[i % len(SPLITS)]
        add(f"p{i}", 1, firsts[i], seconds[i], split)
        add(f"n{i}", 0, firsts[i], seconds[(i + 1 + rng.randrange(half - 1)) % half], split)
    return write_dataset(out, seqs.values(), records, {"command": "bench_train", "seed": seed})


def recompute_batches(
    model: Any,
    sequences: Sequence[str],
    source: PairSource,
    order: np.ndarray,
    batch_size: int,
    device: str = "cpu",
) -> Iterator[PairBatch]:
    """The thesis's way: embed both sides of every batch with the backbone, at every step.

    ``sequences[i]`` is the text of the sequence that ``source.pairs.left/right`` call ``i``.
    """
    from embedhead.backbone.tokenizer import tokenize

    pairs = source.pairs

    def embed(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, lengths = tokenize([sequences[int(i)] for i in index])
        tokens, lengths = tokens.to(device), lengths.to(device)
        with torch.inference_mode():
            x = model(tokens)  # (B, L, D)
        mask = torch.arange(x.shape[1], device=device)[None, :] < lengths[:, None]
        return torch.where(mask[..., None], x, 0.0).clone(), mask

    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        x1, m1 = embed(pairs.left[index])
        x2, m2 = embed(pairs.right[index])
        targets = torch.from_numpy(pairs.targets[index]).to(device)
        yield PairBatch(x1, x2, m1, m2, targets)


def train_epoch(head: SiameseHead, batches: Iterator[PairBatch], lr: float) -> tuple[float, float]:
    """One epoch of BCE + Adam; returns (seconds, mean loss)."""
    optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    head.train()
    start = time.perf_counter()
    total, n = 0.0, 0
    for batch in batches:
        raw = head(batch.x1, batch.x2, batch.m1, batch.m2)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(raw, batch.targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item() * len(raw)
        n += len(raw)
    return time.perf_counter() - start, total / max(n, 1)


def say(message: str) -> None:
    """Progress on stderr (the figures go to stdout)."""
    print(f"[bench_train] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny-1k", help="random backbone shape")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--min-len", type=int, default=300)
    parser.add_argument("--max-len", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from embedhead.backbone import load_backbone
    from embedhead.backbone.presets import init_backbone
    from embedhead.embed.run import EmbedConfig, embed_dataset
    from embedhead.store import open_store

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        ds_dir = make_dataset(root / "ds", args.pairs, args.min_len, args.max_len, args.seed)
        bb = init_backbone(args.preset, root / "bb", seed=args.seed)
        say("embedding the store (once)")
        t0 = time.perf_counter()
        config = EmbedConfig(dtype="float32", device=args.device, progress=False)
        embed_dataset(ds_dir, root / "s.zarr", bb, config)
        t_embed = time.perf_counter() - t0
        dataset = load_dataset(ds_dir)
        with open_store(root / "s.zarr") as store:
            t0 = time.perf_counter()
            data = load_head_data(
                dataset,
                store,
                kind="thesis",
                task="classification",
                loader="memory",
                device=args.device,
            )
            t_load = time.perf_counter() - t0
        train, test = data["train"], data["test"]
        head_config = HeadConfig(d_model=data.d_model)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))
        order_np = order.numpy()

        say("one epoch on the cache")
        torch.manual_seed(args.seed)
        cached_head = build_head(head_config).to(args.device)
        t_cached, loss_cached = train_epoch(
            cached_head, train.batches(args.batch_size, order_np), args.lr
        )

        say("one epoch recomputing the backbone")
        model = load_backbone(bb, device=args.device)
        by_id = dict(dataset.sequences())
        sequences = [by_id[k] for k in data.seq_ids]
        torch.manual_seed(args.seed)
        recompute_head = build_head(head_config).to(args.device)
        batches = recompute_batches(model, sequences, train, order_np, args.batch_size, args.device)
        t_recompute, loss_recompute = train_epoch(recompute_head, batches, args.lr)

        m_cached = evaluate_source(cached_head, test, 128)
        m_recompute = evaluate_source(recompute_head, test, 128)
        nt = sum(r.len1 + r.len2 for r in dataset.split("train"))
        print(
            f"backbone {args.preset} (random, d_model {data.d_model}); {len(dataset.pairs)} pairs "
            f"({len(train)} train, {nt} nt per epoch), lengths {args.min_len}-{args.max_len}, "
            f"batch {args.batch_size}, {args.threads} threads, device {args.device}"
        )
        print(f"one-time: embed store {t_embed:.2f} s, load cache into memory {t_load:.3f} s")
        print(f"epoch on cache:            {t_cached:8.3f} s  (train loss {loss_cached:.4f})")
        print(f"epoch recomputing backbone:{t_recompute:8.3f} s  (train loss {loss_recompute:.4f})")
        ratio = t_recompute / t_cached
        print(f"ratio recompute / cache:   {ratio:8.1f}x  (target >= 50x at demo scale)")
        for name, m in (("cache", m_cached), ("recompute", m_recompute)):
            print(
                f"test metrics ({name:9s}): loss={m['loss']:.4f} accuracy={m['accuracy']:.4f} "
                f"roc_auc={m['roc_auc']:.4f} f1={m['f1']:.4f}"
            )


if __name__ == "__main__":
    main()
