"""``embedhead prepare``: alignment files in, a pair dataset folder out.

In: one or more alignment files (MAF, AXT or the thesis CSV; plain, gzip or bzip2; format
detected by content). Out: a dataset folder (see :mod:`embedhead.dataset`)::

    sequences.fa.gz   unique normalised sequences, named by content hash
    pairs.tsv.gz      positives (one per aligned window) then negatives, with their split
    dataset.json      command line, input SHA-256, parameters, counts per split and label

Flow: blocks are streamed one at a time (parse -> pick reference/query rows -> plan windows of
at most ``chunk_size`` projected columns -> cut and re-score each window exactly; with
``max_pairs`` a window is scored only when the reservoir still holds it at the end, and cut
then too when its block is at most twice ``chunk_size`` columns, else when the reservoir takes
it); each new
sequence is written to ``sequences.fa.gz`` at once and only its id is kept, so memory grows
with the pair table (one small record per pair) and not with the alignment text. Once all
positives are known they are split (:mod:`.splits`), then negatives are drawn within
each split (:mod:`.negatives`), length-matched by default (``length_match``, so that
length alone hardly separates the labels; 0 ignores lengths); a split whose
negatives fall short of ``negative_ratio`` is counted (``n_negatives_missing``) and warned
about. Everything is written into a temporary folder beside ``out_dir`` that is renamed at the
end; on any error it is removed, so no partial dataset is ever left behind.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from embedhead import __version__
from embedhead.alignments.detect import detect_format
from embedhead.alignments.openers import ByteCounter, open_text
from embedhead.alignments.reader import read_alignments
from embedhead.alignments.records import AlignedRow, AlignmentBlock
from embedhead.alignments.scoring import get_scheme
from embedhead.dataset import (
    DATASET_FILES,
    INFO_FILE,
    PAIRS_FILE,
    SEQUENCES_FILE,
    SPLITS,
    PairRecord,
    SequenceWriter,
    gzip_member,
    iter_fasta,
    normalise_sequence,
    write_info,
    write_pairs,
)
from embedhead.errors import ConfigError, InputError
from embedhead.fileio import atomic_dir
from embedhead.prepare.chunking import (
    PairWindow,
    WindowSpan,
    cut_window,
    forward_interval,
    plan_windows,
    score_window,
    select_pair,
)
from embedhead.prepare.config import FORMATS as FORMATS
from embedhead.prepare.config import PrepareConfig
from embedhead.prepare.negatives import dishuffle_negatives, kmer_profile, make_negatives
from embedhead.prepare.splits import assign_splits


@dataclass(frozen=True)
class PrepareSummary:
    """What a ``prepare`` run produced."""

    out_dir: Path
    n_blocks: int
    n_blocks_without_pair: int
    n_windows_too_short: int
    n_positive: int
    n_negative: int
    n_sequences: int
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    n_positive_windows: int = 0  # windows that passed the filters (before --max-pairs)
    n_filtered: int = 0  # blocks off --chroms plus windows outside --regions

    def describe(self) -> str:
        """A few human-readable lines for the CLI."""
        lines = [
            f"wrote {self.out_dir}: {self.n_positive} positive + {self.n_negative} negative pairs,"
            f" {self.n_sequences} unique sequences, from {self.n_blocks} blocks"
            f" in {self.seconds:.1f} s",
        ]
        for split in SPLITS:
            c = self.counts.get(split, {})
            lines.append(f"  {split:5s}  positive {c.get('1', 0):7d}  negative {c.get('0', 0):7d}")
        if self.n_blocks_without_pair:
            lines.append(f"  {self.n_blocks_without_pair} blocks lacked the reference/query pair")
        if self.n_windows_too_short:
            lines.append(f"  {self.n_windows_too_short} windows dropped by --min-length")
        if self.n_filtered:
            lines.append(f"  {self.n_filtered} blocks/windows outside --chroms/--regions")
        if self.n_positive_windows > self.n_positive:
            lines.append(
                f"  positives sampled uniformly: {self.n_positive} of {self.n_positive_windows}"
                " windows (--max-pairs)"
            )
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (as stored, compressed or not)."""
    path = str(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path) from exc
    return digest.hexdigest()


