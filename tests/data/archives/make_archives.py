"""Write the committed format-1 archives of tests/test_archives.py (run from the repo root).

    python tests/data/archives/make_archives.py

Writes, next to this script: ``dataset/`` (6 sequences, 6 pairs, every split holds both labels),
``store.zarr`` and ``store.h5`` (that dataset embedded by a tiny RANDOM backbone: d_model 8,
1 layer, float16), ``run/`` (a pooled head trained 2 epochs on the zarr store) and
``expected.json`` (the numbers the archives must keep giving back). The archives are a format
record: regenerate them only on purpose, when the format version changes.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for conftest.write_tiny_dataset

from conftest import write_tiny_dataset  # noqa: E402

from embedhead.backbone import write_random_checkpoint  # noqa: E402
from embedhead.dataset import load_dataset  # noqa: E402
from embedhead.embed.run import EmbedConfig, embed_dataset  # noqa: E402
from embedhead.heads.evaluate import evaluate_run  # noqa: E402
from embedhead.heads.predict import predict_pairs  # noqa: E402
from embedhead.heads.train import run_training  # noqa: E402
from embedhead.store import open_store  # noqa: E402

BACKBONE = {"d_model": 8, "n_layer": 1, "d_inner": 16, "max_seq_len": 160, "filter_order": 8}
EMBED = {"progress": False, "device": "cpu", "dtype": "float16"}
TRAIN = {"head": "pooled", "hidden_sizes": [4], "epochs": 2, "device": "cpu", "seed": 0}


def archive_pairs() -> list[tuple[str, str]]:
    """Every pair of the archived dataset as (sequence, sequence): all of them are in the store."""
    dataset = load_dataset(HERE / "dataset")
    seqs = dict(dataset.sequences())
    return [(seqs[p.seq1], seqs[p.seq2]) for p in dataset.pairs]


def main() -> None:
    for name in ("dataset", "store.zarr", "store.h5", "run", "expected.json"):
        path = HERE / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    write_tiny_dataset(HERE / "dataset", n_sequences=6, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        backbone = write_random_checkpoint(Path(tmp) / "bb", seed=0, **BACKBONE)
        for suffix in (".zarr", ".h5"):
            embed_dataset(HERE / "dataset", HERE / f"store{suffix}", backbone, EmbedConfig(**EMBED))
    run_training(HERE / "dataset", HERE / "store.zarr", HERE / "run", TRAIN)
    with open_store(HERE / "store.zarr") as store:
        ids = sorted(store.ids())
        expected = {
            "d_model": store.d_model,
            "ids": ids,
            "lengths": {i: store.length(i) for i in ids},
            "last_row": {i: store.get(i)[-1].astype(float).tolist() for i in ids},
            "pooled": {i: store.get_pooled([i])[0].astype(float).tolist() for i in ids},
        }
    expected["evaluate_test"] = evaluate_run(
        HERE / "run", HERE / "dataset", HERE / "store.zarr", device="cpu"
    )
    expected["predict_all"] = [
        row.value
        for row in predict_pairs(
            HERE / "run", "unused", archive_pairs(), HERE / "store.zarr", device="cpu"
        )
    ]
    (HERE / "expected.json").write_text(json.dumps(expected, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
