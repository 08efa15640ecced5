import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from embedhead.dataset import load_dataset
from embedhead.errors import IncompatibleError, InputError
from embedhead.heads.config import HeadConfig, TrainConfig
from embedhead.heads.evaluate import evaluate_run
from embedhead.heads.metrics import classification_metrics, quick_metrics, regression_metrics
from embedhead.heads.run import jsonable, load_run
from embedhead.heads.train import train_head

HEAD = HeadConfig(d_model=16, conv_channels=8, kernel_size=3, hidden_sizes=(16, 8))


@pytest.fixture(scope="module")
def trained(tiny_dataset_dir, heads_tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    config = TrainConfig(epochs=3, batch_size=8, device="cpu", seed=1)
    train_head(tiny_dataset_dir, heads_tiny_store, config, out, head=HEAD)
    return out


@pytest.mark.parametrize("split", ["val", "test"])
def test_evaluate_reproduces_the_metrics_stored_by_train(
    trained, tiny_dataset_dir, heads_tiny_store, split
):
    stored = json.loads((trained / "run.json").read_text())["metrics"][split]
    again = evaluate_run(trained, tiny_dataset_dir, heads_tiny_store, split, device="cpu")
    assert {k: v for k, v in jsonable(again).items() if k in stored} == stored
    assert {"by_identity", "by_length", "reliability"} <= set(again)  # evaluate's breakdown
    streamed = evaluate_run(
        trained, tiny_dataset_dir, heads_tiny_store, split, device="cpu", loader="stream"
    )
    assert jsonable(streamed) == jsonable(again)


def test_run_records_store_identity_and_options(trained, heads_tiny_store):
    from embedhead.store import open_store

    info = load_run(trained).info
    with open_store(heads_tiny_store) as store:
        assert info["store"]["identity"] == store.identity
        assert info["store"]["options"]["dtype"] == store.attrs["dtype"]


def test_cross_dataset_evaluation(trained, tmp_path, tiny_backbone_dir):
    """A head evaluated on another dataset (its own store built by the same backbone)."""
    from conftest import write_tiny_dataset

    from embedhead.embed.run import EmbedConfig, embed_dataset

    other = write_tiny_dataset(tmp_path / "other", seed=5)
    store = tmp_path / "other.zarr"
    embed_dataset(other, store, tiny_backbone_dir, EmbedConfig(progress=False, device="cpu"))
    metrics = evaluate_run(trained, other, store, "train", device="cpu")
    assert metrics["n"] == len(load_dataset(other).split("train"))
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_store_of_another_backbone_is_refused(trained, tiny_dataset_dir, tmp_path):
    from embedhead.backbone.presets import write_random_checkpoint
    from embedhead.embed.run import EmbedConfig, embed_dataset

    other_bb = write_random_checkpoint(  # the fixture's shape, another seed
        tmp_path / "bb",
        preset="tiny-1k",
        seed=9,
        d_model=16,
        n_layer=2,
        d_inner=32,
        max_seq_len=512,
    )
    store = tmp_path / "other.zarr"
    embed_dataset(tiny_dataset_dir, store, other_bb, EmbedConfig(progress=False, device="cpu"))
    with pytest.raises(IncompatibleError, match=r"other\.zarr"):
        evaluate_run(trained, tiny_dataset_dir, store, device="cpu")


def test_not_a_run_folder(tmp_path, tiny_dataset_dir, heads_tiny_store):
    with pytest.raises(InputError, match="not a run folder"):
        evaluate_run(tmp_path / "nope", tiny_dataset_dir, heads_tiny_store)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(InputError, match=r"lacks head\.safetensors"):
        evaluate_run(tmp_path / "half", tiny_dataset_dir, heads_tiny_store)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=1, max_size=40))