def read_chrom_sizes(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read a UCSC ``chrom.sizes`` file (``chrom<TAB>size`` per line; ``#`` comments)."""

    path = str(path)
    sizes: dict[str, int] = {}
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) < 2:
                raise InputError("expected 'chrom size'", path, lineno)
            try:
                size = int(fields[1])
            except ValueError:
                raise InputError(f"size is not an integer: {fields[1]!r}", path, lineno) from None
            if size <= 0:
                raise InputError(f"size must be positive, not {size}", path, lineno)
            if sizes.get(fields[0], size) != size:
                raise InputError(
                    f"{fields[0]} is listed again with another size ({sizes[fields[0]]}, now"
                    f" {size})",
                    path,
                    lineno,
                )
            sizes[fields[0]] = size
    if not sizes:
        raise InputError("no chromosome sizes found", path)
    return sizes


def read_regions(path: str | os.PathLike[str]) -> dict[str, list[tuple[int, int]]]:
    """Read a BED file (``chrom start end ...``, 0-based half-open) into merged, sorted intervals.

    ``track``/``browser`` lines and ``#`` comments are skipped. Returns chrom -> [(start, end)]
    with overlapping or touching intervals merged. Errors name the file and line.
    """
    name = str(path)
    raw: dict[str, list[tuple[int, int]]] = {}
    with open_text(name) as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields or fields[0].startswith(("#", "track", "browser")):
                continue
            if len(fields) < 3:
                raise InputError("expected 'chrom start end' (BED)", name, lineno)
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise InputError(
                    f"start/end are not integers: {fields[1]!r} {fields[2]!r}", name, lineno
                ) from None
            if start < 0 or end <= start:
                raise InputError(f"need 0 <= start < end, got {start} {end}", name, lineno)
            raw.setdefault(fields[0], []).append((start, end))
    if not raw:
        raise InputError("no regions found", name)
    merged: dict[str, list[tuple[int, int]]] = {}
    for chrom, intervals in raw.items():
        out: list[tuple[int, int]] = []
        for start, end in sorted(intervals):
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((start, end))
        merged[chrom] = out
    return merged


def _overlaps(intervals: Sequence[tuple[int, int]], starts: Sequence[int], a: int, b: int) -> bool:
    """Does ``[a, b)`` overlap one of the merged, sorted ``intervals`` (``starts`` their starts)?"""
    i = bisect.bisect_left(starts, b) - 1  # last interval starting before b
    return i >= 0 and intervals[i][1] > a


def _progress_bar(total: int, enabled: bool) -> Any:
    """A tqdm bar over ``total`` input bytes on stderr (disabled: a no-op bar)."""
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="prepare",
        disable=not enabled,
        file=sys.stderr,
        leave=False,
    )


def _detect(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt

    return detect_format(path)


def _iter_blocks(
    path: str,
    fmt: str,
    config: PrepareConfig,
    chrom_sizes: Mapping[str, int] | None,
    counter: ByteCounter | None = None,
) -> Iterator[AlignmentBlock]:
    """Blocks of one input; AXT rows are labelled with the --reference/--query names.

    With both --reference and --query, MAF rows of other species are validated but not built
    (only those two can be picked). ``counter`` counts the file's bytes read (progress).
    """
    keep = None
    if config.reference is not None and config.query is not None:
        keep = (config.reference, config.query)
    return read_alignments(
        path,
        fmt=fmt,
        chrom_sizes=chrom_sizes,
        target_db=config.reference or "target",
        query_db=config.query or "query",
        keep_dbs=keep,
        counter=counter,
    )


def _input_labels(inputs: Sequence[str]) -> list[str]:
    """Short names used in block ids: the file name, prefixed by its position if names clash."""
    names = [Path(p).name for p in inputs]
    if len(set(names)) == len(names):
        return names
    return [f"{i}-{name}" for i, name in enumerate(names)]


def _positive_record(
    window: PairWindow, where: tuple[str, int], block_id: str, add: Callable[[str], str]
) -> PairRecord:
    """The positive record of ``window``; ``add(seq) -> id`` stores each normalised sequence.

    ``where`` is the block's (path, line), named by an error.
    """
    sides = []
    for row in (window.row1, window.row2):
        try:
            seq = normalise_sequence(row.text)
        except ValueError as exc:
            raise InputError(f"row {row.src}: {exc}", where[0], row.line or where[1]) from exc
        sides.append((add(seq), len(seq)))
    (id1, len1), (id2, len2) = sides
    r1, r2 = window.row1, window.row2
    score = float(window.score)
    suffix = f"/{window.index}" if window.n_windows > 1 else ""
    return PairRecord(
        pair_id=f"{block_id}{suffix}",
        label=1,
        seq1=id1,
        seq2=id2,
        len1=len1,
        len2=len2,
        score=score,
        norm_score=score / max(len1, len2),
        identity=window.identity,
        db1=r1.db,
        chrom1=r1.chrom,
        start1=r1.forward_start,
        end1=r1.forward_end,
        strand1=r1.strand,
        db2=r2.db,
        chrom2=r2.chrom,
        start2=r2.forward_start,
        end2=r2.forward_end,
        strand2=r2.strand,
        block_id=block_id,
        split="train",
    )


def _check_out_dir(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} exists and is not a folder")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not force:
        raise ConfigError(f"--out {out_dir} exists and is not empty (use --force to replace it)")
    if not (out_dir / INFO_FILE).is_file():
        raise ConfigError(
            f"--out {out_dir} is not empty and holds no {INFO_FILE}: it is not a dataset folder,"
            " so --force will not replace it"
        )
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in DATASET_FILES)
    if foreign:
        raise ConfigError(
            f"--out {out_dir} holds files prepare did not write ({', '.join(foreign)}):"
            " --force replaces only a dataset folder; move them away or use another --out"
        )


