"""Vocabulary: building, save/load round trip, encoding, pointer-generator extended ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2s.errors import DataError
from s2s.vocabulary import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK, UNK_ID, Vocabulary

SEQUENCES = [["b", "a", "c"], ["a", "b", "d"], ["a", "e", "<unk>"]]


def test_specials_and_ids() -> None:
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    vocab = Vocabulary(["x", "<s>", "y"])
    assert vocab.tokens == [*SPECIALS, "x", "y"] and len(vocab) == 6
    assert vocab["x"] == 4 and vocab.lookup("nope") == UNK_ID and "x" in vocab and "nope" not in vocab
    with pytest.raises(ValueError, match="'x' is in the vocabulary twice"):
        Vocabulary(["x", "x"])


def test_build_by_frequency_then_token_and_limits() -> None:
    vocab = Vocabulary.build(SEQUENCES)
    assert vocab.tokens[4:] == ["a", "b", "c", "d", "e"]  # a:3, b:2, then ties by string
    assert Vocabulary.build(SEQUENCES, max_size=2).tokens[4:] == ["a", "b"]
    assert Vocabulary.build(SEQUENCES, min_freq=2).tokens[4:] == ["a", "b"]
    assert Vocabulary.build(reversed(SEQUENCES)) == vocab  # order of the data does not matter


def test_save_load_round_trip(tmp_path: Path) -> None:
    vocab = Vocabulary.build(SEQUENCES + [["汽车", "ＡＢ", "a\u200bb"]])
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    assert path.read_text(encoding="utf-8").split("\n")[:5] == [*SPECIALS, "a"]
    assert Vocabulary.load(path) == vocab and Vocabulary.load(path).tokens == vocab.tokens
    path.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match="not a vocabulary file"):
        Vocabulary.load(path)
    with pytest.raises(DataError, match="not found"):
        Vocabulary.load(tmp_path / "missing.txt")


def test_encode_decode() -> None:
    vocab = Vocabulary(["a", "b"])
    assert vocab.encode(["a", "z", "b"]) == [4, UNK_ID, 5]
    assert vocab.decode([4, UNK_ID, 5]) == ["a", UNK, "b"]


def test_extended_ids_for_copying() -> None:
    vocab = Vocabulary(["a", "b"])  # 6 tokens
    ids, oovs = vocab.encode_extended(["a", "x", "b", "y", "x"])
    assert ids == [4, 6, 5, 7, 6] and oovs == ["x", "y"]  # a repeated OOV keeps one id
    assert vocab.encode_with_oovs(["y", "a", "z", "x"], oovs) == [7, 4, UNK_ID, 6]
    assert vocab.decode([7, 4, 6], oovs) == ["y", "a", "x"]
    assert vocab.encode_extended([]) == ([], [])
