"""Benchmark the backbone forward pass: nucleotides per second of the small-32k shape.

Random weights of the small-32k shape (d_model 256, 4 layers, d_inner 1024) are built in memory
(nothing is written). For each length, ``--repeats`` timed batches of ``--batch-size`` random
sequences run after a short warm-up batch; the figure is (batch * length * repeats) / seconds. The
share of time spent building the implicit long filters is printed too (it does not depend on the
batch size, so large batches amortise it).

Usage::

    python benchmarks/bench_backbone.py                       # CPU, lengths 1000 and 5000
    python benchmarks/bench_backbone.py --device cuda --dtype bfloat16 --batch-size 32
    python benchmarks/bench_backbone.py --lengths 1000,5000,32000 --repeats 5 --threads 2

The default run (CPU, batch 2, 2 repeats) takes well under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import torch

from embedhead.backbone.load import build_model, resolve_device, resolve_dtype
from embedhead.backbone.model import Block, HyenaDNAModel
from embedhead.backbone.presets import preset_config, random_state_dict


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(
    model: torch.nn.Module, ids: torch.Tensor, repeats: int, device: torch.device
) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) for ``repeats`` forward passes after a warm-up.

    The warm-up runs the first 256 positions only (kernel selection, allocator), to stay quick.
    """
    with torch.inference_mode():
        model(ids[:, :256])
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            model(ids)
        _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu_start


def time_filters(model: HyenaDNAModel, length: int, repeats: int, device: torch.device) -> float:
    """Seconds spent computing every layer's long filter ``repeats`` times (part of a forward)."""
    layers = [layer for layer in model.backbone.layers if isinstance(layer, Block)]
    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            for layer in layers:
                layer.mixer.filter_fn.filter(length)
        _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small-32k")
    parser.add_argument("--lengths", default="1000,5000", help="Comma-separated lengths.")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto.")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16 (CUDA).")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = preset_config(args.preset)
    model = build_model(config, random_state_dict(config, seed=0)).eval().requires_grad_(False)
    model.to(device)  # type: ignore[arg-type]
    model.autocast_dtype = resolve_dtype(args.dtype, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"backbone {args.preset} (d_model {config.d_model}, {config.n_layer} layers), random "
        f"weights; device {name}, dtype {args.dtype}, threads {torch.get_num_threads()}, "
        f"batch {args.batch_size}, {args.repeats} timed batches"
    )
    print(
        f"{'length':>8} {'nt/s':>10} {'s/batch':>9} {'ms/seq':>9} {'filter %':>9} {'nt/cpu-s':>10}"
    )
    gen = torch.Generator().manual_seed(0)
    for length in (int(x) for x in args.lengths.split(",")):
        ids = torch.randint(7, 12, (args.batch_size, length), generator=gen).to(device)
        seconds, cpu_seconds = time_forward(model, ids, args.repeats, device)
        filters = time_filters(model, length, args.repeats, device)
        n_nt = args.batch_size * length * args.repeats
        per_batch = seconds / args.repeats
        print(
            f"{length:>8} {n_nt / seconds:>10,.0f} {per_batch:>9.3f} "
            f"{1000 * per_batch / args.batch_size:>9.1f} {100 * filters / seconds:>8.1f}% "
            f"{n_nt / max(cpu_seconds, 1e-9):>10,.0f}"
        )
    print(
        "nt/s: wall clock (shared machines: other load lowers it); nt/cpu-s: nucleotides per "
        "second of CPU time summed over threads (CPU runs); filter %: long-filter share"
    )


if __name__ == "__main__":
    main()
