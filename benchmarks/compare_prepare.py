"""Compare ``embedhead prepare`` outputs of this tree with those of another checkout.

For a set of configurations (default, ``--max-pairs``, each ``--negatives`` method, ``--match
gc|kmer``, ``--chroms``, ``--regions``, AXT input) both trees run the same command line, into
the same ``--out`` path one after the other (``dataset.json`` records the command), and every
output file is compared: ``dataset.json`` byte for byte, each ``.gz`` file by the SHA-256 of its
decompressed content (and its bytes, reported apart: the gzip compressor may differ), and the
printed summary (timings removed) including the leak-check line.

In: ``--ref`` (default ``/work/main``), a checkout whose ``embedhead`` package is the reference;
this file's tree is the candidate. Out: one line per configuration and file; exit status 1 when
any decompressed content, ``dataset.json`` or printed line differs.

Usage: ``python benchmarks/compare_prepare.py [--ref /work/main] [--axt FILE]``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
DEFAULT_AXT = Path("/work/shared/realdata/kent/hg17.canFam1.testDog.net.axt")

MAF_RUNS: dict[str, list[str]] = {
    "default": [],
    "max-pairs": ["--max-pairs", "300"],
    "shuffle": ["--negatives", "shuffle"],
    "adjacent": ["--negatives", "adjacent", "--length-match", "0"],
    "dishuffle": ["--negatives", "dishuffle"],
    "match-gc": ["--match", "gc"],
    "match-kmer": ["--match", "kmer"],
    "chroms": ["--chroms", "chr1,chr7", "--max-pairs", "200"],
    "regions": ["--regions", "{bed}", "--split-by", "chrom"],
    "chunk-1000": ["--chunk-size", "1000", "--split-by", "random", "--seed", "3"],
    "max-pairs-chunk": ["--max-pairs", "250", "--chunk-size", "700", "--negatives", "shuffle"],
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def run(tree: Path, inputs: list[str], out: Path, extra: list[str]) -> str:
    """Run prepare from ``tree``; its stdout with the run time blanked. It runs in ``out``'s
    parent folder: ``python -m`` puts the working folder first on ``sys.path``, and a checkout
    there would shadow ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, "-m", "embedhead", "prepare", *inputs, "--out", str(out), *extra]
    out.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, cwd=out.parent
    )
    where = subprocess.run(
        [sys.executable, "-c", "import embedhead; print(embedhead.__file__)"],
        env=env, capture_output=True, text=True, check=True, cwd=out.parent,
    ).stdout.strip()  # fmt: skip
    if not where.startswith(str(tree)):
        raise SystemExit(f"embedhead imported from {where}, not from {tree}")
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(command)} failed:\n{done.stderr}")
    return re.sub(r" in [0-9.]+ s$", " in _ s", done.stdout, flags=re.M)


def compare(name: str, ref: Path, new: Path, ref_out: str, new_out: str) -> bool:
    same = True
    if ref_out != new_out:
        print(f"{name:12s} stdout         DIFFERENT\n--- ref\n{ref_out}--- new\n{new_out}")
        same = False
    for path in sorted(ref.iterdir()):
        a, b = path.read_bytes(), (new / path.name).read_bytes()
        if path.suffix == ".gz":
            ca, cb = gzip.decompress(a), gzip.decompress(b)
            verdict = "identical" if a == b else "same content, other gzip bytes"
            if ca != cb:
                verdict, same = "DIFFERENT content", False
            print(f"{name:12s} {path.name:15s} {verdict} (content {sha(ca)} / {sha(cb)})")
        else:
            verdict = "identical" if a == b else "DIFFERENT"
            same = same and a == b
            print(f"{name:12s} {path.name:15s} {verdict} ({sha(a)} / {sha(b)})")
    extra = sorted(p.name for p in new.iterdir() if not (ref / p.name).exists())
    if extra:
        print(f"{name:12s} extra files: {extra}")
        same = False
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ref", default="/work/main", help="reference checkout")
    parser.add_argument("--axt", default=str(DEFAULT_AXT), help="an AXT file (skipped if absent)")
    parser.add_argument("--blocks", type=int, default=1500, help="simulated MAF blocks")
    args = parser.parse_args()
    ref_tree = Path(args.ref).resolve()
    commit = subprocess.run(
        ["git", "-C", str(ref_tree), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"reference {ref_tree} ({commit or 'no git'}), candidate {HERE}")
    all_same = True
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        maf = tmp / "sim.maf.gz"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "embedhead",
                "simulate",
                "--out",
                str(maf),
                "--blocks",
                str(args.blocks),
                "--seed",
                "5",
            ],
            env=dict(os.environ, PYTHONPATH=str(HERE)),
            cwd=tmp,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        bed = tmp / "regions.bed"
        bed.write_text("chr1\t0\t60000000\nchr7\t10000000\t90000000\nchrX\t0\t150000000\n")
        runs = [
            (name, [str(maf)], ["--reference", "hg38", "--query", "susScr11", *extra])
            for name, extra in MAF_RUNS.items()
        ]
        if Path(args.axt).is_file():
            runs.append(("axt", [args.axt], ["--reference", "hg17", "--query", "canFam1"]))
            runs.append(
                ("axt-shuffle", [args.axt], ["--negatives", "shuffle", "--split-by", "random"])
            )
        else:
            print(f"no AXT file at {args.axt}: AXT runs skipped")
        (tmp / "ref").mkdir()
        for name, inputs, extra in runs:
            extra = [str(bed) if x == "{bed}" else x for x in extra]
            out = tmp / "out" / name
            ref_out = run(ref_tree, inputs, out, extra)
            shutil.move(out, tmp / "ref" / name)
            new_out = run(HERE, inputs, out, extra)
            all_same &= compare(name, tmp / "ref" / name, out, ref_out, new_out)
    print("all outputs match" if all_same else "OUTPUTS DIFFER")
    sys.exit(0 if all_same else 1)


if __name__ == "__main__":
    main()
