"""SentencePiece subwords (``tokenizer.type: sentencepiece``; Kudo and Richardson 2018).

    tokenizer:
      type: sentencepiece
      model_type: unigram      # or bpe
      vocab_size: 8000

With no ``model`` file, the model is learned from the training rows' sources and targets when the
data is prepared (``prepare.learn_tokenizer``), cached, copied into the run directory and carried
inside every checkpoint (``assets``). Text is taken as it is (no Unicode normalization) and spaces
become the piece marker "▁", so ``detokenize(tokenize(text))`` gives back the text, its runs of
whitespace made single spaces. Needs the ``subwords`` extra (``pip install 's2s-summarizer[subwords]'``).
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from s2s.errors import ConfigError
from s2s.extras import require
from s2s.options import PartOptions, PositiveInt, Range
from s2s.registry import TOKENIZERS
from s2s.tokenizers import TokenizerBase

MAX_SENTENCE_BYTES = 1 << 16  # learn from whole dialogues (SentencePiece skips longer ones; its default is 4192)


@dataclass
class SentencePieceOptions(PartOptions):
    model_type: Literal["unigram", "bpe"] = "unigram"  # unigram language model, or byte-pair merges
    vocab_size: PositiveInt = 8000  # pieces to learn, the special ones included
    character_coverage: Annotated[float, Range(0, 1, min_open=True)] = 0.9995  # share of characters kept whole
    model: str | None = None  # a learned model file; none: learned from the training rows when the data is prepared

    FILES: ClassVar[tuple[str, ...]] = ("model",)  # options that name a file the checkpoint carries


@TOKENIZERS.register("sentencepiece", options=SentencePieceOptions)
class SentencePieceTokenizer(TokenizerBase):
    """Subword pieces of a learned SentencePiece model; pickles as its options (workers reload the file)."""

    def __init__(self, cfg: SentencePieceOptions) -> None:
        super().__init__(cfg)
        if cfg.model is None:
            raise ConfigError(
                "tokenizer.model: no SentencePiece model yet; prepare the data first (s2s prepare CONFIG)"
            )
        if not Path(cfg.model).is_file():
            raise ConfigError(f"tokenizer.model: file not found: {cfg.model}")
        sentencepiece = require("sentencepiece", "subwords", "tokenizer.type: sentencepiece")
        self._processor = sentencepiece.SentencePieceProcessor(model_file=cfg.model)

    def tokenize(self, text: str) -> list[str]:
        return list(map(sys.intern, self._processor.encode(" ".join(text.split()), out_type=str)))

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens).replace("▁", " ").strip()

    @staticmethod
    def learn(cfg: SentencePieceOptions, texts: Iterable[str]) -> bytes:
        """A model learned from ``texts`` with ``cfg``'s options (the model file's bytes)."""
        sentencepiece = require("sentencepiece", "subwords", "tokenizer.type: sentencepiece")
        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=(" ".join(text.split()) for text in texts),
                model_writer=model,
                model_type=cfg.model_type,
                vocab_size=cfg.vocab_size,
                character_coverage=cfg.character_coverage,
                normalization_rule_name="identity",  # keep the text as it is, so detokenizing gives it back
                add_dummy_prefix=False,  # no "▁" before every text: Chinese has no spaces to mark
                remove_extra_whitespaces=False,
                max_sentence_length=MAX_SENTENCE_BYTES,
                minloglevel=2,  # warnings and errors only
            )
        except RuntimeError as err:
            raise ConfigError(_explain(str(err), cfg)) from None
        return model.getvalue()


def _explain(error: str, cfg: SentencePieceOptions) -> str:
    """SentencePiece's complaint about ``vocab_size`` in the terms of the options."""
    if most := re.search(r"value <= (\d+)", error):
        return (
            f"tokenizer.vocab_size: {cfg.vocab_size} pieces are more than the training text gives "
            f"(at most {most.group(1)}); lower it"
        )
    if least := re.search(r"smaller than required_chars\. \d+ vs (\d+)", error):
        return (
            f"tokenizer.vocab_size: {cfg.vocab_size} pieces are fewer than the {least.group(1)} that the special "
            f"pieces and the characters kept by character_coverage={cfg.character_coverage} need; raise it or lower "
            "tokenizer.character_coverage"
        )
    return f"tokenizer: SentencePiece could not learn a model ({error})"
