"""Benchmarks of the embed stage (prints figures; asserts nothing).

1. Store overhead: ``embed_sequences`` into a float16 Zarr store against the bare backbone
   forward (tokenize + forward + pooled mean + copy to host) on the same batches.
   Target: under 10% extra.
2. Backbone work per pair on a prepare-style dataset with 1:1 negatives (negatives re-pair the
   positives' sequences): unique sequences embedded per pair (the thesis's per-pair design
   embeds 2 per pair) and batched backbone calls per pair. Target: <= 0.5 calls per pair.
3. Bytes on disk per nucleotide (Zarr and HDF5, float16 and bfloat16, against 2 * d_model raw).
4. Peak resident memory of successive embed runs with growing numbers of sequences (must not
   grow with the number of sequences).

5. ``--fake-backbone RATE`` (instead of 1-4): a stand-in backbone producing rows at RATE nt/s
   (benchmarks/fake_backbone.py), so the overlap of backbone and writer is measured without a
   GPU: end-to-end time against max(backbone alone, writer alone) (target <= 1.15), and peak
   memory of embed at 1x, 2x, 4x the sequences (must stay flat). The overlap job is
   ``--overlap-sequences`` sequences of 500-1500 nt (default 800: ~780k nt, ~2 s of backbone at
   400e3 nt/s); a job of 200 (~0.5 s at 400e3, the size before) is dominated by the fixed costs
   every embed pays once (store creation, fold, the last batch's write after the backbone is
   done), which no overlap can hide. Several values: one table per size.

Run: ``.venv/bin/python benchmarks/bench_embed.py`` (under a minute on 2 idle CPU cores);
``--scale 4`` for bigger runs, ``--device cuda`` on a GPU;
``--fake-backbone 20e6 [--d-model 256]`` for the overlap figures.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any


def random_sequences(n: int, low: int, high: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        seq = "".join(rng.choices("ACGT", k=rng.randint(low, high)))
        out.append((f"s{seed}-{i}", seq))
    return out


def reset_peak_rss() -> None:
    """Reset the kernel's high-water mark of this process (Linux; no-op elsewhere)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mib() -> float:
    """Current resident memory (Linux), else the peak."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident memory since the last reset (VmHWM), or since start (ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_forward(model: Any, items: list[tuple[str, str]], batch_tokens: int) -> float:
    """Seconds for tokenize + forward + pooled mean + host copy over the embed plan's batches."""
    import torch

    from embedhead.backbone.tokenizer import tokenize
    from embedhead.embed.plan import group_items, plan_batches

    start = time.perf_counter()
    for batch in plan_batches(group_items(items, None), batch_tokens):
        ids, lengths = tokenize([u.seq for u in batch])
        with torch.inference_mode():
            out = model(ids)
            mask = (
                torch.arange(out.shape[1], device=out.device)[None, :]
                < lengths.to(out.device)[:, None]
            )
            pooled = (out * mask[..., None]).sum(1) / lengths.to(out.device)[:, None]
            out.cpu().numpy()
            pooled.cpu().numpy()
    return time.perf_counter() - start


def embed_into(
    model: Any,
    items: list[tuple[str, str]],
    path: Path,
    dtype: str,
    batch_tokens: int,
    compression: str = "zstd",
) -> float:
    from embedhead.embed.run import EmbedConfig, embed_sequences, store_attrs
    from embedhead.store import open_writer

    shutil.rmtree(path, ignore_errors=True)  # a fresh store (a rerun would skip every id)
    start = time.perf_counter()
    config = EmbedConfig(dtype=dtype, compression=compression)
    with open_writer(path, store_attrs(model, config)) as writer:
        embed_sequences(items, writer, model, batch_tokens=batch_tokens)
    return time.perf_counter() - start


def prepare_style_pairs(n_positives: int, seed: int) -> tuple[list[tuple[str, str]], int]:
    """(id, seq) items of every pair side, and the number of pairs (positives + 1:1 negatives)."""
    from embedhead.dataset import sequence_id

    seqs = [s for _, s in random_sequences(2 * n_positives, 80, 400, seed)]
    ids = [sequence_id(s) for s in seqs]
    pairs = [(ids[2 * i], ids[2 * i + 1]) for i in range(n_positives)]
    rng = random.Random(seed)
    order = list(range(n_positives))
    rng.shuffle(order)
    pairs += [
        (ids[2 * order[k]], ids[2 * order[(k + 1) % n_positives] + 1]) for k in range(n_positives)
    ]
    by_id = dict(zip(ids, seqs, strict=True))
    items = [(sid, by_id[sid]) for pair in pairs for sid in pair]
    return items, len(pairs)


