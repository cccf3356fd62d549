"""Tokenizers: outputs, whitespace handling, interning, user dictionaries, pickling."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from s2s.errors import ConfigError
from s2s.registry import TOKENIZERS
from s2s.tokenizers import build_tokenizer

TEXT = "奔驰ML500 方向机重，\u3000助力泵\t换了3.5L\xa0机油\n"


def options(kind: str, **values):
    """The options of tokenizer ``kind`` (an unknown kind lists the choices)."""
    return TOKENIZERS.options_type(kind)(type=kind, **values)


def tokenize(kind: str, text: str = TEXT, **values) -> list[str]:
    return build_tokenizer(options(kind, **values)).tokenize(text)


def test_jieba_words() -> None:
    tokens = tokenize("jieba")
    assert tokens == [
        "奔驰",
        "ML500",
        "方向机",
        "重",
        "，",
        "助力",
        "泵",
        "换",
        "了",
        "3.5",
        "L",
        "机油",
    ]


def test_char_tokenizer_with_and_without_ascii_words() -> None:
    expected = [*"奔驰", "ML500", *"方向机重，助力泵换了", "3", ".", "5L", *"机油"]
    assert tokenize("char") == expected
    plain = tokenize("char", keep_ascii_words=False)
    assert plain == [c for c in TEXT if not c.isspace()]


def test_whitespace_tokenizer() -> None:
    tok = build_tokenizer(options("whitespace"))
    assert tok.tokenize(" 方向机 重 \u3000 助力泵\n") == ["方向机", "重", "助力泵"]
    assert tok.detokenize(["方向机", "重"]) == "方向机 重"


@pytest.mark.parametrize("kind", ["jieba", "char", "whitespace"])
def test_no_whitespace_in_tokens_and_interned(kind: str) -> None:
    tokens = tokenize(kind)
    assert tokens and all(t and not any(c.isspace() for c in t) for t in tokens)
    again = tokenize(kind, "".join(list(TEXT)))  # an equal string, not the same object
    assert all(a is b for a, b in zip(tokens, again))
    assert tokenize(kind, "") == [] and tokenize(kind, " \n\t") == []


@pytest.mark.parametrize("kind", ["jieba", "char"])
def test_chinese_detokenizes_without_spaces(kind: str) -> None:
    tok = build_tokenizer(options(kind))
    assert tok.detokenize(tok.tokenize("方向机 重，助力泵")) == "方向机重，助力泵"


def test_jieba_user_dictionary(tmp_path: Path) -> None:
    assert "助力泵" not in tokenize("jieba")
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("助力泵 10 n\n", encoding="utf-8")
    assert "助力泵" in tokenize("jieba", user_dict=str(user_dict))
    assert "助力泵" not in tokenize("jieba")  # the default tokenizer is not changed
    with pytest.raises(ConfigError, match="tokenizer.user_dict: file not found"):
        tokenize("jieba", user_dict=str(tmp_path / "missing.txt"))


def test_registry_and_pickling() -> None:
    assert TOKENIZERS.names() == ["char", "jieba", "sentencepiece", "whitespace"]
    with pytest.raises(ConfigError, match="unknown tokenizer 'bpe'"):
        build_tokenizer(options("bpe"))
    tok = build_tokenizer(options("char", keep_ascii_words=False))
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.cfg == tok.cfg and clone.tokenize("ML5") == ["M", "L", "5"]
