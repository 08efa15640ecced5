"""Fields longer than the csv module's default limit (131,072 characters) are read, not crashed on.

Each check runs in a fresh interpreter: the limit is process-wide state, and another test in the
same worker may already have raised it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LONG = 140_000  # > 131,072


def run_fresh(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def long_csv(tmp_path: Path) -> Path:
    seq = "ACGT" * (LONG // 4)
    path = tmp_path / "pairs.csv"
    path.write_text(f"0,{LONG * 5},{seq},{seq}\n")  # a valid headerless thesis CSV
    return path


def test_headerless_thesis_csv_with_a_long_line_is_detected_and_parsed(long_csv: Path) -> None:
    out = run_fresh(
        f"""
        from embedhead.alignments.detect import detect_format
        from embedhead.alignments.reader import read_alignments
        blocks = list(read_alignments({str(long_csv)!r}))
        print(detect_format({str(long_csv)!r}), len(blocks), blocks[0].rows[0].size)
        """
    )
    assert out == f"csv 1 {LONG}"


def test_predict_pairs_table_with_a_long_sequence_is_read(tmp_path: Path) -> None:
    seq = "ACGT" * (LONG // 4)
    path = tmp_path / "pairs.tsv"
    path.write_text(f"seq1\tseq2\n{seq}\t{seq[:100]}\n")
    out = run_fresh(
        f"""
        from embedhead.heads.predict import read_pairs_input
        pairs = read_pairs_input({str(path)!r})
        print(len(pairs), len(pairs[0].seq1), len(pairs[0].seq2))
        """
    )
    assert out == f"1 {LONG} 100"
