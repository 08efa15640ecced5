"""``embedhead init-backbone`` and ``embedhead backbone-info``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from embedhead.backbone import PRESETS, load_backbone
from embedhead.cli.main import main


def test_init_backbone_then_info(tmp_path):
    runner = CliRunner()
    out = tmp_path / "bb"
    result = runner.invoke(main, ["init-backbone", "--preset", "tiny-1k", "--seed", "4", str(out)])
    assert result.exit_code == 0, result.output
    assert "random-tiny-1k" in result.output and "RANDOM" in result.output
    model = load_backbone(out)
    assert model.config.d_model == PRESETS["tiny-1k"].d_model
    result = runner.invoke(main, ["backbone-info", str(out)])
    assert result.exit_code == 0, result.output
    assert model.identity.key in result.output and "436,096 parameters" in result.output
    result = runner.invoke(main, ["backbone-info", str(out), "--json"])
    assert json.loads(result.output)["weight_hash"] == model.identity.weight_hash


def test_init_backbone_errors_exit_non_zero(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["init-backbone", "--preset", "huge", str(tmp_path / "x")])
    assert result.exit_code == 1 and "unknown preset 'huge'" in result.output
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    result = runner.invoke(main, ["init-backbone", str(tmp_path / "full")])
    assert result.exit_code == 1 and "not an empty folder" in result.output


def test_backbone_info_of_a_missing_source(tmp_path):
    result = CliRunner().invoke(main, ["backbone-info", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "no such checkpoint" in result.output