def _check_out_dir_placement(out_dir: Path, config: PrepareConfig, inputs: Sequence[str]) -> None:
    """Refuse an ``--out`` that is (or holds) the working folder, or that holds a file we read.

    The dataset is swapped into place by renaming, which cannot replace the working folder (and
    would leave the shell in a deleted one); and ``--force`` deletes the old folder, so an input,
    a chrom.sizes or a scoring file inside it would be destroyed.
    """
    out = out_dir.resolve()
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise ConfigError(
            f"--out {out_dir} is the current folder or holds it: name a new folder, e.g. --out ds"
        )
    read = list(inputs)
    if config.chrom_sizes:
        read.append(config.chrom_sizes)
    if Path(config.scoring).is_file():
        read.append(config.scoring)
    for path in read:
        if out in Path(path).resolve().parents:
            raise ConfigError(
                f"{path} lies inside --out {out_dir}: writing the dataset there would delete it"
            )


def _gc_of_second_sequences(path: Path, positives: Sequence[PairRecord]) -> dict[str, float]:
    """GC fraction among A/C/G/T (0.5 with none) of every positive's second sequence."""
    wanted = {p.seq2 for p in positives}
    out: dict[str, float] = {}
    for sid, seq in iter_fasta(path):
        if sid in wanted:
            up = seq.upper()
            acgt = sum(up.count(b) for b in "ACGT")
            out[sid] = (up.count("G") + up.count("C")) / acgt if acgt else 0.5
    return out


#: A cut window waiting to be recorded: its two rows, its span, and the file's score for
#: thesis CSV rows (None: re-score the aligned window).
_Cut = tuple[AlignedRow, AlignedRow, WindowSpan, float | None]
_WHOLE = WindowSpan(0, 1, 0, -1, 0, 0, 0, 0)


def _second_sequences(path: Path, positives: Sequence[PairRecord]) -> dict[str, str]:
    """Text of every positive's second sequence, by id (k-mer matching, dishuffle)."""
    wanted = {p.seq2 for p in positives}
    return {sid: seq for sid, seq in iter_fasta(path) if sid in wanted}


def _append_sequences(path: Path, sequences: Mapping[str, str], ids: set[str]) -> None:
    """Add new sequences to the written FASTA as a second gzip member (readers see one file);
    ``ids`` (the writer's) gains them, so ``n_sequences`` counts them."""
    new = {sid: seq for sid, seq in sequences.items() if sid not in ids}
    if not new:
        return
    with (
        open(path, "ab") as raw,
        gzip_member(raw) as gz,
    ):
        gz.write("".join(f">{sid}\n{seq}\n" for sid, seq in new.items()).encode("ascii"))
    ids.update(new)


