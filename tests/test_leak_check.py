"""prepare prints the length/GC/k-mer baseline AUCs of the dataset it wrote (leak check)."""

from __future__ import annotations

from click.testing import CliRunner

from embedhead.cli.main import main
from embedhead.experiments.baselines import leak_aucs


def test_prepare_prints_the_baseline_aucs_of_what_it_wrote(simulated_maf, tmp_path):
    runner = CliRunner()
    args = ["prepare", str(simulated_maf), "--reference", "hg38", "--query", "galGal6"]
    out = tmp_path / "ds"
    thesis = ["--negatives", "adjacent", "--length-match", "0"]
    result = runner.invoke(main, [*args, "--out", str(out), *thesis], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if "leak check" in x]
    aucs = leak_aucs(out)
    assert set(aucs) == {"length", "gc", "kmer"}
    expected = ", ".join(f"{name} {auc:.3f}" for name, auc in aucs.items())
    assert line.endswith(expected)
    assert ("length alone separates" in result.output) == (aucs["length"] >= 0.8)
    quiet = runner.invoke(main, [*args, "--out", str(tmp_path / "q"), "--no-leak-check"])
    assert quiet.exit_code == 0 and "leak check" not in quiet.output
