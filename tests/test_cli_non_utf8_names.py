"""File names that are not valid UTF-8 (``b'bad\\xff.maf'``, created with os.fsencode) are a
clear error naming the file with ``\\xNN`` escapes, exit 1, nothing written: prepare, embed,
predict, simulate (every command goes through the CLI's one argument check)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from embedhead.cli.main import main
from embedhead.errors import InputError
from embedhead.fileio import require_utf8_name

BAD = b"bad\xff"


def _bad_copy(src: Path, folder: Path, suffix: str) -> str:
    """Copy ``src`` to ``folder/bad\\xff<suffix>``; returns the name as the shell passes it."""
    target = os.path.join(os.fsencode(folder), BAD + suffix.encode())
    shutil.copyfile(src, target)
    return os.fsdecode(target)


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _assert_refused(result, shown: str) -> None:
    assert result.exit_code == 1, result.output
    assert "file name is not valid UTF-8" in result.output
    assert shown in result.output and "Traceback" not in result.output


def test_require_utf8_name_accepts_utf8_and_refuses_the_rest():
    require_utf8_name("genome-é.maf")
    require_utf8_name(b"plain.fa")
    with pytest.raises(InputError, match=r"bad\\xff\.maf: file name is not valid UTF-8"):
        require_utf8_name(b"bad\xff.maf")
    with pytest.raises(InputError, match=r"bad\\xff\.maf"):
        require_utf8_name(os.fsdecode(b"bad\xff.maf"))  # the str sys.argv holds


def test_prepare_embed_predict_simulate_refuse_non_utf8_names(
    tmp_path, tiny_dataset_dir, tiny_backbone_dir, heads_tiny_store
):
    fasta = _bad_copy(tiny_dataset_dir / "sequences.fa.gz", tmp_path, ".fa.gz")
    maf = tmp_path / "ok.maf"
    maf.write_text("##maf version=1\n\na score=10\ns hg38.chr1 0 4 + 100 ACGT\n"
                   "s galGal6.chr1 0 4 + 100 ACGT\n\n")  # fmt: skip
    bad_maf = _bad_copy(maf, tmp_path, ".maf")
    maf.unlink()
    out = tmp_path / "out"

    _assert_refused(_run(["prepare", bad_maf, "--out", str(out)]), r"bad\xff.maf")
    _assert_refused(
        _run(["embed", fasta, "--backbone", str(tiny_backbone_dir), "--store",
              str(tmp_path / "s.zarr"), "--device", "cpu", "--quiet"]),
        r"bad\xff.fa.gz",
    )  # fmt: skip
    _assert_refused(
        _run(["embed", str(tiny_dataset_dir), "--backbone", str(tiny_backbone_dir), "--store",
              os.fsdecode(os.path.join(os.fsencode(tmp_path), BAD + b".zarr")), "--device",
              "cpu", "--quiet"]),
        r"bad\xff.zarr",
    )  # fmt: skip
    _assert_refused(
        _run(["predict", str(tmp_path), "--backbone", str(tiny_backbone_dir), "--fasta", fasta,
              fasta, "--out", str(tmp_path / "p.tsv"), "--device", "cpu"]),
        r"bad\xff.fa.gz",
    )  # fmt: skip
    _assert_refused(
        _run(["simulate", "--out", os.fsdecode(os.path.join(os.fsencode(tmp_path), BAD + b".maf"))
              .replace("bad", "sim"), "--blocks", "2"]),
        r"sim\xff.maf",
    )  # fmt: skip
    assert sorted(os.listdir(os.fsencode(tmp_path))) == sorted(
        [BAD + b".fa.gz", BAD + b".maf"]
    )  # nothing written
