"""Character tokenizer with the official HyenaDNA ids, vectorised over bytes.

``tokenize(sequences) -> (ids LongTensor (B, Lmax), lengths LongTensor (B,))``: one token per
nucleotide, RIGHT padded with [PAD] (4); ``lengths[b]`` counts the real tokens of row b (with the
[SEP] when ``add_sep``). The model is causal, so right padding leaves real positions unchanged:
pool with ``arange(Lmax) < lengths[:, None]``.

Ids: [CLS]0 [SEP]1 [BOS]2 [MASK]3 [PAD]4 [RESERVED]5 [UNK]6 A7 C8 G9 T10 N11. Unlike the official
tokenizer (case-sensitive, so soft-masked text would become [UNK]), text is upper-cased first, and
IUPAC ambiguity codes (R Y S W K M B D H V, and U) become N. Any other character (digits, gaps,
'X', non-ASCII) is an InputError naming the sequence and character by default, or [UNK] with
``unknown="unk"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from embedhead.errors import InputError

SPECIAL_TOKENS: dict[str, int] = {
    "[CLS]": 0,
    "[SEP]": 1,
    "[BOS]": 2,
    "[MASK]": 3,
    "[PAD]": 4,
    "[RESERVED]": 5,
    "[UNK]": 6,
}
NUCLEOTIDES: dict[str, int] = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
VOCAB: dict[str, int] = {**SPECIAL_TOKENS, **NUCLEOTIDES}
PAD_ID = 4
SEP_ID = 1
UNK_ID = 6
IUPAC_TO_N = "RYSWKMBDHVU"

_INVALID = -1


def _build_table() -> np.ndarray:
    """Byte -> id lookup table (256,), _INVALID for characters that are no nucleotide code."""
    table = np.full(256, _INVALID, dtype=np.int64)
    for char, token in NUCLEOTIDES.items():
        table[ord(char)] = table[ord(char.lower())] = token
    for char in IUPAC_TO_N:
        table[ord(char)] = table[ord(char.lower())] = NUCLEOTIDES["N"]
    return table


_TABLE = _build_table()


def tokenizer_info(*, add_sep: bool = False, unknown: str = "error") -> dict[str, Any]:
    """The description stored with embeddings (store attributes)."""
    return {
        "name": "hyenadna-char",
        "vocab": dict(VOCAB),
        "pad_id": PAD_ID,
        "padding_side": "right",
        "add_sep": add_sep,
        "uppercase": True,
        "iupac_to": "N",
        "unknown": unknown,
    }


TOKENIZER_INFO: dict[str, Any] = tokenizer_info()


def _locate_bad(sequences: Sequence[str], codes: np.ndarray, offsets: np.ndarray) -> InputError:
    position = int(np.flatnonzero(codes == _INVALID)[0])
    index = int(np.searchsorted(offsets, position, side="right") - 1)
    column = position - int(offsets[index])
    char = sequences[index][column]
    return InputError(
        f"sequence {index}: character {char!r} at position {column + 1} is no nucleotide code "
        "(expected A C G T N, IUPAC codes, lower or upper case)"
    )


def tokenize(
    sequences: Sequence[str],
    *,
    add_sep: bool = False,
    unknown: Literal["error", "unk"] = "error",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (B, Lmax) right-padded with [PAD] 4, and lengths (B,), both int64.

    ``add_sep`` appends [SEP] (1) to every sequence as the official tokenizer does (counted in
    ``lengths``). ``unknown="error"`` (default) raises InputError on characters that are no
    nucleotide code; ``"unk"`` maps them to [UNK] (6).
    """
    if isinstance(sequences, str):
        raise InputError("tokenize expects a sequence of strings, not one string")
    if unknown not in ("error", "unk"):
        raise InputError(f"unknown must be 'error' or 'unk', got {unknown!r}")
    n = len(sequences)
    raw_lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(raw_lengths, out=offsets[1:])
    joined = "".join(sequences)
    try:
        data = joined.encode("ascii")
    except UnicodeEncodeError:
        data = joined.encode("ascii", errors="replace")  # one '?' per character: invalid
    codes = _TABLE[np.frombuffer(data, dtype=np.uint8)]
    if codes.size and int(codes.min()) == _INVALID:
        if unknown == "error":
            raise _locate_bad(sequences, codes, offsets)
        codes = np.where(codes == _INVALID, UNK_ID, codes)
    lengths = raw_lengths + (1 if add_sep else 0)
    width = int(lengths.max()) if n else 0
    ids = np.full((n, width), PAD_ID, dtype=np.int64)
    columns = np.arange(width)
    ids[columns[None, :] < raw_lengths[:, None]] = codes
    if add_sep:
        ids[np.arange(n), raw_lengths] = SEP_ID
    return torch.from_numpy(ids), torch.from_numpy(lengths)