class _Collector:
    """Streams blocks into positive records and unique sequences.

    Without ``--max-pairs`` each window's sequences go to the writer at once and one small
    record is kept per window. With it, a seeded reservoir (Algorithm R) keeps a uniform sample
    of at most ``max_pairs`` windows (record fields + the two sequences) over the whole stream,
    so memory is bounded by ``max_pairs`` whatever the input size; :meth:`finish` writes the
    sampled sequences, in stream order.
    """

    def __init__(
        self,
        config: PrepareConfig,
        writer: SequenceWriter,
        regions: Mapping[str, list[tuple[int, int]]] | None = None,
    ) -> None:

        self.config = config
        self.scheme = get_scheme(config.scoring)
        self.writer = writer
        self.records: list[PairRecord] = []
        self.n_blocks = 0
        self.n_without_pair = 0
        self.n_too_short = 0
        self.n_off_chroms = 0
        self.n_outside_regions = 0
        self.n_windows = 0  # positive windows that passed every filter
        self._chroms = frozenset(config.chroms) if config.chroms is not None else None
        self._regions = regions
        self._region_starts = (
            {c: [a for a, _ in iv] for c, iv in regions.items()} if regions is not None else {}
        )
        self._rng = random.Random(f"{config.seed}:max-pairs")
        # (stream index, window or its cutter, (path, line), block id): cut (if not yet) and
        # scored only in finish()
        self._reservoir: list[tuple[int, _Cut | Callable[[], _Cut], tuple[str, int], str]] = []

    def _keep_reference(self, chrom: str) -> bool:
        return self._chroms is None or chrom in self._chroms

    def _in_regions(self, chrom: str, interval: tuple[int, int] | None) -> bool:
        """Does the reference interval (forward strand) of a window overlap --regions?"""
        if self._regions is None:
            return True
        intervals = self._regions.get(chrom)
        if not intervals or interval is None:
            return False  # no coordinates (e.g. thesis CSV): cannot lie in a region
        return _overlaps(intervals, self._region_starts[chrom], interval[0], interval[1])

    def _offer(
        self,
        chrom: str,
        interval: tuple[int, int] | None,
        cut: Callable[[], _Cut],
        where: tuple[str, int],
        block_id: str,
        defer: bool = False,
    ) -> None:
        """One positive window: recorded now, or offered to the --max-pairs reservoir.

        ``cut()`` cuts the window (its texts) and is called only for a window that is kept; it
        is scored (and its sequences normalised) only when it is recorded: at once without
        --max-pairs, in :meth:`finish` for the windows the reservoir holds at the end. With
        ``defer`` (the block's rows are at most twice a window, so holding them costs what
        holding the cut texts would) the reservoir keeps ``cut`` itself and cuts only the
        windows it still holds at the end: at 1 GB of input ~58,000 windows pass through a
        16,000 reservoir, and only 16,000 are cut.
        """
        if not self._in_regions(chrom, interval):
            self.n_outside_regions += 1
            return
        index = self.n_windows
        self.n_windows += 1
        cap = self.config.max_pairs
        if cap is None:
            self.records.append(self._record(cut(), where, block_id, self.writer.add))
            return
        slot = index if index < cap else self._rng.randrange(index + 1)
        if slot >= cap:
            return
        entry = (index, cut if defer else cut(), where, block_id)
        if slot == len(self._reservoir):
            self._reservoir.append(entry)
        else:
            self._reservoir[slot] = entry

    def _record(
        self, piece: _Cut, where: tuple[str, int], block_id: str, add: Callable[[str], str]
    ) -> PairRecord:
        row1, row2, span, score = piece
        if score is None:  # an aligned window: re-scored now
            window = score_window(row1, row2, span, self.scheme)
            return _positive_record(window, where, block_id, add)
        rec = _positive_record(PairWindow(row1, row2, 0, 1, 0, math.nan), where, block_id, add)
        return dataclasses.replace(rec, score=score, norm_score=score / max(rec.len1, rec.len2))

    def finish(self) -> None:
        """Score and write the sampled windows (``--max-pairs``) and their sequences, in stream
        order."""
        for _, held, where, block_id in sorted(self._reservoir, key=lambda e: e[0]):
            piece = held() if callable(held) else held
            self.records.append(self._record(piece, where, block_id, self.writer.add))
        self._reservoir = []

    def add_block(self, block: AlignmentBlock, block_id: str, fmt: str) -> None:
        self.n_blocks += 1
        if fmt == "csv":
            self._add_csv(block, block_id)
            return
        if fmt == "maf":
            pair = select_pair(block, self.config.reference, self.config.query)
        else:
            pair = (block.rows[0], block.rows[1]) if len(block.rows) >= 2 else None
        if pair is None:
            self.n_without_pair += 1
            return
        row1, row2 = pair
        if not self._keep_reference(row1.chrom):
            self.n_off_chroms += 1
            return
        spans = plan_windows(row1, row2, self.config.chunk_size)
        if not spans:
            self.n_too_short += 1  # nothing left after projection: one dropped window
            return
        floor = max(1, self.config.min_length)
        where = (block.path, block.line)
        defer = len(row1.text) <= 2 * self.config.chunk_size
        for span in spans:
            if span.size1 < floor or span.size2 < floor:
                self.n_too_short += 1
                continue

            def cut(span: WindowSpan = span) -> _Cut:
                return (*cut_window(row1, row2, span), span, None)

            interval = forward_interval(row1, span.start1, span.size1)
            self._offer(row1.chrom, interval, cut, where, block_id, defer)

    def _add_csv(self, block: AlignmentBlock, block_id: str) -> None:
        """Thesis CSV rows hold unaligned sequences: keep them whole, with the file's score."""
        row1, row2 = block.rows[0], block.rows[1]
        if not self._keep_reference(row1.chrom):
            self.n_off_chroms += 1
            return
        if min(row1.size, row2.size) < self.config.min_length:
            self.n_too_short += 1
            return
        score = math.nan if block.score is None else float(block.score)
        piece: _Cut = (row1, row2, _WHOLE, score)
        interval = (
            None
            if row1.forward_start is None or row1.forward_end is None
            else (row1.forward_start, row1.forward_end)
        )
        self._offer(row1.chrom, interval, lambda: piece, (block.path, block.line), block_id)


