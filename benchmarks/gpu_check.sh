#!/usr/bin/env bash
# GPU checks and benchmarks, for a machine with an NVIDIA GPU and a Python that has torch.
# Usage: OUT=/tmp/gpu bash benchmarks/gpu_check.sh   (zarr wheels in .whl/ are installed first
# when present; embedhead itself is installed into /tmp/site, so nothing touches the system).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1
log() { printf '\n### %s\n' "$*"; }
{
  nvidia-smi -L
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  fi
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . \
    || exit 1
  export PYTHONPATH=/tmp/site
  python3 -c "import torch, zarr, embedhead; print('torch', torch.__version__, 'zarr', zarr.__version__)"
  log "tests that use CUDA (and the forward/embed suites on this machine)"
  pytest -q -p no:cacheprovider tests/test_backbone_forward.py tests/test_embed.py
  log "parity: CUDA float32 / bfloat16 vs CPU float32"
  python3 benchmarks/gpu_parity.py --length 5000
  log "backbone throughput, small-32k"
  for dt in float32 bfloat16; do
    python3 benchmarks/bench_backbone.py --device cuda --dtype "$dt" --lengths 1000,5000 \
      --batch-size 32 --repeats 5
  done
  log "embed stage on CUDA (store overhead, calls per pair, bytes per nt, memory)"
  python3 benchmarks/bench_embed.py --device cuda --preset small-32k --batch-tokens 262144 \
    --scale 20
  log "end to end on the GPU: simulate, prepare, embed (float32 and bfloat16 autocast)"
  W=$(mktemp -d)
  cd "$W"  # run the installed package, not the source tree's embedhead/
  python3 -m embedhead simulate --out "$W/sim.maf.gz" --blocks 600 --seed 1
  python3 -m embedhead prepare "$W/sim.maf.gz" --reference hg38 --query galGal6 --out "$W/ds"
  python3 -m embedhead init-backbone --preset small-32k "$W/bb"
  for p in float32 bfloat16; do
    python3 -m embedhead embed "$W/ds" --backbone "$W/bb" --store "$W/$p.zarr" --device cuda \
      --precision "$p" --compression lz4 --batch-tokens 262144
    python3 -m embedhead store info "$W/$p.zarr" | head -4
  done
  cd "$OLDPWD"
  log "one epoch on the cache vs recomputing the backbone, CUDA"
  python3 benchmarks/bench_train.py --device cuda --preset small-32k --pairs 300 \
    --min-len 1000 --max-len 5000
} 2>&1 | tee "$OUT/gpu_check.log"