def test_classification_metrics_match_sklearn(rows):
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    pred = (p >= 0.5).astype(int)
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    # undefined (no predicted positives / no positives) is NaN, never 0 (issue 14 item 10)
    precision = skm.precision_score(y, pred, zero_division=np.nan)
    recall = skm.recall_score(y, pred, zero_division=np.nan)
    assert m["precision"] == pytest.approx(precision, nan_ok=True)
    assert m["recall"] == pytest.approx(recall, nan_ok=True)
    f1 = skm.f1_score(y, pred) if not (math.isnan(precision) or math.isnan(recall)) else np.nan
    assert m["f1"] == pytest.approx(f1, nan_ok=True)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    if len(set(y)) == 2:
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    else:
        assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.5, 5.0])
    m = regression_metrics(y, p)
    assert m["mse"] == pytest.approx(np.mean((y - p) ** 2))
    assert m["rmse"] == pytest.approx(math.sqrt(m["mse"]))
    assert m["mae"] == pytest.approx(np.mean(np.abs(y - p)))
    assert m["r2"] == pytest.approx(skm.r2_score(y, p))
    assert m["pearson"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    assert m["spearman"] == pytest.approx(1.0)
    assert math.isnan(regression_metrics(y, np.ones(4))["pearson"])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.1, 0.4, 0.5, 0.7, 0.9])), max_size=30)
)
def test_quick_metrics_equal_sklearn(rows):
    y = np.array([r[0] for r in rows], dtype=float)
    p = np.array([r[1] for r in rows])
    quick = quick_metrics("classification", y, p)
    if len(set(y)) == 2:  # ties included: scores come from a small set
        assert quick["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    else:
        assert math.isnan(quick["roc_auc"])
    if rows:
        assert quick["accuracy"] == pytest.approx(skm.accuracy_score(y, p >= 0.5))
        reg = quick_metrics("regression", p, p + y)
        full = regression_metrics(p, p + y)
        for key in ("mse", "r2", "pearson"):
            assert reg[key] == pytest.approx(full[key], nan_ok=True)


def test_repeat_folders_skip_copies_that_are_not_seed_runs(tmp_path):
    from embedhead.heads.run import SUMMARY_FILE, repeat_run_dirs

    for name in ("seed-10", "seed-2", "seed-2-old", "seed-x"):
        (tmp_path / name).mkdir()
    (tmp_path / SUMMARY_FILE).write_text("{}\n")
    assert [p.name for p in repeat_run_dirs(tmp_path)] == ["seed-2", "seed-10"]


def _with_run_json(trained, tmp_path, edit):
    """A copy of the trained run whose run.json is ``edit(original)``."""
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(trained, folder)
    info = json.loads((trained / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps(edit(info)))
    return folder


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda info: [info], "must hold a JSON object, not a list"),
        (lambda info: {**info, "store": ["x"]}, "store must be an object"),
        (lambda info: {**info, "store": {**info["store"], "identity": "x"}}, "store.identity"),
        (
            lambda info: {
                **info,
                "store": {**info["store"], "identity": {**info["store"]["identity"], "config": 3}},
            },
            "store.identity.config must be an object",
        ),
        (lambda info: {**info, "store": {**info["store"], "options": [1]}}, "store.options"),
        (lambda info: {**info, "metrics": [1, 2]}, "metrics must be an object"),
        (lambda info: {**info, "metrics": {"test": "good"}}, "metrics.test must be an object"),
        (lambda info: {**info, "threshold": "0.5"}, "threshold must be an object"),
        (lambda info: {**info, "threshold": {"value": "x"}}, "threshold.value must be a number"),
        (lambda info: {**info, "target_scale": {"mean": "0"}}, "target_scale"),
    ],
)
def test_malformed_run_json_is_a_clear_error_naming_the_file_and_key(
    trained, tmp_path, tiny_dataset_dir, heads_tiny_store, edit, message
):
    folder = _with_run_json(trained, tmp_path, edit)
    with pytest.raises(InputError, match=message) as info:
        load_run(folder)
    assert str(folder / "run.json") in str(info.value)
    with pytest.raises(InputError, match=message):
        evaluate_run(folder, tiny_dataset_dir, heads_tiny_store, device="cpu")
