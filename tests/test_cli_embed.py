"""``embedhead embed`` and ``embedhead store info|verify|merge`` through click's CliRunner."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from embedhead.cli.main import main
from embedhead.store import open_store
from tests.conftest import chunk_file


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory, tiny_dataset_dir, tiny_backbone_dir):
    path = tmp_path_factory.mktemp("cli") / "s.zarr"
    result = CliRunner().invoke(
        main,
        ["embed", str(tiny_dataset_dir), "--backbone", str(tiny_backbone_dir), "--store",
         str(path), "--device", "cpu", "--batch-tokens", "1000", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return path


def test_embed_then_info(cli_store):
    result = CliRunner().invoke(main, ["store", "info", str(cli_store)])
    assert result.exit_code == 0, result.output
    assert "sequences      40" in result.output
    assert "float16, d_model 16" in result.output
    assert "per nucleotide" in result.output
    assert "RANDOM weights" in result.output
    with open_store(cli_store) as store:
        assert f"positions      {int(store.lengths().sum())}" in result.output
        assert store.attrs["command"].startswith("embedhead embed ")


def test_rerun_reports_everything_already_stored(cli_store, tiny_dataset_dir, tiny_backbone_dir):
    result = CliRunner().invoke(
        main,
        ["embed", str(tiny_dataset_dir), "--backbone", str(tiny_backbone_dir), "--store",
         str(cli_store), "--device", "cpu", "--batch-tokens", "1000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "embedded 0 in 0 backbone calls" in result.output
    assert "40 already stored" in result.output


def test_verify_ok_then_detects_problems(cli_store, tmp_path, tiny_dataset_dir):
    runner = CliRunner()
    ok = runner.invoke(
        main, ["store", "verify", str(cli_store), "--dataset", str(tiny_dataset_dir)]
    )
    assert ok.exit_code == 0, ok.output
    assert "OK (40 sequences checked)" in ok.output

    fasta = tmp_path / "more.fa"
    fasta.write_text(">not_there\nACGTACGT\n")
    missing = runner.invoke(main, ["store", "verify", str(cli_store), "--dataset", str(fasta)])
    assert missing.exit_code == 1
    assert "not_there: missing from the store" in missing.output

    import shutil

    broken = tmp_path / "broken.zarr"
    shutil.copytree(cli_store, broken)
    with open_store(broken) as store:
        victim, offset = store.ids()[5], int(store.offsets()[5])
    positions = zarr.open_group(str(broken), mode="r+")["positions"]
    positions[offset + 1] = np.full(positions.shape[1], np.nan, dtype=np.float16)
    # record the rewritten chunk's crc32c as a writer would (else the chunk identity check
    # reports the chunk zarr rewrote before verify reads its values)
    k = (offset + 1) // positions.chunks[0]
    trailer = chunk_file(broken, "positions", k).read_bytes()[-4:]
    zarr.open_group(str(broken), mode="r+")["chunk_crcs"][k] = int.from_bytes(trailer, "little")
    bad = runner.invoke(main, ["store", "verify", str(broken)])
    assert bad.exit_code == 1
    assert f"{victim}: non-finite per-position embeddings" in bad.output


def test_other_backbone_fails_cleanly(cli_store, tmp_path, tiny_dataset_dir):
    from embedhead.backbone.presets import write_random_checkpoint

    other = write_random_checkpoint(
        tmp_path / "other", seed=3, d_model=16, n_layer=2, d_inner=32, max_seq_len=512
    )
    result = CliRunner().invoke(
        main,
        ["embed", str(tiny_dataset_dir), "--backbone", str(other), "--store", str(cli_store),
         "--device", "cpu", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "was built by backbone" in result.output


def test_bad_store_suffix_and_merge_without_shards(tmp_path, tiny_dataset_dir, tiny_backbone_dir):
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["embed", str(tiny_dataset_dir), "--backbone", str(tiny_backbone_dir), "--store",
         str(tmp_path / "s.npy"), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert ".zarr" in result.output and "s.npy" in result.output
    merged = runner.invoke(main, ["store", "merge", str(tmp_path / "none.zarr")])
    assert merged.exit_code == 0
    assert "merged 0 sequences" in merged.output


def test_info_on_a_non_store_fails_cleanly(tmp_path):
    folder = tmp_path / "x.zarr"
    folder.mkdir()
    result = CliRunner().invoke(main, ["store", "info", str(folder)])
    assert result.exit_code == 1
    assert "x.zarr" in result.output


def test_store_of_the_wrong_kind_of_path_is_named(tmp_path, tiny_dataset_dir, tiny_backbone_dir):
    runner = CliRunner()
    (tmp_path / "file.zarr").write_text("not a folder")
    (tmp_path / "folder.h5").mkdir()
    for name, message in (("file.zarr", "is a file"), ("folder.h5", "is a folder")):
        store = str(tmp_path / name)
        info = runner.invoke(main, ["store", "info", store])
        assert info.exit_code == 1 and message in info.output and name in info.output
        embed = runner.invoke(
            main,
            ["embed", str(tiny_dataset_dir), "--backbone", str(tiny_backbone_dir), "--store",
             store, "--device", "cpu", "--quiet"],
        )  # fmt: skip
        assert embed.exit_code == 1 and message in embed.output
        assert "Traceback" not in embed.output
