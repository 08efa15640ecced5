"""Scoring schemes, scheme files and the vectorised exact score (against a plain reference)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.alignments.scoring import (
    HOXD55,
    HOXD70,
    HUMAN_CHIMP_V2,
    ScoringScheme,
    get_scheme,
    identity,
    load_scheme_file,
    score_alignment,
)
from embedhead.errors import ConfigError, InputError

BASES = "ACGT"


def reference_score(text1: str, text2: str, scheme: ScoringScheme) -> int:
    """Column-by-column score written as plainly as possible (the spec's definition)."""
    score = 0
    in_gap = False
    for a, b in zip(text1, text2, strict=True):
        gap_a = a in "-."
        gap_b = b in "-."
        if gap_a and gap_b:
            continue  # not a column of the pairwise alignment
        if gap_a or gap_b:
            if not in_gap:
                score -= scheme.gap_open
                in_gap = True
            score -= scheme.gap_extend
            continue
        in_gap = False
        ua, ub = a.upper(), b.upper()
        if ua in BASES and ub in BASES:
            score += scheme.matrix[BASES.index(ua)][BASES.index(ub)]
    return score


def reference_identity(text1: str, text2: str) -> float:
    aligned = matches = 0
    for a, b in zip(text1, text2, strict=True):
        if a in "-." or b in "-.":
            continue
        aligned += 1
        if a.upper() == b.upper() and a.upper() in BASES:
            matches += 1
    return matches / aligned if aligned else math.nan


ALPHABET = "ACGTacgtNnRy--."
pairs = st.integers(min_value=0, max_value=120).flatmap(
    lambda n: st.tuples(
        st.text(alphabet=ALPHABET, min_size=n, max_size=n),
        st.text(alphabet=ALPHABET, min_size=n, max_size=n),
    )
)
schemes = st.sampled_from([HOXD70, HOXD55, HUMAN_CHIMP_V2])


@settings(max_examples=300, deadline=None)
@given(pairs, schemes)
def test_score_matches_plain_reference(pair: tuple[str, str], scheme: ScoringScheme) -> None:
    text1, text2 = pair
    assert score_alignment(text1, text2, scheme) == reference_score(text1, text2, scheme)


@settings(max_examples=200, deadline=None)
@given(pairs)
def test_identity_matches_plain_reference(pair: tuple[str, str]) -> None:
    got = identity(*pair)
    want = reference_identity(*pair)
    assert (math.isnan(got) and math.isnan(want)) or got == want


def test_hand_computed_examples() -> None:
    # A/A 91, C/G -125, a both-gap column (dropped), a 2-column gap switching rows (one
    # run), then T/t 91.
    assert score_alignment("AC--gT", "AG-a-t", HOXD70) == 91 - 125 - 400 - 30 * 2 + 91
    assert score_alignment("ACgT", "AGat", HOXD70) == 91 - 125 - 31 + 91
    # Two separate gap runs cost two openings.
    assert score_alignment("A-A-A", "AAAAA", HOXD70) == 3 * 91 - 2 * (400 + 30)
    # N scores 0; both-gap columns are dropped and do not break the gap run.
    assert score_alignment("N-A", "A--", HOXD70) == 0 - (400 + 30 * 1)
    assert score_alignment("A--C", "-A-C", HOXD70) == -(400 + 60) + 100
    assert score_alignment("", "", HOXD70) == 0


def test_unequal_lengths_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        score_alignment("ACG", "AC", HOXD70)


def test_identity_definition() -> None:
    assert identity("ACGTN", "ACGAN") == pytest.approx(3 / 5)
    assert identity("AC-T", "acGT") == pytest.approx(1.0)
    assert math.isnan(identity("--", "AC"))


@pytest.mark.parametrize(
    ("name", "scheme"),
    [
        ("hoxd70", HOXD70),
        ("HOXD70", HOXD70),
        ("HoxD55", HOXD55),
        ("human_chimp.v2", HUMAN_CHIMP_V2),
        ("human_chimp_v2", HUMAN_CHIMP_V2),
        ("HUMAN_CHIMP.V2", HUMAN_CHIMP_V2),
    ],
)
def test_get_scheme_by_name(name: str, scheme: ScoringScheme) -> None:
    assert get_scheme(name) is scheme


def test_preset_values_from_spec() -> None:
    assert HOXD70.matrix[0] == (91, -114, -31, -123)
    assert HOXD70.matrix[3] == (-123, -31, -114, 91)
    assert (HOXD70.gap_open, HOXD70.gap_extend) == (400, 30)
    assert HOXD55.matrix[1] == (-90, 100, -100, -25)
    assert (HOXD55.gap_open, HOXD55.gap_extend) == (400, 30)
    assert HUMAN_CHIMP_V2.matrix[3] == (-356, -236, -330, 90)
    assert (HUMAN_CHIMP_V2.gap_open, HUMAN_CHIMP_V2.gap_extend) == (600, 150)
    for scheme in (HOXD70, HOXD55, HUMAN_CHIMP_V2):
        for i in range(4):
            for j in range(4):
                assert scheme.matrix[i][j] == scheme.matrix[j][i]


def test_unknown_scheme_name() -> None:
    with pytest.raises(ConfigError, match="unknown scoring scheme"):
        get_scheme("blosum62")


def test_scheme_frozen_and_validated() -> None:
    with pytest.raises(AttributeError):
        HOXD70.gap_open = 1  # type: ignore[misc]
    with pytest.raises(ConfigError):
        ScoringScheme("bad", ((1, 2, 3), (1, 2, 3), (1, 2, 3), (1, 2, 3)), 1, 1)  # type: ignore[arg-type]


def test_scheme_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text(
        "# my scheme (columns in another order)\n"
        "O=500 E=20\n"
        "     T    G    C    A\n"
        "A   -1   -2   -3   10\n"
        "C   -4   -5   11   -3\n"
        "G   -6   12   -5   -2\n"
        "T   13   -6   -4   -1  # trailing comment\n"
    )
    scheme = get_scheme(str(path))
    assert scheme.name == "mine.txt"
    assert (scheme.gap_open, scheme.gap_extend) == (500, 20)
    assert scheme.matrix[0] == (10, -3, -2, -1)
    assert scheme.matrix[3] == (-1, -4, -6, 13)
    assert score_alignment("A-T", "AGT", scheme) == 10 - 520 + 13


def test_lastz_style_scheme_file(tmp_path: Path) -> None:
    path = tmp_path / "lastz.q"
    path.write_text(
        "bad_score          = X:-1000\n"
        "fill_score         = -100\n"
        "gap_open_penalty   = 400\n"
        "gap_extend_penalty = 30\n\n"
        "      A     C     G     T\n"
        "A    91  -114   -31  -123\n"
        "C  -114   100  -125   -31\n"
        "G   -31  -125   100  -114\n"
        "T  -123   -31  -114    91\n"
    )
    scheme = load_scheme_file(path)
    assert (scheme.matrix, scheme.gap_open, scheme.gap_extend) == (HOXD70.matrix, 400, 30)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("O=400 E=30\nA C G X\n", 2, "header"),
        ("O=400 E=30\nA C G T\nA 1 2 3\n", 3, "4 integers"),
        ("O=400 E=30\nA C G T\nA 1 2 x 4\n", 3, "not an integer"),
        ("O=400 E=3x\n", 1, "not an integer"),
        ("wibble=3\n", 1, "unknown setting"),
        ("# c\ngap_open =\n", 2, "malformed setting"),
        ("O=400 E=30\nA C G T\nA 1 2 3 4\nA 1 2 3 4\n", 4, "twice"),
    ],
)
def test_scheme_file_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        get_scheme(path)
    assert info.value.line == line
    assert info.value.path == str(path)


