"""Tokenizers: text → tokens and back (registry ``TOKENIZERS``).

    tok = build_tokenizer(cfg.tokenizer)        # jieba | char | whitespace | sentencepiece (subwords.py)
    tok.tokenize("奔驰ML500 方向机重")           # ['奔驰', 'ML500', '方向机', '重']
    tok.detokenize(["方向机", "重"])             # '方向机重'

Tokens never contain whitespace and whitespace is never a token; token strings are interned,
so a corpus holds each distinct word once. A tokenizer pickles as its config (worker processes
rebuild it).
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from s2s.errors import ConfigError
from s2s.options import PartOptions
from s2s.registry import TOKENIZERS


class Tokenizer(Protocol):
    cfg: PartOptions

    def tokenize(self, text: str) -> list[str]: ...

    def detokenize(self, tokens: list[str]) -> str: ...


def build_tokenizer(cfg: PartOptions) -> Tokenizer:
    """The tokenizer named by ``cfg.type``."""
    return TOKENIZERS.build(cfg)


def tokenizer_files(cfg: PartOptions) -> dict[str, Path]:
    """The files the tokenizer's options name (its ``FILES``: a model, a user dictionary) that are set, by option."""
    return {name: Path(path) for name in getattr(cfg, "FILES", ()) if (path := getattr(cfg, name))}


class TokenizerBase:
    """Shared parts: the config, pickling as the config, joining without spaces."""

    def __init__(self, cfg: PartOptions) -> None:
        self.cfg = cfg

    def __reduce__(self):
        return type(self), (self.cfg,)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)


@dataclass
class JiebaOptions(PartOptions):
    user_dict: str | None = None  # a jieba user dictionary file (one word per line)

    FILES: ClassVar[tuple[str, ...]] = ("user_dict",)  # options that name a file the checkpoint carries


@TOKENIZERS.register("jieba", options=JiebaOptions)
class JiebaTokenizer(TokenizerBase):
    """Chinese words by jieba (default mode), with an optional user dictionary."""

    def __init__(self, cfg: JiebaOptions) -> None:
        super().__init__(cfg)
        import jieba

        jieba.setLogLevel(logging.WARNING)  # jieba logs its dictionary loading at INFO
        if cfg.user_dict is None:
            self._jieba = jieba.dt  # the process-wide default: its dictionary loads once
        else:
            if not Path(cfg.user_dict).is_file():
                raise ConfigError(f"tokenizer.user_dict: file not found: {cfg.user_dict}")
            self._jieba = jieba.Tokenizer()  # a user dictionary changes it: a private one
            self._jieba.load_userdict(cfg.user_dict)
        self._jieba.initialize()  # load the dictionary now, before worker processes fork

    def tokenize(self, text: str) -> list[str]:
        intern = sys.intern
        # str.split() drops whitespace tokens and splits the rare token with a space inside
        return [intern(t) for word in self._jieba.cut(text) for t in word.split()]


@dataclass
class CharOptions(PartOptions):
    keep_ascii_words: bool = True  # keep runs of ASCII letters/digits as one token


@TOKENIZERS.register("char", options=CharOptions)
class CharTokenizer(TokenizerBase):
    """Every non-whitespace character; optionally ASCII letter/digit runs stay whole."""

    _ASCII_WORDS = re.compile(r"[A-Za-z0-9]+|\S")
    _CHARS = re.compile(r"\S")

    def __init__(self, cfg: CharOptions) -> None:
        super().__init__(cfg)
        self._pattern = self._ASCII_WORDS if cfg.keep_ascii_words else self._CHARS

    def tokenize(self, text: str) -> list[str]:
        return list(map(sys.intern, self._pattern.findall(text)))


@TOKENIZERS.register("whitespace")
class WhitespaceTokenizer(TokenizerBase):
    """Text that is already segmented: tokens are separated by whitespace."""

    def tokenize(self, text: str) -> list[str]:
        return list(map(sys.intern, text.split()))

    def detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens)