def prepare(
    inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], config: PrepareConfig
) -> PrepareSummary:
    """Build a dataset folder from alignment files (see the module docstring)."""
    began = time.perf_counter()
    config.validate()
    if not inputs:
        raise ConfigError("no input files given")
    paths = [str(p) for p in inputs]
    out = Path(out_dir)
    _check_out_dir_placement(out, config, paths)
    _check_out_dir(out, config.force)
    chrom_sizes = read_chrom_sizes(config.chrom_sizes) if config.chrom_sizes else None
    regions = read_regions(config.regions) if config.regions else None
    with atomic_dir(out, replace=True) as tmp:  # replaces an old dataset once complete
        return _build(paths, tmp, out, config, chrom_sizes, regions, began)


def _build(
    paths: Sequence[str],
    tmp: Path,
    out: Path,
    config: PrepareConfig,
    chrom_sizes: Mapping[str, int] | None,
    regions: Mapping[str, list[tuple[int, int]]] | None,
    began: float,
) -> PrepareSummary:
    writer = SequenceWriter(tmp / SEQUENCES_FILE)
    inputs_info: list[dict[str, Any]] = []
    sizes = [os.path.getsize(p) if os.path.isfile(p) else 0 for p in paths]
    bar = _progress_bar(sum(sizes), config.progress)
    try:
        collector = _Collector(config, writer, regions)
        done = 0  # bytes of the inputs already finished
        for path, label, size in zip(paths, _input_labels(paths), sizes, strict=True):
            fmt = _detect(path, config.fmt)
            n_before = collector.n_blocks
            counter = ByteCounter() if config.progress else None
            for block in _iter_blocks(path, fmt, config, chrom_sizes, counter):
                collector.add_block(block, f"{label}:{block.index}", fmt)
                if counter is not None and collector.n_blocks % 64 == 0:
                    bar.update(done + min(counter.n, size) - bar.n)
                    bar.set_postfix(blocks=collector.n_blocks, refresh=False)
            done += size
            bar.update(done - bar.n)
            inputs_info.append(
                {
                    "path": os.path.abspath(path),
                    "format": fmt,
                    "sha256": file_sha256(path),
                    "blocks": collector.n_blocks - n_before,
                }
            )
        collector.finish()
    finally:
        bar.close()
        writer.close()
    positives = collector.records
    n_filtered = collector.n_off_chroms + collector.n_outside_regions
    if not positives:
        raise InputError(
            f"no pairs: {collector.n_blocks} blocks read, {collector.n_without_pair} lacked the"
            f" reference/query rows, {collector.n_too_short} windows shorter than --min-length,"
            f" {collector.n_off_chroms} blocks off --chroms, {collector.n_outside_regions}"
            " windows outside --regions",
            paths[0] if len(paths) == 1 else ", ".join(paths),
        )
    splits = assign_splits(positives, config.split_by, config.split_fractions, config.seed)
    positives = [dataclasses.replace(r, split=s) for r, s in zip(positives, splits, strict=True)]
    negatives: list[PairRecord] = []
    missing: dict[str, int] = {}
    gc = _gc_of_second_sequences(tmp / SEQUENCES_FILE, positives) if config.gc_match else None
    second = (
        _second_sequences(tmp / SEQUENCES_FILE, positives)
        if config.kmer_match or config.negatives == "dishuffle"
        else {}
    )
    kmer = {sid: kmer_profile(seq) for sid, seq in second.items()} if config.kmer_match else None
    shuffled: dict[str, str] = {}
    for split in SPLITS:
        members = [r for r in positives if r.split == split]
        if config.negatives == "dishuffle":  # new sequences: appended to the FASTA below
            made = dishuffle_negatives(
                members,
                second,
                config.negative_ratio,
                f"{config.seed}:{split}",
                split,
                f"neg/{split}/",
            )
            drawn = made.records
            shuffled.update(made.sequences)
        else:
            drawn = make_negatives(
                members,
                config.negatives,
                config.negative_ratio,
                seed=f"{config.seed}:{split}",
                split=split,
                id_prefix=f"neg/{split}/",
                length_match=config.length_match,
                gc_match=config.gc_match,
                gc=gc,
                kmer_match=config.kmer_match,
                kmer=kmer,
            )
        missing[split] = round(config.negative_ratio * len(members)) - len(drawn)
        negatives.extend(drawn)
    _append_sequences(tmp / SEQUENCES_FILE, shuffled, writer.ids)
    records = positives + negatives
    write_pairs(tmp / PAIRS_FILE, records)
    counts = {s: {"1": 0, "0": 0} for s in SPLITS}
    for rec in records:
        counts[rec.split][str(rec.label)] += 1
    warnings = _warnings(counts, config, missing)
    info = {
        "format_version": 1,
        "created_by": f"embedhead {__version__} prepare",
        "command": config.command,
        "inputs": inputs_info,
        "parameters": config.parameters(),
        "scoring_scheme": collector.scheme.to_dict(),
        "counts": counts,
        "n_pairs": len(records),
        "n_positive": len(positives),
        "n_negative": len(negatives),
        "n_sequences": len(writer.ids),
        "n_blocks": collector.n_blocks,
        "n_blocks_without_pair": collector.n_without_pair,
        "n_windows_too_short": collector.n_too_short,
        "n_negatives_missing": missing,
        "sampling": {
            "max_pairs": config.max_pairs,
            "n_positive_windows": collector.n_windows,
            "n_sampled": len(positives),
            "n_blocks_off_chroms": collector.n_off_chroms,
            "n_windows_outside_regions": collector.n_outside_regions,
            "method": "all windows"
            if config.max_pairs is None
            else f"uniform reservoir sample (Algorithm R), seed {config.seed}",
        },
        "warnings": list(warnings),
    }
    write_info(tmp / INFO_FILE, info)
    return PrepareSummary(
        out_dir=out,
        n_blocks=collector.n_blocks,
        n_blocks_without_pair=collector.n_without_pair,
        n_windows_too_short=collector.n_too_short,
        n_positive=len(positives),
        n_negative=len(negatives),
        n_sequences=len(writer.ids),
        counts=counts,
        seconds=time.perf_counter() - began,
        warnings=warnings,
        n_positive_windows=collector.n_windows,
        n_filtered=n_filtered,
    )


