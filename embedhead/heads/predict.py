"""Score new pairs end to end with a trained head: sequences in, probabilities (or scores) out.

``predict_pairs(run_dir, backbone_source, pairs, store_path=None)``:

1. normalises the sequences and names them by content (``sequence_id``);
2. embeds, through :func:`embedhead.embed.run.embed_dataset`, only the sequences the store does
   not hold yet: into ``store_path`` when given (it is a cache: new sequences are appended, with
   the store's own dtype/truncation options), else into a temporary store removed afterwards;
3. refuses a store whose backbone differs from the head's (IncompatibleError);
4. runs the head: one :class:`PredictionRow` per pair, in input order.

Inputs (``read_pairs_input``):

* a ``pairs.tsv[.gz]`` written by ``prepare`` (header = the dataset's pair columns): seq1/seq2 are
  sequence ids, looked up in ``sequences.fa.gz`` of the same folder; ``label`` is carried over;
* a simple TSV of sequences: a header naming ``seq1`` and ``seq2`` columns (optional ``pair_id``
  and ``label`` columns; others ignored), or no header and exactly two columns seq1, seq2;
* two FASTA files (``read_fasta_pairs``): record i of the first paired with record i of the second.

Output TSV (``write_predictions``): ``pair_id seq1_id seq2_id len1 len2 probability predicted``
(``predicted``: 1 when the probability reaches the run's decision threshold, chosen on the
training validation split; regression heads write ``score`` in ``norm_score`` units and no
``predicted``), plus ``label`` when every input pair had one.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedhead.dataset import (
    PAIR_COLUMNS,
    SEQUENCES_FILE,
    iter_fasta,
    normalise_sequence,
    parse_pair_row,
    sequence_id,
)
from embedhead.embed.run import EmbedConfig, embed_dataset
from embedhead.errors import InputError
from embedhead.fileio import allow_long_csv_fields, atomic_file
from embedhead.heads.data import PairSpec, StoreReader, load_pairs, resolve_device
from embedhead.heads.evaluate import check_store_matches
from embedhead.heads.run import LoadedRun, load_run
from embedhead.heads.train import predict_source
from embedhead.processes import pid_running
from embedhead.store import open_store


@dataclass(frozen=True)
class PairInput:
    """One pair to score: a name, both sequences (normalised) and an optional known label."""

    pair_id: str
    seq1: str
    seq2: str
    label: int | None = None


@dataclass(frozen=True)
class PredictionRow:
    """One output row; ``value`` is a probability or a score in original units."""

    pair_id: str
    seq1_id: str
    seq2_id: str
    len1: int
    len2: int
    value: float
    label: int | None = None


def _normalised(text: str, path: str | Path | None, line: int | None, what: str) -> str:
    try:
        seq = normalise_sequence(text.strip())
    except ValueError as exc:
        raise InputError(f"{what}: {exc}", path, line) from exc
    if not seq:
        raise InputError(f"{what} is empty", path, line)
    return seq


def _open_text(path: Path) -> Any:
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def read_pairs_input(path: str | Path) -> list[PairInput]:
    """Pairs from a prepare pairs table or a simple seq1/seq2 TSV (see module docstring)."""
    path = Path(path)
    allow_long_csv_fields()
    try:
        with _open_text(path) as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read pairs: {exc}", path) from exc
    rows = [r for r in rows if r and any(field.strip() for field in r)]
    if not rows:
        raise InputError("no pairs in file", path)
    header = [h.strip() for h in rows[0]]
    if tuple(header) == PAIR_COLUMNS:
        return _from_dataset_table(path, rows[1:])
    if "seq1" in header and "seq2" in header:
        col = {name: header.index(name) for name in header}
        body, first_line = rows[1:], 2
    elif len(header) == 2:
        col, body, first_line = {"seq1": 0, "seq2": 1}, rows, 1
    else:
        raise InputError(
            "expected a prepare pairs table, a header with seq1 and seq2 columns, "
            f"or two columns of sequences; found {len(header)} columns",
            path,
            1,
        )
    out: list[PairInput] = []
    for n, row in enumerate(body):
        line = first_line + n
        if len(row) < max(col.values()) + 1:
            raise InputError(f"expected {len(header)} fields, found {len(row)}", path, line)
        label = None
        if "label" in col and row[col["label"]].strip():
            label = _parse_label(row[col["label"]], path, line)
        out.append(
            PairInput(
                pair_id=row[col["pair_id"]].strip() if "pair_id" in col else f"pair{n + 1}",
                seq1=_normalised(row[col["seq1"]], path, line, "seq1"),
                seq2=_normalised(row[col["seq2"]], path, line, "seq2"),
                label=label,
            )
        )
    if not out:
        raise InputError("no pairs in file", path)
    return out


def _parse_label(text: str, path: Path, line: int) -> int:
    if text.strip() not in ("0", "1"):
        raise InputError(f"label must be 0 or 1, not {text!r}", path, line)
    return int(text)


def _from_dataset_table(path: Path, body: list[list[str]]) -> list[PairInput]:
    records = [parse_pair_row(row, path, line) for line, row in enumerate(body, start=2)]
    if not records:
        raise InputError("no pairs in file", path)
    fasta = path.parent / SEQUENCES_FILE
    if not fasta.is_file():
        raise InputError(f"a prepare pairs table needs {SEQUENCES_FILE} beside it", path)
    needed = {r.seq1 for r in records} | {r.seq2 for r in records}
    seqs = {name: seq for name, seq in iter_fasta(fasta) if name in needed}
    lacking = sorted(needed - set(seqs))
    if lacking:
        raise InputError(f"{len(lacking)} sequence ids not found (e.g. {lacking[0]})", fasta)
    return [
        PairInput(
            r.pair_id,
            _normalised(seqs[r.seq1], fasta, None, r.seq1),
            _normalised(seqs[r.seq2], fasta, None, r.seq2),
            r.label,
        )
        for r in records
    ]


def read_fasta_pairs(first: str | Path, second: str | Path) -> list[PairInput]:
    """Record i of ``first`` paired with record i of ``second``; names joined as ``a|b``."""
    a, b = list(iter_fasta(first)), list(iter_fasta(second))
    if len(a) != len(b):
        raise InputError(
            f"FASTA files hold {len(a)} and {len(b)} records; pairing by order needs equal counts",
            second,
        )
    if not a:
        raise InputError("no FASTA records", first)
    return [
        PairInput(f"{n1}|{n2}", _normalised(s1, first, None, n1), _normalised(s2, second, None, n2))
        for (n1, s1), (n2, s2) in zip(a, b, strict=True)
    ]


def _embed_missing(
    sequences: dict[str, str],
    store_path: Path,
    backbone_source: str | Path,
    device: str,
    options: dict[str, Any],
) -> None:
    """Embed the given id -> sequence map into ``store_path`` (skipping ids already there)."""

    kwargs = {
        k: options[k] for k in ("dtype", "precision", "max_length", "pooled_only") if k in options
    }
    config = EmbedConfig(
        device=device,
        progress=False,
        command="embedhead predict",
        expect_backbone_key=options.get("backbone_key"),  # the head's backbone, checked first
        **kwargs,
    )
    with temp_dir() as tmp:
        fasta = tmp / "missing.fa"
        with open(fasta, "w") as fh:
            for sid, seq in sequences.items():
                fh.write(f">{sid}\n{seq}\n")
        embed_dataset(fasta, store_path, backbone_source, config)


def _store_options(store_path: Path, run: LoadedRun) -> dict[str, Any]:
    """Options new embeddings must use: the existing store's, else those of the run's store."""

    if store_path.exists():
        with open_store(store_path) as store:
            check_store_matches(run, store, store_path)
            return dict(store.attrs)
    return dict(run.info.get("store", {}).get("options", {}))


def predict_pairs(
    run_dir: str | Path,
    backbone_source: str | Path,
    pairs: Sequence[tuple[str, str]] | Sequence[PairInput] | str | Path,
    store_path: str | Path | None = None,
    *,
    device: str = "auto",
    max_length: int | None = None,
) -> list[PredictionRow]:
    """Score pairs with the head of ``run_dir`` (see module docstring).

    ``max_length`` truncates sequences the store lacks to that many nucleotides before embedding
    them (``embed --max-length``); an existing store must have been built with the same value.
    """

    run = load_run(run_dir)
    inputs = _as_inputs(pairs)
    sequences = {sequence_id(p.seq1): p.seq1 for p in inputs}
    sequences.update({sequence_id(p.seq2): p.seq2 for p in inputs})
    with contextlib.ExitStack() as stack:
        if store_path is None:  # a temporary store, removed on every exit path
            path = stack.enter_context(temp_dir()) / "predict.zarr"
        else:
            path = Path(store_path)
        options = _store_options(path, run)
        if max_length is not None:
            options["max_length"] = max_length
        missing = dict(sequences)
        if path.exists():
            with open_store(path) as store:
                missing = {k: v for k, v in sequences.items() if k not in store}
        if missing:
            _embed_missing(missing, path, backbone_source, device, options)
        with open_store(path) as store:
            return _score(run, store, inputs, path, device)


TEMP_PREFIX = "embedhead-predict-"
OWNER_FILE = "owner"
"""Inside each temporary folder of ``predict``: ``<host> <pid>`` of the process using it."""
_ORPHAN_AGE_S = 3600.0


@contextmanager
def temp_dir() -> Iterator[Path]:
    """A private temporary folder (``$TMPDIR/embedhead-predict-*``), removed on every exit;
    folders left by killed runs (owner pid gone on this host, or no owner file and an hour old)
    are removed first."""
    remove_stale_temp_dirs()
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    try:
        (tmp / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temp_dirs() -> list[Path]:
    """Remove the temporary folders of ``predict`` runs that died; returns those removed."""
    removed = []
    host = socket.gethostname()
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            owner = (folder / OWNER_FILE).read_text().split()
        except FileNotFoundError:
            owner = []
        except OSError:
            continue
        if len(owner) == 2 and owner[0] == host and owner[1].isdigit():
            stale = not pid_running(int(owner[1]))
        elif len(owner) == 2:
            stale = False  # another host's (shared /tmp): never ours to judge
        else:
            try:
                stale = time.time() - folder.stat().st_mtime > _ORPHAN_AGE_S
            except OSError:
                continue
        if stale and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _as_inputs(
    pairs: Sequence[tuple[str, str]] | Sequence[PairInput] | str | Path,
) -> list[PairInput]:
    if isinstance(pairs, str | Path):
        return read_pairs_input(pairs)
    out: list[PairInput] = []
    items: Sequence[Any] = pairs
    for n, item in enumerate(items, start=1):
        if isinstance(item, PairInput):
            out.append(item)
        else:
            s1, s2 = item
            seq1 = _normalised(s1, None, None, f"pair {n} seq1")
            seq2 = _normalised(s2, None, None, f"pair {n} seq2")
            out.append(PairInput(f"pair{n}", seq1, seq2))
    if not out:
        raise InputError("no pairs to score")
    return out


def _score(
    run: LoadedRun, store: StoreReader, inputs: list[PairInput], where: Path, device: str
) -> list[PredictionRow]:
    check_store_matches(run, store, where)
    specs = [
        PairSpec(p.pair_id, sequence_id(p.seq1), sequence_id(p.seq2), 0.0, p.label or 0)
        for p in inputs
    ]
    dev = resolve_device(device)
    data = load_pairs(
        store,
        {"predict": specs},
        kind=run.head_config.kind,
        task=run.head_config.task,
        device=dev,
        store_path=where,
    )
    outputs, _ = predict_source(run.head.to(dev), data["predict"], run.train_config.eval_batch_size)
    return [
        PredictionRow(p.pair_id, s.seq1, s.seq2, len(p.seq1), len(p.seq2), float(v), p.label)
        for p, s, v in zip(inputs, specs, outputs, strict=True)
    ]


def write_predictions(
    rows: Sequence[PredictionRow],
    out_path: str | Path,
    task: str,
    threshold: float | None = None,
) -> Path:
    """Write the output TSV atomically (temp file renamed at the end); a classification
    ``threshold`` adds the ``predicted`` column."""
    out = Path(out_path)
    value_name = "probability" if task == "classification" else "score"
    cut = threshold if task == "classification" else None
    with_label = bool(rows) and all(r.label is not None for r in rows)
    header = ["pair_id", "seq1_id", "seq2_id", "len1", "len2", value_name]
    header += ["predicted"] if cut is not None else []
    header += ["label"] if with_label else []
    with atomic_file(out, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for r in rows:
            value = "" if math.isnan(r.value) else f"{r.value:.6g}"
            fields = [r.pair_id, r.seq1_id, r.seq2_id, str(r.len1), str(r.len2), value]
            if cut is not None:
                fields.append("" if math.isnan(r.value) else str(int(r.value >= cut)))
            writer.writerow(fields + ([str(r.label)] if with_label else []))
    return out


def predict_to_tsv(
    run_dir: str | Path,
    backbone_source: str | Path,
    out_path: str | Path,
    *,
    pairs_path: str | Path | None = None,
    fasta: tuple[str | Path, str | Path] | None = None,
    store_path: str | Path | None = None,
    device: str = "auto",
    max_length: int | None = None,
) -> list[PredictionRow]:
    """``embedhead predict``: read pairs (``pairs_path`` or two FASTA files), score, write TSV."""
    if Path(out_path).is_dir():  # refused before any embedding work
        raise InputError("is a folder; --out takes the output TSV's file path", out_path)
    if pairs_path is not None and fasta is None:
        inputs = read_pairs_input(pairs_path)
    elif fasta is not None and pairs_path is None:
        inputs = read_fasta_pairs(*fasta)
    else:
        raise InputError("give either a pairs table (--pairs) or two FASTA files (--fasta)")
    rows = predict_pairs(
        run_dir, backbone_source, inputs, store_path, device=device, max_length=max_length
    )
    run = load_run(run_dir)
    write_predictions(rows, out_path, run.head_config.task, run.threshold)
    return rows
