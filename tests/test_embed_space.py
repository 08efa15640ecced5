"""The store-size estimate and the free-space check of ``embed`` (issue 11)."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest
from click.testing import CliRunner

from embedhead.cli.main import main
from embedhead.dataset import load_dataset
from embedhead.embed import space
from embedhead.embed.space import INDEX_BYTES_PER_SEQUENCE, estimate_store
from embedhead.errors import ConfigError


def test_estimate_counts_unique_positions(tiny_dataset_dir):
    seqs = dict(load_dataset(tiny_dataset_dir).sequences())
    positions = sum(len(s) for s in seqs.values())
    est = estimate_store(tiny_dataset_dir, 16, "float16")
    assert (est.n_sequences, est.n_positions) == (len(seqs), positions)
    assert est.bytes_total == positions * 16 * 2 + len(seqs) * (16 * 2 + INDEX_BYTES_PER_SEQUENCE)
    pooled = estimate_store(tiny_dataset_dir, 16, "float32", pooled_only=True)
    assert pooled.bytes_total == len(seqs) * (16 * 4 + INDEX_BYTES_PER_SEQUENCE)
    short = estimate_store(tiny_dataset_dir, 16, "float16", max_length=30)
    assert short.n_positions == sum(min(len(s), 30) for s in seqs.values())
    some = set(list(seqs)[:10])
    part = estimate_store(tiny_dataset_dir, 16, "float16", present=some.__contains__)
    assert part.n_missing == len(seqs) - 10 and part.bytes_needed < part.bytes_total
    with pytest.raises(ConfigError, match="dtype"):
        estimate_store(tiny_dataset_dir, 16, "int8")


def test_embed_prints_the_size_and_refuses_without_space(
    tiny_dataset_dir, tiny_backbone_dir, tmp_path, monkeypatch
):
    args = ["embed", str(tiny_dataset_dir), "--backbone", str(tiny_backbone_dir),
            "--device", "cpu"]  # fmt: skip
    est = estimate_store(tiny_dataset_dir, 16, "float16")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6, est.bytes_total - 1))
    target = tmp_path / "small.zarr"
    result = CliRunner().invoke(main, [*args, "--store", str(target)])
    assert result.exit_code != 0 and "not enough free space" in result.output
    assert "--no-space-check" in result.output and not target.exists()
    result = CliRunner().invoke(main, [*args, "--store", str(target), "--no-space-check"])
    assert result.exit_code == 0, result.output
    assert "store size needed" in result.output and target.exists()
    # the store now holds everything: nothing more is needed, so the check passes
    result = CliRunner().invoke(main, [*args, "--store", str(target)])
    assert result.exit_code == 0, result.output
    info = CliRunner().invoke(
        main, ["store", "info", str(target), "--dataset", str(tiny_dataset_dir)]
    )
    assert info.exit_code == 0 and "store size needed" in info.output
    assert space.format_bytes(est.bytes_total) in info.output