def _warnings(
    counts: Mapping[str, Mapping[str, int]], config: PrepareConfig, missing: Mapping[str, int]
) -> tuple[str, ...]:
    """Empty splits, splits without negatives, and splits short of --negative-ratio."""
    out: list[str] = []
    for split, fraction in zip(SPLITS, config.split_fractions, strict=True):
        if fraction > 0 and counts[split]["1"] == 0:
            hint = " (try --split-by block)" if config.split_by == "chrom" else ""
            out.append(f"the {split} split is empty: too few {config.split_by} groups{hint}")
        elif config.negative_ratio > 0 and counts[split]["1"] and not counts[split]["0"]:
            also = " or have no partner of a close enough length" if config.length_match else ""
            out.append(
                f"the {split} split has no negatives: its positives all come from one block"
                f" or from overlapping blocks{also}"
            )
        elif missing.get(split, 0) > 0:
            wanted = counts[split]["0"] + missing[split]
            rule = "another, non-overlapping block, not a true partner, not yet used"
            hint = ""
            if config.negatives == "dishuffle":
                rule = "no other dinucleotide shuffle of the partner exists, e.g. ACACAC"
            elif config.length_match > 0:
                rule += (
                    f", second sequence within --length-match {config.length_match:g}"
                    " of the true one's length"
                )
                hint = "; a larger --length-match (or 0) finds more"
            out.append(
                f"the {split} split got {counts[split]['0']} of {wanted} negatives:"
                f" {missing[split]} found no valid partner ({rule}){hint}"
            )
    return tuple(out)
