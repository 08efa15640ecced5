#!/usr/bin/env bash
# The whole embedhead story on the shipped demo data (data/demo.maf.gz, made by `embedhead
# simulate`, see data/README.md). Run through `make demo`; takes a few minutes on 2 CPU cores.
#
# The backbone is a RANDOMLY initialised tiny-1k HyenaDNA (no Hub access here): the pipeline,
# caching and numbers are real, but the embeddings carry no pretrained knowledge. Point
# --backbone at a real checkpoint folder (e.g. LongSafari/hyenadna-small-32k-seqlen-hf) for
# meaningful accuracies.
set -euo pipefail

OUT=${1:-demo-out}
DATA=$(cd "$(dirname "$0")" && pwd)/demo.maf.gz
mkdir -p "$OUT"
# Start clean but keep the embedding store: a second `make demo` reuses every embedding.
find "$OUT" -mindepth 1 -maxdepth 1 ! -name 'store.zarr' -exec rm -rf {} +

step() { printf '\n== %s\n' "$*"; }

step "1. prepare: alignments -> pair datasets (hg38 vs chicken, hg38 vs zebrafish)"
for q in galGal6 danRer10; do
  embedhead prepare "$DATA" --reference hg38 --query "$q" --chunk-size 1000 --out "$OUT/ds_$q"
done

step "2. init-backbone: a random tiny-1k HyenaDNA (clearly labelled RANDOM)"
embedhead init-backbone --preset tiny-1k "$OUT/backbone"

step "3. embed: the backbone runs once per unique sequence, into one shared store"
for q in galGal6 danRer10; do
  embedhead embed "$OUT/ds_$q" --backbone "$OUT/backbone" --store "$OUT/store.zarr" --device cpu -q
done
embedhead store info "$OUT/store.zarr"
embedhead store verify "$OUT/store.zarr"

step "4. train the thesis head on chicken, evaluate on chicken and (cross-species) zebrafish"
embedhead train "$OUT/ds_galGal6" --store "$OUT/store.zarr" --out "$OUT/run_galGal6" \
  --epochs 15 --seed 0 -q
echo "-- evaluate on the chicken test split (reproduces the metrics train stored):"
embedhead evaluate "$OUT/run_galGal6" --dataset "$OUT/ds_galGal6" --store "$OUT/store.zarr"
echo "-- evaluate the chicken head on the zebrafish test split (cross-species):"
embedhead evaluate "$OUT/run_galGal6" --dataset "$OUT/ds_danRer10" --store "$OUT/store.zarr"

step "5. predict: score new pairs end to end (cached sequences cost nothing)"
embedhead predict "$OUT/run_galGal6" --backbone "$OUT/backbone" \
  --pairs "$OUT/ds_danRer10/pairs.tsv.gz" --store "$OUT/store.zarr" --out "$OUT/predictions.tsv"
head -n 4 "$OUT/predictions.tsv"

step "6. sweep: 8 Optuna trials (TPE, median pruning) sharing one load of the cache"
embedhead sweep "$OUT/ds_galGal6" --store "$OUT/store.zarr" --out "$OUT/sweep" \
  --trials 8 --head pooled --epochs 5 -q
embedhead train "$OUT/ds_galGal6" --store "$OUT/store.zarr" --out "$OUT/run_best" \
  --config "$OUT/sweep/best.json" -q

step "7. baselines on the same splits: k-mer profiles, GC content, length only"
embedhead baselines "$OUT/ds_galGal6" --out "$OUT/baselines"

step "8. experiment: per-species table, cross-species matrix, learning curve"
cat > "$OUT/experiment-spec.json" <<JSON
{"datasets": {"galGal6": {"dataset": "ds_galGal6", "store": "store.zarr"},
              "danRer10": {"dataset": "ds_danRer10", "store": "store.zarr"}},
 "tasks": ["classification"], "repeats": 2, "train_sizes": [100],
 "baselines": true, "config_file": "sweep/best.json", "config": {"epochs": 5}}
JSON
embedhead experiment "$OUT/experiment-spec.json" --out "$OUT/experiment" -q

step "9. report"
embedhead report "$OUT"
