"""CLI commands ``prepare`` (alignments -> pair dataset) and ``simulate`` (synthetic MAF)."""

from __future__ import annotations

import shlex

import click

from embedhead.cli.common import (
    comma_list,
    field_default,
    library_errors,
    quiet_option,
    seed_option,
)
from embedhead.prepare.config import (
    DEFAULT_GC_TOLERANCE,
    DEFAULT_KMER_TOLERANCE,
    DEFAULT_MATCH,
    FORMATS,
    MATCH_MODES,
    NEGATIVE_METHODS,
    SPLIT_MODES,
    PrepareConfig,
    SimulateConfig,
)


def _prep(name: str) -> object:
    return field_default(PrepareConfig, name)


def _sim(name: str) -> object:
    return field_default(SimulateConfig, name)


def _command_line() -> str:
    """The command as it would be typed, rebuilt from the parsed parameters (for dataset.json)."""
    ctx = click.get_current_context()
    parts = ["embedhead", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if isinstance(param, click.Argument):
            parts.extend(str(v) for v in (value or ()))
        elif isinstance(param, click.Option) and param.is_flag:
            if value:
                parts.append(param.opts[0])
        elif value is not None:
            parts.extend([param.opts[0], str(value)])
    return shlex.join(parts)


@click.command("prepare")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--out", "-o", required=True, type=click.Path(file_okay=False), help="Dataset folder to write."
)
@click.option(
    "--reference",
    default=_prep("reference"),
    help="Reference database (e.g. hg38). Default: first row.",
)
@click.option(
    "--query", default=_prep("query"), help="Query database (e.g. galGal6). Default: second row."
)
@click.option(
    "--chunk-size",
    type=int,
    default=_prep("chunk_size"),
    show_default=True,
    help="Cut longer blocks into windows of at most this many columns.",
)
@click.option(
    "--min-length",
    type=int,
    default=_prep("min_length"),
    show_default=True,
    help="Drop windows where either sequence has fewer letters.",
)
@click.option(
    "--scoring",
    default=_prep("scoring"),
    show_default=True,
    help="Scoring scheme for window scores: hoxd70, HoxD55, human_chimp.v2 or a matrix file.",
)
@click.option(
    "--negatives",
    type=click.Choice(NEGATIVE_METHODS),
    default=_prep("negatives"),
    show_default=True,
    help="How negatives are drawn (within each split). adjacent: the thesis's literal method,"
    " each pair takes the second sequence of the next pair in input order (no shuffling)."
    " dishuffle: the partner is a dinucleotide-preserving shuffle of the pair's own second"
    " sequence (same length and dinucleotide counts; seeded).",
)
@click.option(
    "--negative-ratio",
    type=float,
    default=_prep("negative_ratio"),
    show_default=True,
    help="Negatives per positive.",
)
@click.option(
    "--length-match",
    type=float,
    default=_prep("length_match"),
    show_default=True,
    help="Length-matched negatives: a negative's second sequence is within this relative"
    " length difference of the positive's it replaces, so length alone hardly separates the"
    " labels. 0: lengths ignored, as in the thesis (a length-only classifier then scores"
    " ~0.9 on the demo data).",
)
@click.option(
    "--match",
    "match",
    type=click.Choice(MATCH_MODES),
    default=DEFAULT_MATCH,
    show_default=True,
    help="gc: negatives also composition-matched, the replaced second sequence within"
    " --gc-tolerance of the true partner's GC content; kmer: its 3-mer profile within"
    " --kmer-tolerance (total-variation distance) of the true partner's, the nearest profile"
    " among the candidates (length matching still follows --length-match).",
)
@click.option(
    "--gc-tolerance",
    type=float,
    default=DEFAULT_GC_TOLERANCE,
    show_default=True,
    help="With --match gc: largest absolute GC-fraction difference of the replaced sequence.",
)
@click.option(
    "--kmer-tolerance",
    type=float,
    default=DEFAULT_KMER_TOLERANCE,
    show_default=True,
    help="With --match kmer: largest total-variation distance (half the L1 distance, 0..1)"
    " between the 3-mer profiles of the replaced sequence and the true partner.",
)
@click.option(
    "--split-by",
    type=click.Choice(SPLIT_MODES),
    default=_prep("split_by"),
    show_default=True,
    help="Grouping that never crosses splits.",
)
@click.option(
    "--split-fractions",
    default=comma_list(field_default(PrepareConfig, "split_fractions")),
    show_default=True,
    help="train,val,test fractions.",
)
@click.option(
    "--chrom-sizes",
    type=click.Path(dir_okay=False),
    default=_prep("chrom_sizes"),
    help="UCSC chrom.sizes file: forward coordinates of minus-strand AXT rows.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=_prep("fmt"),
    show_default=True,
    help="Input format (auto: detected by content).",
)
@click.option(
    "--max-pairs",
    type=int,
    default=_prep("max_pairs"),
    help="Keep a seeded, uniform sample of this many positive windows over the whole input"
    " (one streaming pass; memory bounded by N). Negatives are drawn from the sample as usual.",
)
@click.option(
    "--chroms",
    default=None,
    help="Keep only blocks whose reference row lies on these chromosomes (comma separated).",
)
@click.option(
    "--regions",
    type=click.Path(dir_okay=False),
    default=_prep("regions"),
    help="BED file: keep only windows whose reference side overlaps one of its regions.",
)
@click.option("--force", is_flag=True, help="Replace an existing dataset folder at --out.")
@quiet_option
@click.option(
    "--leak-check/--no-leak-check",
    default=True,
    show_default=True,
    help="Print the test ROC-AUC of length, GC and 3-mer baselines of the written dataset.",
)
@seed_option(field_default(PrepareConfig, "seed"))
@library_errors
def prepare_command(
    inputs: tuple[str, ...],
    out: str,
    reference: str | None,
    query: str | None,
    chunk_size: int,
    min_length: int,
    scoring: str,
    negatives: str,
    negative_ratio: float,
    length_match: float,
    match: str,
    gc_tolerance: float,
    kmer_tolerance: float,
    split_by: str,
    split_fractions: str,
    chrom_sizes: str | None,
    fmt: str,
    max_pairs: int | None,
    chroms: str | None,
    regions: str | None,
    force: bool,
    quiet: bool,
    leak_check: bool,
    seed: int,
) -> None:
    """Build a pair dataset from MAF/AXT/CSV alignments.

    Writes sequences.fa.gz, pairs.tsv.gz (positives, negatives, train/val/test split) and
    dataset.json into --out.
    Inputs may be plain, .gz or .bz2; the format is detected by content. Blocks longer than
    --chunk-size are cut into aligned windows, each re-scored exactly with --scoring.
    Negatives are length-matched by default (--length-match 0.1). The thesis's negatives are
    --negatives adjacent --length-match 0 (a length-only classifier can spot them).

    \b
    Examples:
      embedhead prepare hg38.galGal6.maf.gz --reference hg38 --query galGal6 --out ds/
      embedhead prepare data/demo.maf.gz --reference hg38 --query susScr11 --out demo-ds/ --seed 1
      embedhead prepare dog.net.axt --reference hg17 --query canFam1 --negatives shuffle --out ds/
      embedhead prepare thesis.csv --negatives adjacent --length-match 0 --out thesis-ds/
      embedhead prepare hg38.galGal6.net.axt.gz --reference hg38 --query galGal6 \\
          --max-pairs 16000 --chroms chr1,chr2 --out ds16k/   # a whole-genome net, sampled
    """
    import sys

    from embedhead.prepare.build import prepare
    from embedhead.prepare.splits import parse_fractions

    config = PrepareConfig(
        reference=reference,
        query=query,
        chunk_size=chunk_size,
        min_length=min_length,
        scoring=scoring,
        negatives=negatives,
        negative_ratio=negative_ratio,
        length_match=length_match,
        gc_match=gc_tolerance if match == "gc" else 0.0,
        kmer_match=kmer_tolerance if match == "kmer" else 0.0,
        split_by=split_by,
        split_fractions=parse_fractions(split_fractions),
        seed=seed,
        chrom_sizes=chrom_sizes,
        fmt=fmt,
        max_pairs=max_pairs,
        chroms=None if chroms is None else tuple(c.strip() for c in chroms.split(",")),
        regions=regions,
        force=force,
        progress=not quiet and sys.stderr.isatty(),
        command=_command_line(),
    )
    summary = prepare(list(inputs), out, config)
    click.echo(summary.describe())
    if leak_check:
        _echo_leak_check(out, seed)


