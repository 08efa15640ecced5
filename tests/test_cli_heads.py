import csv
import gzip
import json
import shutil

import pytest
from click.testing import CliRunner

from embedhead.cli.main import main
from embedhead.dataset import load_dataset, sequence_id
from embedhead.heads.config import HeadConfig, TrainConfig

FAST = ["--epochs", "3", "--batch-size", "8", "--device", "cpu", "--quiet"]


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run_dir(tiny_dataset_dir, heads_tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = _invoke("train", tiny_dataset_dir, "--store", heads_tiny_store, "--out", out, *FAST)
    assert result.exit_code == 0, result.output
    assert "test " in result.output and "roc_auc=" in result.output
    return out


def _read_tsv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_train_then_evaluate_reproduces_metrics(run_dir, tiny_dataset_dir, heads_tiny_store):
    stored = json.loads((run_dir / "run.json").read_text())["metrics"]["test"]
    result = _invoke(
        "evaluate", run_dir, "--dataset", tiny_dataset_dir, "--store", heads_tiny_store,
        "--json", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output)  # + by_identity/by_length/reliability (issue 13)
    assert {k: v for k, v in evaluated.items() if k in stored} == stored
    text = _invoke(
        "evaluate", run_dir, "--dataset", tiny_dataset_dir, "--store", heads_tiny_store,
        "--split", "val", "--device", "cpu",
    )  # fmt: skip
    assert text.exit_code == 0 and text.output.startswith("val ") and "confusion tn=" in text.output


def test_predict_pairs_table_with_cached_store(
    run_dir, tiny_dataset_dir, heads_tiny_store, tiny_backbone_dir, tmp_path
):
    out = tmp_path / "scores.tsv"
    result = _invoke(
        "predict", run_dir, "--backbone", tiny_backbone_dir,
        "--pairs", tiny_dataset_dir / "pairs.tsv.gz", "--store", heads_tiny_store,
        "--out", out, "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _read_tsv(out)
    ds = load_dataset(tiny_dataset_dir)
    assert [r["pair_id"] for r in rows] == [p.pair_id for p in ds.pairs]
    assert list(rows[0]) == [
        "pair_id",
        "seq1_id",
        "seq2_id",
        "len1",
        "len2",
        "probability",
        "predicted",
        "label",
    ]
    # the test rows give back the accuracies stored by train: "predicted" at the threshold
    # chosen on val, the probability cut at 0.5 for accuracy_at_0.5
    info = json.loads((run_dir / "run.json").read_text())
    stored = info["metrics"]["test"]
    test = [r for r, p in zip(rows, ds.pairs, strict=True) if p.split == "test"]
    cut = info["threshold"]["value"]
    assert all(r["predicted"] == str(int(float(r["probability"]) >= cut)) for r in test)
    correct = sum(r["predicted"] == r["label"] for r in test)
    assert correct / len(test) == pytest.approx(stored["accuracy"])
    at_half = sum((float(r["probability"]) >= 0.5) == (r["label"] == "1") for r in test)
    assert at_half / len(test) == pytest.approx(stored["accuracy_at_0.5"])


def test_predict_fasta_embeds_missing_sequences(
    run_dir, tiny_dataset_dir, heads_tiny_store, tiny_backbone_dir, tmp_path
):
    ds = load_dataset(tiny_dataset_dir)
    seqs = dict(ds.sequences())
    pairs = ds.split("test")[:4]
    (tmp_path / "a.fa").write_text("".join(f">a{i}\n{seqs[p.seq1]}\n" for i, p in enumerate(pairs)))
    (tmp_path / "b.fa").write_text("".join(f">b{i}\n{seqs[p.seq2]}\n" for i, p in enumerate(pairs)))
    cached = tmp_path / "cached.tsv"
    _invoke(
        "predict", run_dir, "--backbone", tiny_backbone_dir, "--fasta", tmp_path / "a.fa",
        tmp_path / "b.fa", "--store", heads_tiny_store, "--out", cached, "--device", "cpu",
    )  # fmt: skip
    fresh = tmp_path / "fresh.tsv"  # no --store: everything embedded into a temporary store
    result = _invoke(
        "predict", run_dir, "--backbone", tiny_backbone_dir, "--fasta", tmp_path / "a.fa",
        tmp_path / "b.fa", "--out", fresh, "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    a, b = _read_tsv(cached), _read_tsv(fresh)
    assert [r["pair_id"] for r in b] == [f"a{i}|b{i}" for i in range(4)]
    assert [r["seq1_id"] for r in b] == [p.seq1 for p in pairs]
    for x, y in zip(a, b, strict=True):
        assert float(x["probability"]) == pytest.approx(float(y["probability"]), abs=1e-3)
    # a growing cache: new sequences are appended to the given store
    store = tmp_path / "grow.zarr"
    shutil.copytree(heads_tiny_store, store)
    new = "ACGT" * 30
    (tmp_path / "simple.tsv").write_text(f"seq1\tseq2\n{new}\t{seqs[pairs[0].seq2]}\n")
    result = _invoke(
        "predict", run_dir, "--backbone", tiny_backbone_dir, "--pairs", tmp_path / "simple.tsv",
        "--store", store, "--out", tmp_path / "s.tsv", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from embedhead.store import open_store

    with open_store(store) as reader:
        assert sequence_id(new) in reader
    assert _read_tsv(tmp_path / "s.tsv")[0]["pair_id"] == "pair1"


def test_predict_bad_inputs(run_dir, tiny_backbone_dir, tmp_path):
    (tmp_path / "bad.tsv").write_text("seq1\tseq2\nACGT\tAXGT\n")
    result = _invoke(
        "predict", run_dir, "--backbone", tiny_backbone_dir, "--pairs", tmp_path / "bad.tsv",
        "--out", tmp_path / "o.tsv",
    )  # fmt: skip
    assert result.exit_code == 1 and "bad.tsv:2" in result.output
    (tmp_path / "one.fa").write_text(">x\nACGT\n")
    (tmp_path / "two.fa").write_text(">x\nACGT\n>y\nAC\n")
    result = _invoke(
        "predict", run_dir, "--backbone", tiny_backbone_dir, "--fasta", tmp_path / "one.fa",
        tmp_path / "two.fa", "--out", tmp_path / "o.tsv",
    )  # fmt: skip
    assert result.exit_code == 1 and "equal counts" in result.output
    assert not (tmp_path / "o.tsv").exists()


def test_config_file_and_flag_precedence(tiny_dataset_dir, heads_tiny_store, tmp_path):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"lr": 0.05, "hidden_sizes": [12], "head": "pooled", "epochs": 2}))
    out = tmp_path / "run"
    result = _invoke(
        "train", tiny_dataset_dir, "--store", heads_tiny_store, "--out", out, "--config", best,
        "--lr", "0.002", "--device", "cpu", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["lr"] == 0.002 and config["train"]["epochs"] == 2
    assert config["head"]["hidden_sizes"] == [12] and config["head"]["kind"] == "pooled"


def test_repeats_report_mean_and_std(tiny_dataset_dir, heads_tiny_store, tmp_path):
    result = _invoke(
        "train", tiny_dataset_dir, "--store", heads_tiny_store, "--out", tmp_path / "rep",
        "--repeats", "2", "--head", "pooled", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 runs" in result.output and "±" in result.output
    assert (tmp_path / "rep" / "seed-1" / "head.safetensors").is_file()
    # evaluating the repeats folder evaluates every seed and reproduces train's summary
    evaluated = _invoke(
        "evaluate", tmp_path / "rep", "--dataset", tiny_dataset_dir,
        "--store", heads_tiny_store, "--json", "--device", "cpu",
    )  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    got = json.loads(evaluated.output)
    assert sorted(got["runs"]) == ["seed-0", "seed-1"]
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())["metrics"]["test"]
    for key in ("accuracy", "roc_auc", "f1"):
        assert got["summary"]["test"][key]["mean"] == pytest.approx(summary[key]["mean"])
        assert got["summary"]["test"][key]["std"] == pytest.approx(summary[key]["std"])
        per_seed = [got["runs"][s][key] for s in ("seed-0", "seed-1")]
        assert got["summary"]["test"][key]["values"] == pytest.approx(per_seed)
    text = _invoke(
        "evaluate", tmp_path / "rep", "--dataset", tiny_dataset_dir,
        "--store", heads_tiny_store, "--device", "cpu",
    )  # fmt: skip
    assert "2 runs (seed-0, seed-1)" in text.output and "accuracy=" in text.output
    from embedhead.report.render import write_report

    report = write_report(tmp_path / "rep", plots=False)  # train's summary.json is a result
    assert "## Repeated runs `.`" in report.path.read_text()


def test_train_errors_leave_no_run(tiny_dataset_dir, heads_tiny_store, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(tiny_dataset_dir, ds)
    with gzip.open(ds / "pairs.tsv.gz", "rt") as fh:
        lines = [line for line in fh if "\tval\n" not in line]
    with gzip.open(ds / "pairs.tsv.gz", "wt") as fh:
        fh.writelines(lines)
    result = _invoke("train", ds, "--store", heads_tiny_store, "--out", tmp_path / "r", *FAST)
    assert result.exit_code == 1 and "split 'val' has no pairs" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"learning_rate": 1}')
    result = _invoke(
        "train", tiny_dataset_dir, "--store", heads_tiny_store, "--out", tmp_path / "r",
        "--config", bad,
    )  # fmt: skip
    assert result.exit_code == 1 and "learning_rate" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "ds"]


def test_cli_defaults_match_library_defaults():
    params = {p.name: p.default for p in main.commands["train"].params}
    train, head = TrainConfig(), HeadConfig(d_model=1)
    for flag, key in [("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                      ("weight_decay", "weight_decay"), ("patience", "patience"),
                      ("task", "task"), ("head_kind", "head"), ("seed", "seed"),
                      ("device", "device"), ("loader", "loader")]:  # fmt: skip
        assert params[flag] == getattr(train, key), flag
    assert params["dropout"] == head.dropout


def test_predict_max_length_truncates_overlong_sequences(run_dir, tiny_backbone_dir, tmp_path):
    # the backbone's refusal of an over-long sequence advises --max-length: predict must have it
    long_seq, short = ("ACGGT" * 200)[:900], "ACGT" * 20
    (tmp_path / "p.tsv").write_text(f"seq1\tseq2\n{long_seq}\t{short}\n")
    args = ["predict", run_dir, "--backbone", tiny_backbone_dir, "--pairs", tmp_path / "p.tsv"]
    refused = _invoke(*args, "--out", tmp_path / "o.tsv", "--device", "cpu")
    assert refused.exit_code == 1 and "--max-length" in refused.output
    assert not (tmp_path / "o.tsv").exists()
    result = _invoke(*args, "--out", tmp_path / "o.tsv", "--device", "cpu", "--max-length", 400)
    assert result.exit_code == 0, result.output
    (row,) = _read_tsv(tmp_path / "o.tsv")
    assert (row["len1"], row["len2"]) == ("900", "80") and 0.0 <= float(row["probability"]) <= 1


def test_predict_out_that_is_a_folder_is_refused(run_dir, tiny_backbone_dir, tmp_path):
    (tmp_path / "p.tsv").write_text("seq1\tseq2\nACGTACGT\tACGTTCGT\n")
    result = _invoke(
        "predict", run_dir, "--backbone", tiny_backbone_dir, "--pairs", tmp_path / "p.tsv",
        "--out", tmp_path, "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 1 and "is a folder" in result.output, result.output


def test_predict_with_another_backbone_is_refused_before_embedding(run_dir, tmp_path, monkeypatch):
    from embedhead.backbone.presets import write_random_checkpoint
    from embedhead.embed import run as embed_module

    other = write_random_checkpoint(
        tmp_path / "other", seed=11, d_model=16, n_layer=2, d_inner=32, max_seq_len=512
    )
    calls = []
    real = embed_module.embed_sequences
    monkeypatch.setattr(
        embed_module, "embed_sequences", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    (tmp_path / "p.tsv").write_text("seq1\tseq2\nACGTACGT\tACGTTCGT\n")
    result = _invoke(
        "predict", run_dir, "--backbone", other, "--pairs", tmp_path / "p.tsv",
        "--out", tmp_path / "o.tsv", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 1 and "nothing was embedded" in result.output, result.output
    assert calls == [] and not (tmp_path / "o.tsv").exists()
