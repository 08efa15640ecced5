"""GPU path check: the CUDA backbone (float32 and bfloat16 autocast) against the CPU one.

Builds random small-32k weights, runs the same batch (right padded, lengths up to ``--length``)
on the CPU in float32 and on CUDA in float32 and bfloat16, and prints the largest error of the
real positions relative to the output RMS. Then embeds the same sequences into two stores, one
on each device, and prints the largest difference of the stored (float16) values.

Usage (on a machine with a GPU)::

    python benchmarks/gpu_parity.py --length 5000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from embedhead.backbone import load_backbone
from embedhead.backbone.presets import init_backbone
from embedhead.backbone.tokenizer import tokenize
from embedhead.embed.run import EmbedConfig, embed_dataset
from embedhead.store import open_store


def rel_error(a: torch.Tensor, b: torch.Tensor, lengths: torch.Tensor) -> float:
    """Largest |a-b| over real positions, divided by the RMS of ``b`` there."""
    mask = torch.arange(a.shape[1])[None, :] < lengths[:, None]
    diff = (a - b).abs()[mask]
    rms = b[mask].pow(2).mean().sqrt()
    return float(diff.max() / rms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small-32k")
    parser.add_argument("--length", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_parity: no CUDA device")
    rng = np.random.default_rng(0)
    lengths = [args.length, *rng.integers(1, args.length, args.batch - 1).tolist()]
    seqs = ["".join(rng.choice(list("ACGTN"), n, p=[0.24] * 4 + [0.04])) for n in lengths]
    ids, lens = tokenize(seqs)
    with tempfile.TemporaryDirectory() as tmp:
        bb = init_backbone(args.preset, Path(tmp) / "bb", seed=0)
        ref = load_backbone(bb, device="cpu")(ids)
        print(f"{torch.cuda.get_device_name()}; {args.preset}, lengths {lengths}")
        for dtype in ("float32", "bfloat16"):
            out = load_backbone(bb, device="cuda", dtype=dtype)(ids.cuda()).float().cpu()
            err = rel_error(out, ref, lens)
            print(f"cuda {dtype:8s} vs cpu float32: max error / RMS = {err:.2e}")
        fasta = Path(tmp) / "seqs.fa"
        fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
        stored = {}
        for device in ("cpu", "cuda"):
            path = Path(tmp) / f"{device}.zarr"
            embed_dataset(fasta, path, bb, EmbedConfig(device=device, progress=False))
            with open_store(path) as store:
                stored[device] = [store.get(f"s{i}") for i in range(len(seqs))]
        worst = max(float(np.abs(a - b).max()) for a, b in zip(*stored.values(), strict=True))
        scale = max(float(np.abs(a).max()) for a in stored["cpu"])
        print(f"store (float16) cuda vs cpu: max |diff| {worst:.3e} (max |value| {scale:.3f})")


if __name__ == "__main__":
    main()