def fake_overlap(args: argparse.Namespace) -> None:
    """Section 5: overlap of a stand-in backbone at ``args.fake_backbone`` nt/s and the writer."""
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.fake_backbone import FakeBackbone

    torch.set_num_threads(1)
    rate, d_model = float(args.fake_backbone), args.d_model
    work = Path(tempfile.mkdtemp(prefix="bench_embed_fake_"))
    try:
        fast, paced = FakeBackbone(d_model), FakeBackbone(d_model, rate)
        warm = random_sequences(10, 500, 1500, seed=1)
        embed_into(fast, warm, work / "warm.zarr", "float16", args.batch_tokens, "lz4")
        for n in args.overlap_sequences:
            overlap_table(args, work, random_sequences(int(n * args.scale), 500, 1500, seed=1),
                          fast, paced)  # fmt: skip
        if not args.no_memory:
            peak_memory(args, work, fast)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def overlap_table(args: argparse.Namespace, work: Path, items: list[tuple[str, str]],
                  fast: Any, paced: Any) -> None:  # fmt: skip
    """Section 5's overlap figures for one job (``items``)."""
    from benchmarks.fake_backbone import FakeBackbone

    rate, d_model = float(args.fake_backbone), args.d_model
    nt = sum(len(s) for _, s in items)
    mib = nt * d_model * 2 / 2**20
    print(f"[overlap] stand-in backbone {rate:,.0f} nt/s, d_model {d_model}, {len(items)} "
          f"sequences, {nt} nt ({mib:.0f} MiB of float16 rows); medians of "
          f"{args.repeats}, interleaved")  # fmt: skip

    def backbone_alone(model: FakeBackbone) -> float:
        model.seconds = 0.0
        bare_forward(model, items, args.batch_tokens)
        return model.seconds  # the stand-in's own time (what a GPU would take)

    def measure(codec: str, model: FakeBackbone) -> tuple[float, float, float]:
        runs = [
            (backbone_alone(model),
             embed_into(fast, items, work / f"w-{codec}.zarr", "float16",
                        args.batch_tokens, codec),
             embed_into(model, items, work / f"e-{codec}.zarr", "float16",
                        args.batch_tokens, codec))
            for _ in range(args.repeats)
        ]  # fmt: skip
        return tuple(float(median(r[k] for r in runs)) for k in range(3))  # type: ignore[return-value]

    for codec in ("lz4", "zstd", "none"):
        bb, writer_alone, both = measure(codec, paced)
        ratio = both / max(bb, writer_alone)
        print(f"  {codec:4s}: backbone alone {bb:5.2f} s, writer alone {writer_alone:5.2f} s, "
              f"end to end {both:5.2f} s, ratio {ratio:5.2f}  (target <= 1.15)")  # fmt: skip
    # the hardest case for the overlap: a backbone exactly as fast as the writer
    writer_alone = float(median(
        embed_into(fast, items, work / "w-bal.zarr", "float16", args.batch_tokens, "lz4")
        for _ in range(args.repeats)
    ))  # fmt: skip
    balanced = FakeBackbone(d_model, nt / writer_alone)
    bb, writer_alone, both = measure("lz4", balanced)
    print(f"  lz4 balanced ({nt / bb:,.0f} nt/s): backbone alone {bb:5.2f} s, writer alone "
          f"{writer_alone:5.2f} s, end to end {both:5.2f} s, ratio "
          f"{both / max(bb, writer_alone):5.2f}  (ideal 1.0; serial would be ~2)")  # fmt: skip