def test_scheme_file_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "half.txt"
    path.write_text("O=400\nA C G T\nA 1 2 3 4\nC 1 2 3 4\nG 1 2 3 4\nT 1 2 3 4\n")
    with pytest.raises(InputError, match="together"):
        get_scheme(path)
    path.write_text("O=1 E=1\nA C G T\nA 1 2 3 4\n")
    with pytest.raises(InputError, match="incomplete matrix"):
        get_scheme(path)


# --- scoring files as UCSC and lastz ship them (issue 11) --------------------------------------
# Matrices and gap costs from shared/spec/alignments.md; the lastz/blastz AXT matrix from the
# header of kent/hg19.susScr3.chrM.{lastz,blastz}.axt.gz.
SUSSCR3_Q = (
    (79, -84, -55, -128),
    (-84, 100, -174, -55),
    (-55, -174, 100, -84),
    (-128, -55, -84, 79),
)


def _rows(matrix: tuple[tuple[int, ...], ...]) -> list[str]:
    return [" ".join(f"{v:5d}" for v in row) for row in matrix]


def blastz_q_text(matrix: tuple[tuple[int, ...], ...]) -> str:
    """kent's HoxD55.q style: an A C G T header and 4 rows of 4 numbers, no row letters."""
    return "   A    C    G    T\n" + "".join(row + "\n" for row in _rows(matrix))


def axt_score_scheme_text(matrix: tuple[tuple[int, ...], ...], o: int, e: int) -> str:
    """kent's axtScoreScheme style: the BLASTZ_Q matrix then an ``O = 400, E = 30`` line."""
    return blastz_q_text(matrix) + f"O = {o}, E = {e}\n"


def lastz_n_text(matrix: tuple[tuple[int, ...], ...], o: int, e: int, n: int) -> str:
    """A lastz scoring file with an N column and row (value ``n`` for every N entry)."""
    lines = [
        "# lastz scoring file",
        "bad_score          = X:-1000",
        "fill_score         = -100",
        f"gap_open_penalty   = {o}",
        f"gap_extend_penalty = {e}",
        "",
        "      A     C     G     T     N",
    ]
    for letter, row in zip("ACGT", matrix, strict=True):
        lines.append(letter + " " + " ".join(f"{v:5d}" for v in (*row, n)))
    lines.append("N " + " ".join(f"{n:5d}" for _ in range(5)))
    return "\n".join(lines) + "\n"


