"""The character tokenizer: official ids, case, IUPAC codes, unknown characters, padding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.backbone.tokenizer import PAD_ID, TOKENIZER_INFO, VOCAB, tokenize
from embedhead.errors import InputError

OFFICIAL = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}


def _naive(seq: str, unknown_to_unk: bool) -> list[int]:
    """Per-character reference: upper-case, IUPAC -> N, else [UNK]."""
    out = []
    for char in seq:
        upper = char.upper() if char.isascii() else char
        if upper in OFFICIAL:
            out.append(OFFICIAL[upper])
        elif upper in "RYSWKMBDHVU":
            out.append(11)
        else:
            assert unknown_to_unk
            out.append(6)
    return out


def test_official_ids():
    assert VOCAB == {
        "[CLS]": 0,
        "[SEP]": 1,
        "[BOS]": 2,
        "[MASK]": 3,
        "[PAD]": 4,
        "[RESERVED]": 5,
        "[UNK]": 6,
        "A": 7,
        "C": 8,
        "G": 9,
        "T": 10,
        "N": 11,
    }
    ids, lengths = tokenize(["ACGTN"])
    assert ids.tolist() == [[7, 8, 9, 10, 11]] and lengths.tolist() == [5]
    assert ids.dtype == torch.int64 and lengths.dtype == torch.int64


def test_soft_masked_text_is_upper_cased_and_iupac_becomes_n():
    ids, _ = tokenize(["acgtn", "RYSWKMBDHVU", "rysw"])
    assert ids[0, :5].tolist() == [7, 8, 9, 10, 11]
    assert ids[1].tolist() == [11] * 11
    assert ids[2, :4].tolist() == [11] * 4


def test_right_padding_and_lengths():
    ids, lengths = tokenize(["ACG", "", "A"])
    assert ids.tolist() == [[7, 8, 9], [PAD_ID] * 3, [7, PAD_ID, PAD_ID]]
    assert lengths.tolist() == [3, 0, 1]
    ids, lengths = tokenize(["ACG", "A"], add_sep=True)
    assert ids.tolist() == [[7, 8, 9, 1], [7, 1, PAD_ID, PAD_ID]]
    assert lengths.tolist() == [4, 2]


def test_unknown_characters_error_names_sequence_and_character():
    with pytest.raises(InputError, match=r"sequence 1: character 'X' at position 3"):
        tokenize(["ACGT", "ACXT"])
    with pytest.raises(InputError, match="'é'"):
        tokenize(["Aé"])
    ids, _ = tokenize(["AC-T", "é?"], unknown="unk")
    assert ids.tolist() == [[7, 8, 6, 10], [6, 6, PAD_ID, PAD_ID]]


def test_empty_batch_and_single_string_argument():
    ids, lengths = tokenize([])
    assert ids.shape == (0, 0) and lengths.shape == (0,)
    with pytest.raises(InputError, match="not one string"):
        tokenize("ACGT")  # type: ignore[arg-type]


def test_tokenizer_info_describes_the_scheme():
    assert TOKENIZER_INFO["pad_id"] == PAD_ID and TOKENIZER_INFO["padding_side"] == "right"
    assert TOKENIZER_INFO["vocab"] == VOCAB and TOKENIZER_INFO["add_sep"] is False


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="ACGTNacgtnRYKMrykmXZ-.#é ", max_size=40), max_size=6), st.booleans()
)
def test_matches_a_per_character_reference(sequences, add_sep):
    ids, lengths = tokenize(sequences, add_sep=add_sep, unknown="unk")
    width = max((len(s) + add_sep for s in sequences), default=0)
    assert ids.shape == (len(sequences), width)
    for row, seq in enumerate(sequences):
        expected = _naive(seq, True) + ([1] if add_sep else [])
        assert lengths[row] == len(expected)
        assert ids[row].tolist() == expected + [PAD_ID] * (width - len(expected))