def peak_memory(args: argparse.Namespace, work: Path, fast: Any) -> None:
    """Section 5's memory figures: peak RSS of embed at 1x, 2x, 4x the sequences."""
    print("[memory] peak RSS rise of embed (stand-in backbone, lz4) at 1x, 2x, 4x sequences")
    for k, factor in enumerate((1, 2, 4)):
        seqs = random_sequences(int(100 * factor * args.scale), 500, 1500, seed=20 + k)
        reset_peak_rss()
        before = rss_mib()
        embed_into(fast, seqs, work / f"m{k}.zarr", "float16", args.batch_tokens, "lz4")
        peak = peak_rss_mib()
        print(f"  {factor}x {len(seqs):6d} sequences  peak {peak:8.1f} MiB  "
              f"rise {peak - before:7.1f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every job size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-tokens", type=int, default=1 << 14)
    parser.add_argument("--preset", default="tiny-1k", help="backbone shape (random weights)")
    parser.add_argument("--fake-backbone", type=float, default=None, metavar="RATE",
                        help="overlap figures with a stand-in backbone at RATE nt/s")  # fmt: skip
    parser.add_argument("--d-model", type=int, default=256, help="rows of the stand-in")
    parser.add_argument("--repeats", type=int, default=3, help="--fake-backbone: medians of")
    parser.add_argument("--overlap-sequences", type=int, nargs="+", default=[800],
                        help="--fake-backbone: sequences of each overlap job")  # fmt: skip
    parser.add_argument("--no-memory", action="store_true",
                        help="--fake-backbone: skip the peak-memory figures")  # fmt: skip
    args = parser.parse_args()
    if args.fake_backbone:
        fake_overlap(args)
        return

    import torch

    from embedhead.backbone import load_backbone
    from embedhead.backbone.presets import init_backbone
    from embedhead.store.verify import store_info

    work = Path(tempfile.mkdtemp(prefix="bench_embed_"))
    try:
        model = load_backbone(init_backbone(args.preset, work / "bb"), device=args.device)
        d_model = int(model.config.d_model)
        print(f"backbone {args.preset} (d_model {d_model}) on {args.device}, "
              f"torch threads {torch.get_num_threads()}")  # fmt: skip

        # 1. store overhead
        items = random_sequences(int(40 * args.scale), 200, 600, seed=1)
        nt = sum(len(s) for _, s in items)
        bare_forward(model, items[:8], args.batch_tokens)  # warm-up
        bare = min(bare_forward(model, items, args.batch_tokens) for _ in range(2))
        print(f"[throughput] {len(items)} sequences, {nt} nt")
        print(f"  bare forward          {bare:7.2f} s  {nt / bare:12,.0f} nt/s")
        for codec in ("zstd", "lz4", "none"):
            embed = min(
                embed_into(
                    model, items, work / f"t-{codec}{rep}.zarr", "float16", args.batch_tokens, codec
                )
                for rep in range(2)
            )
            print(
                f"  embed -> zarr ({codec:4s})  {embed:7.2f} s  {nt / embed:12,.0f} nt/s"
                f"  store overhead {100 * (embed / bare - 1):+6.1f} %   (target < 10 %)"
            )

        # 2. backbone work per pair
        from embedhead.embed.run import EmbedConfig, embed_sequences, store_attrs
        from embedhead.store import open_writer

        pair_items, n_pairs = prepare_style_pairs(int(100 * args.scale), seed=2)
        attrs = store_attrs(model, EmbedConfig())
        with open_writer(work / "pairs.zarr", attrs) as writer:
            stats = embed_sequences(pair_items, writer, model, batch_tokens=args.batch_tokens)
        print(f"[pairs] {n_pairs} pairs (1:1 negatives), {len(pair_items)} pair sides")
        print(f"  sequences embedded per pair {stats.n_embedded / n_pairs:.3f}  (thesis: 2.0)")
        print(
            f"  backbone calls per pair     {stats.backbone_calls / n_pairs:.3f}  (target <= 0.5)"
        )

        # 3. bytes on disk per nucleotide
        print(f"[disk] raw float16 would be {2 * d_model} bytes per nucleotide")
        for name, dtype in (
            ("f16.zarr", "float16"),
            ("bf16.zarr", "bfloat16"),
            ("f16.h5", "float16"),
        ):
            embed_into(model, items[:20], work / name, dtype, args.batch_tokens)
            info = store_info(work / name)
            per_nt = info.bytes_per_nucleotide
            print(f"  {name:10s} {dtype:9s} {per_nt:8.1f} bytes per nucleotide")

        # 4. peak memory vs number of sequences
        print("[memory] peak RSS during each run, and its rise over the RSS before the run")
        print("         (batch budget 2048 tokens; the rise must not grow with the sequence count)")
        warm = random_sequences(100, 20, 40, seed=9)
        embed_into(model, warm, work / "warm.zarr", "float16", 2048)
        for k, n in enumerate(int(x * args.scale) for x in (150, 600, 2400)):
            seqs = random_sequences(n, 20, 40, seed=10 + k)
            reset_peak_rss()
            before = rss_mib()
            embed_into(model, seqs, work / f"m{k}.zarr", "float16", 2048)
            peak = peak_rss_mib()
            print(
                f"  {n:7d} sequences  {sum(len(s) for _, s in seqs):9d} nt  "
                f"peak {peak:8.1f} MiB  rise {peak - before:7.1f} MiB"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