SPEC_SCHEMES = [HOXD70, HOXD55, HUMAN_CHIMP_V2]


@pytest.mark.parametrize("scheme", SPEC_SCHEMES, ids=lambda s: s.name)
def test_ucsc_and_lastz_file_styles_read_the_spec_numbers(
    tmp_path: Path, scheme: ScoringScheme
) -> None:
    o, e = scheme.gap_open, scheme.gap_extend
    styles = {
        "blastz.q": blastz_q_text(scheme.matrix),
        "axtscore.txt": axt_score_scheme_text(scheme.matrix, o, e),
        "lastz.scores": lastz_n_text(scheme.matrix, o, e, 0),
    }
    for name, text in styles.items():
        path = tmp_path / name
        path.write_text(text)
        loaded = get_scheme(path)
        assert loaded.matrix == scheme.matrix, name
        expected_gaps = (400, 30) if name == "blastz.q" else (o, e)  # bare matrix: lastz defaults
        assert (loaded.gap_open, loaded.gap_extend) == expected_gaps, name


def test_lastz_n_column_scores_n_and_other_letters(tmp_path: Path) -> None:
    path = tmp_path / "lastz.scores"
    text = lastz_n_text(HOXD70.matrix, 400, 30, 0)
    lines = text.splitlines()
    lines[-5] = "A    91  -114   -31  -123   -7"  # A against N: -7
    lines[-1] = "N    -1    -2    -3    -4   -5"
    path.write_text("\n".join(lines) + "\n")
    scheme = get_scheme(path)
    assert scheme.n_row == (-1, -2, -3, -4, -5) and scheme.n_column == (-7, 0, 0, 0)
    assert score_alignment("AN", "NN", scheme) == -7 - 5
    assert score_alignment("NNRA", "ACGA", scheme) == -1 - 2 - 3 + 91  # R scores as N
    assert score_alignment("NA", "AN", HOXD70) == 0
    assert scheme.to_dict()["n_row"] == [-1, -2, -3, -4, -5]
    assert "n_row" not in HOXD70.to_dict()


def test_scoring_file_style_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.q"
    path.write_text("A C G T\n1 2 3 4\n1 2 3 4\n1 2 3 4\n1 2 3 4\n1 2 3 4\n")
    with pytest.raises(InputError, match="4 integers") as info:
        get_scheme(path)
    assert info.value.line == 6
    path.write_text("A C G T N\n1 2 3 4 5\n1 2 3 4 5\n1 2 3 4 5\n1 2 3 4 5\n")
    with pytest.raises(InputError, match="missing header or rows N"):
        get_scheme(path)


def _styles(tmp_path: Path, scheme: ScoringScheme) -> list[ScoringScheme]:
    o, e = scheme.gap_open, scheme.gap_extend
    out = []
    for name, text in (
        ("blastz.q", blastz_q_text(scheme.matrix)),
        ("axtscore.txt", axt_score_scheme_text(scheme.matrix, o, e)),
        ("lastz-n0.scores", lastz_n_text(scheme.matrix, o, e, 0)),
    ):
        (tmp_path / name).write_text(text)
        out.append(get_scheme(tmp_path / name))
    return out


@pytest.mark.parametrize(
    "name", ["kent/hg17.canFam1.testDog.net.axt", "kent/hg16.mm3.chrM.chainToAxt.axt"]
)
def test_file_styles_score_kent_net_blocks_exactly(
    realdata: Path, tmp_path: Path, name: str
) -> None:
    from embedhead.alignments.axt import parse_axt

    blocks = list(parse_axt(realdata / name))
    assert blocks
    for scheme in _styles(tmp_path, HOXD70):
        for block in blocks:
            target, query = block.rows
            assert score_alignment(target.text, query.text, scheme) == block.score, block.line


@pytest.mark.parametrize(
    "name", ["kent/hg19.susScr3.chrM.lastz.axt.gz", "kent/hg19.susScr3.chrM.blastz.axt.gz"]
)
def test_file_styles_score_lastz_blocks_exactly(realdata: Path, tmp_path: Path, name: str) -> None:
    from embedhead.alignments.axt import parse_axt

    (block,) = parse_axt(realdata / name)
    susscr3 = ScoringScheme("susScr3", SUSSCR3_Q, 400, 30)
    schemes = _styles(tmp_path, susscr3)
    (tmp_path / "lastz-n.scores").write_text(lastz_n_text(SUSSCR3_Q, 400, 30, -100))
    schemes.append(get_scheme(tmp_path / "lastz-n.scores"))  # these blocks hold no N
    for scheme in schemes:
        assert score_alignment(block.rows[0].text, block.rows[1].text, scheme) == block.score
