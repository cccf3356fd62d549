"""What every model family gives training, search and prediction, and how a model is built.

    model = build_model(cfg.model, src_vocab.tokens, tgt_vocab.tokens)  # the family of model.type
    out = model(batch, coverage=True)              # teacher forcing: per-token losses
    memory, state = model.encode(batch)            # then one step at a time:
    step = model.decode_step(prev_tokens, memory, state)

Memory and state are the family's own types; search only asks them for ``index_select(index)``
(rows of the batch: beam search expands, reorders and drops rows). The families: ``s2s.rnn``
(embeddings, RNN encoder, bridge, attention decoder, pointer-generator), registered in ``MODELS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from torch import Tensor, nn

from s2s.batching import Batch
from s2s.options import PartOptions
from s2s.registry import MODELS


@dataclass
class ForwardOutput:
    token_loss: Tensor  # (batch, tgt_len) negative log-likelihood per target token, 0 at padding
    coverage_loss: Tensor | None  # (batch, tgt_len) coverage loss per token, 0 at padding
    attention: Tensor  # (batch, tgt_len, src_len)
    p_gen: Tensor | None  # (batch, tgt_len) pointer-generator: P(generate), else None


class Step(NamedTuple):
    log_probs: Tensor  # (batch, vocab + n_oov) next-token log-probabilities (extended ids)
    attention: Tensor  # (batch, src_len)
    p_gen: Tensor | None  # (batch,)
    state: Any  # the family's decoder state, with index_select


class Seq2SeqModel(nn.Module):
    """The interface of a family that writes its output token by token."""

    copies: bool = False  # outputs are extended ids (pointer-generator) that may point at source words
    coverage_from_step: int | None = None  # training step from which coverage is on; None: no coverage
    coverage_weight: float = 0.0  # weight of the coverage loss
    tgt_vocab_size: int

    def forward(self, batch: Batch, *, coverage: bool = False, label_smoothing: float = 0.0) -> ForwardOutput:
        """Teacher forcing over ``batch.tgt_in``; losses against ``batch.tgt_out(_ext)``."""
        raise NotImplementedError

    def encode(self, batch: Batch, *, coverage: bool = False) -> tuple[Any, Any]:
        """The source of ``batch`` encoded (memory) and the decoder's first state."""
        raise NotImplementedError

    def decode_step(self, prev_tokens: Tensor, memory: Any, state: Any) -> Step:
        """prev_tokens (batch,) extended ids -> the next token's distribution and the new state."""
        raise NotImplementedError

    def coverage_at(self, step: int) -> bool:
        """Whether coverage is on at training step ``step`` (and after training, at its last step)."""
        return self.coverage_from_step is not None and step >= self.coverage_from_step


def build_model(options: PartOptions, src_tokens: Sequence[str], tgt_tokens: Sequence[str]) -> Seq2SeqModel:
    """The model ``options`` (``cfg.model``) describe, for these vocabularies (token lists)."""
    return MODELS.build(options, src_tokens=list(src_tokens), tgt_tokens=list(tgt_tokens))