def _echo_leak_check(out: str, seed: int) -> None:
    """Test ROC-AUC of length/GC/k-mer baselines on the dataset just written (issue 13)."""
    from embedhead.errors import EmbedheadError
    from embedhead.experiments.baselines import leak_aucs

    try:
        aucs = leak_aucs(out, seed)
    except EmbedheadError as exc:
        click.echo(f"  leak check skipped: {exc}")
        return
    parts = ", ".join(f"{name} {auc:.3f}" for name, auc in aucs.items())
    click.echo(f"  leak check, test ROC-AUC of embedding-free baselines: {parts}")
    if aucs.get("length", 0.0) >= 0.8:
        click.echo("  warning: length alone separates the labels; try --length-match 0.1")


@click.command("simulate")
@click.option(
    "--out",
    "-o",
    default=None,
    type=click.Path(dir_okay=False),
    help="MAF file to write (.gz: gzip). Needed unless --profile is given.",
)
@click.option(
    "--profile",
    "profile",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="A real MAF/AXT file: print the simulator's distributions (identity p5/p50/p95, block"
    " length, gap rate, GC mean/sd/lag-1 correlation, soft-masked fractions) beside this"
    " file's, for the reference and the first --species.",
)
@click.option(
    "--profile-reference",
    default=None,
    help="With --profile: the real file's reference database. Default: each block's first row.",
)
@click.option(
    "--profile-query",
    default=None,
    help="With --profile: the real file's query database. Default: each block's second row.",
)
@click.option(
    "--blocks",
    "n_blocks",
    type=int,
    default=_sim("n_blocks"),
    show_default=True,
    help="Number of alignment blocks.",
)
@click.option(
    "--species",
    default=comma_list(field_default(SimulateConfig, "species")),
    show_default=True,
    help="Query species, comma separated, closest first (one species: a pairwise MAF).",
)
@click.option(
    "--reference", default=_sim("reference"), show_default=True, help="Reference database name."
)
@click.option(
    "--mean-length",
    type=int,
    default=_sim("mean_length"),
    show_default=True,
    help="Typical block length (columns).",
)
@click.option(
    "--long-fraction",
    type=float,
    default=_sim("long_fraction"),
    show_default=True,
    help="Share of blocks longer than 5,000 columns.",
)
@click.option(
    "--scoring",
    default=_sim("scoring"),
    show_default=True,
    help="Scheme for the `a score=` values.",
)
@seed_option(field_default(SimulateConfig, "seed"))
@library_errors
def simulate_command(
    out: str | None,
    profile: str | None,
    profile_reference: str | None,
    profile_query: str | None,
    n_blocks: int,
    species: str,
    reference: str,
    mean_length: int,
    long_fraction: float,
    scoring: str,
    seed: int,
) -> None:
    """Write a synthetic UCSC-style MAF (reference + diverging species).

    Substitutions with a transition bias, indels, soft-masked repeats, GC variation, both
    strands, some blocks over 5,000 columns; `a score=` recomputed exactly (sum over the
    query rows of the pairwise score against the reference). Seeded.

    \b
    Examples:
      embedhead simulate --out data/demo.maf.gz --blocks 600 --seed 0
      embedhead simulate --out pair.maf --species galGal6 --blocks 50
      embedhead simulate --profile hg17.galGal2.maf --profile-query galGal2 --species galGal6
    """
    from embedhead.prepare.simulate import write_maf

    if out is None and profile is None:
        raise click.UsageError("give --out FILE (the MAF to write) or --profile REAL_FILE")

    config = SimulateConfig(
        n_blocks=n_blocks,
        seed=seed,
        reference=reference,
        species=tuple(s.strip() for s in species.split(",") if s.strip()),
        mean_length=mean_length,
        long_fraction=long_fraction,
        scoring=scoring,
    )
    if out is not None:
        summary = write_maf(out, config, command=_command_line())
        click.echo(summary.describe())
    if profile is not None:
        from embedhead.prepare.profile import profile_file, profile_simulation, profile_table

        config.validate()
        simulated = profile_simulation(config)
        real = profile_file(profile, profile_reference, profile_query)
        click.echo(profile_table([simulated, real]))


COMMANDS: list[click.Command] = [prepare_command, simulate_command]
