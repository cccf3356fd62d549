"""Token embeddings, optionally initialised from a word2vec/GloVe text file."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from s2s.errors import ConfigError, DataError
from s2s.options import Dropout, PositiveInt

log = logging.getLogger(__name__)


@dataclass
class TokenEmbeddingsConfig:
    """One embedding table (the extractive family's source tokens)."""

    size: PositiveInt = 128  # embedding size of the tokens
    dropout: Dropout = 0.0  # on the embedded tokens
    pretrained: str | None = None  # word2vec/GloVe text file; missing words keep random init
    freeze: bool = False  # keep the pretrained vectors fixed


@dataclass
class EmbeddingsConfig(TokenEmbeddingsConfig):
    """Source and target embeddings of an encoder-decoder."""

    size: PositiveInt = 128  # embedding size of source and target tokens
    share_source_target: bool = False  # one table for both sides (needs vocab.shared)
    tie_output: bool = False  # decoder input embedding = output projection weights


class Embeddings(nn.Module):
    """An embedding table (row 0 is padding, kept at zero) followed by dropout."""

    def __init__(self, vocab_size: int, size: int, dropout: float = 0.0, pad_id: int = 0) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, size, padding_idx=pad_id)
        nn.init.uniform_(self.table.weight, -0.1, 0.1)
        with torch.no_grad():
            self.table.weight[pad_id].zero_()
        self.dropout = nn.Dropout(dropout)
        self.size = size

    def forward(self, ids: Tensor) -> Tensor:
        return self.dropout(self.table(ids))  # (*ids.shape, size)


def load_pretrained(embeddings: Embeddings, path: str | Path, tokens: list[str], freeze: bool) -> int:
    """Copy the vectors of ``tokens`` found in a word2vec/GloVe text file; return how many.

    The file holds one ``word v1 v2 ... vD`` line per word, optionally after a word2vec
    ``count dim`` header. Words missing from the file keep their random initialisation.
    """
    index = {token: i for i, token in enumerate(tokens)}
    weight = embeddings.table.weight
    found = 0
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                parts = line.rstrip().split(" ")
                if line_no == 1 and len(parts) == 2:
                    continue  # word2vec header
                row = index.get(parts[0])
                if row is None:
                    continue
                if len(parts) - 1 != embeddings.size:
                    raise ConfigError(
                        f"{path}:{line_no}: vector of size {len(parts) - 1}, but "
                        f"model.embeddings.size is {embeddings.size}"
                    )
                with torch.no_grad():
                    weight[row] = torch.tensor([float(x) for x in parts[1:]])
                found += 1
    except FileNotFoundError:
        raise DataError(f"pretrained embeddings not found: {path} (model.embeddings.pretrained)") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 (byte {err.start})") from None
    weight.requires_grad_(not freeze)
    log.info("pretrained embeddings: %d of %d words found in %s", found, len(tokens), path)
    return found
