"""--repeats N --resplit: each repeat re-draws split and negatives from its seed."""

from __future__ import annotations

import json

import torch

from embedhead.dataset import load_dataset
from embedhead.heads.models import HeadConfig
from embedhead.heads.train import TrainConfig, train_repeats
from embedhead.prepare.build import PrepareConfig, prepare
from embedhead.prepare.resplit import resplit

torch.set_num_threads(1)


def test_resplit_redraws_split_and_negatives_keeping_positives(simulated_maf, tmp_path):
    out = tmp_path / "ds"
    prepare([simulated_maf], out, PrepareConfig(reference="hg38", query="galGal6"))
    ds = load_dataset(out)
    a, b, again = resplit(ds, 1), resplit(ds, 2), resplit(ds, 1)
    assert a.pairs == again.pairs  # seeded
    pos = {p.pair_id for p in ds.pairs if p.label == 1}
    for new in (a, b):
        assert {p.pair_id for p in new.pairs if p.label == 1} == pos
        # blocks never cross splits; every split has positives, train both labels
        split_of: dict[str, set[str]] = {}
        for p in new.pairs:
            if p.label == 1:
                split_of.setdefault(p.block_id, set()).add(p.split)
        assert all(len(s) == 1 for s in split_of.values())
        kinds = {(p.split, p.label) for p in new.pairs}
        assert {("train", 0), ("train", 1), ("val", 1), ("test", 1)} <= kinds
        # negatives recombine the dataset's own sequences
        ids = set(ds.sequence_ids())
        assert all(p.seq1 in ids and p.seq2 in ids for p in new.pairs)
    split_a = {p.pair_id: p.split for p in a.pairs if p.label == 1}
    split_b = {p.pair_id: p.split for p in b.pairs if p.label == 1}
    assert split_a != split_b
    neg = lambda d: {(p.seq1, p.seq2) for p in d.pairs if p.label == 0}  # noqa: E731
    assert neg(a) != neg(b)
    assert a.info["resplit_seed"] == 1


def test_train_repeats_resplit_records_each_draw(tiny_dataset_dir, make_signal_store, tmp_path):
    ds = load_dataset(tiny_dataset_dir)
    store = make_signal_store(ds, d_model=6, noise=0.3)
    head = HeadConfig(d_model=6, conv_channels=4, hidden_sizes=(4,))
    config = TrainConfig(epochs=1, batch_size=8, device="cpu", seed=3)
    result = train_repeats(ds, store, config, tmp_path / "rep", 2, head=head, resplit=True)
    infos = [json.loads((r.path / "run.json").read_text()) for r in result.runs]
    assert [i["dataset"]["resplit_seed"] for i in infos] == [3, 4]
    # each run trained and was evaluated on its own draw
    for info, seed in zip(infos, (3, 4), strict=True):
        drawn = resplit(ds, seed)
        for split in ("val", "test"):
            assert info["dataset"]["n_pairs"][split] == len(drawn.split(split))
    assert resplit(ds, 3).pairs != resplit(ds, 4).pairs
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["resplit"] is True and summary["seeds"] == [3, 4]
