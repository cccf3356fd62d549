"""What every model family gives training, search and prediction, and how a model is built.

    model = build_model(cfg.model, src_vocab.tokens, tgt_vocab.tokens)  # the family of model.type
    out = model(batch, coverage=True)              # teacher forcing: per-token losses
    memory, state = model.encode(batch)            # then one step at a time:
    step = model.decode_step(prev_tokens, memory, state)

Memory and state are the family's own types; search only asks them for ``index_select(index)``
(rows of the batch: beam search expands, reorders and drops rows). The families, registered in
``MODELS``: ``s2s.rnn`` (embeddings, RNN encoder, bridge, attention decoder, pointer-generator),
``s2s.transformer``, ``s2s.extractive`` (picks source segments) and ``s2s.hybrid`` (a
pointer-generator that copies from the segments a selector picks).

Hooks with defaults, for families whose data or output differ from token in, token out. The
trainer, validation, search and ``Summarizer`` call only these, never ask which family it is:

- ``encode_corpus(corpus, src_vocab, tgt_vocab)``: the examples of a tokenized corpus, encoded
  once per corpus (an extractive family adds each source's segments and their oracle labels);
- ``collate(examples, indices)``: a batch of them (its own ``Batch`` subclass, if it needs more);
- ``loss_units(batch)``: what the summed loss is divided by (target tokens; segments);
- ``writes_tokens`` False and ``summarize(batch, options)``: a family that does not decode token
  by token gives its hypotheses in one pass (the ``select`` searcher calls it); their tokens are
  extended target ids as ever, so decoding them to words works unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s.batching import Batch, EncodedExample, collate, encode_corpus
from s2s.errors import ConfigError
from s2s.options import PartOptions
from s2s.registry import MODELS
from s2s.vocabulary import UNK_ID

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; only read by type checkers (python_requires >= 3.10)

    from s2s.config import PredictConfig
    from s2s.corpus import TokenizedCorpus
    from s2s.search import Hypothesis
    from s2s.vocabulary import Vocabulary

EPS = 1e-10  # inside every log of a probability: log(0) would be -inf, and its gradient NaN


@dataclass
class ForwardOutput:
    token_loss: Tensor  # (batch, units) loss per unit of loss_units (target token; segment), 0 at padding
    coverage_loss: Tensor | None  # (batch, tgt_len) coverage loss per token, 0 at padding
    attention: Tensor | None  # (batch, tgt_len, src_len); None for a family that attends to nothing
    p_gen: Tensor | None  # (batch, tgt_len) pointer-generator: P(generate), else None
    aux_loss: Tensor | None = None  # () a loss of the family's own, summed over the batch, weighted (hybrid: selector)


class Step(NamedTuple):
    log_probs: Tensor  # (batch, vocab + n_oov) next-token log-probabilities (extended ids)
    attention: Tensor  # (batch, src_len)
    p_gen: Tensor | None  # (batch,)
    state: Any  # the family's decoder state, with index_select


class BatchRows:
    """``index_select`` for dataclasses of tensors, lists of tensors (batch first), None and ints:
    a base for a family's memory and state types."""

    def index_select(self, index: Tensor) -> Self:
        """Rows ``index`` of the batch (beam search: expand, reorder, drop finished)."""

        def rows(value: Tensor | list[Tensor] | int | None) -> Tensor | list[Tensor] | int | None:
            if isinstance(value, Tensor):
                return value.index_select(0, index)
            if isinstance(value, list):
                return [t.index_select(0, index) for t in value]
            return value

        return type(self)(**{f.name: rows(getattr(self, f.name)) for f in fields(self)})


class Seq2SeqModel(nn.Module):
    """The interface of a family that writes its output token by token."""

    copies: bool = False  # outputs are extended ids (pointer-generator) that may point at source words
    writes_tokens: bool = True  # False: the output comes from ``summarize`` in one pass, not token by token
    coverage_from_step: int | None = None  # training step from which coverage is on; None: no coverage
    coverage_weight: float = 0.0  # weight of the coverage loss
    tgt_vocab_size: int

    def forward(
        self, batch: Batch, *, coverage: bool = False, label_smoothing: float = 0.0, sampling: float = 0.0
    ) -> ForwardOutput:
        """Teacher forcing over ``batch.tgt_in``; losses against ``batch.tgt_out(_ext)``. With
        ``sampling`` > 0 (scheduled sampling), each input after <s> is, with that probability, the
        model's own prediction of it instead (``sampled_positions``, ``as_input``)."""
        raise NotImplementedError

    def encode(self, batch: Batch, *, coverage: bool = False) -> tuple[Any, Any]:
        """The source of ``batch`` encoded (memory) and the decoder's first state."""
        raise NotImplementedError

    def decode_step(self, prev_tokens: Tensor, memory: Any, state: Any) -> Step:
        """prev_tokens (batch,) extended ids -> the next token's distribution and the new state."""
        raise NotImplementedError

    def encode_corpus(
        self, corpus: TokenizedCorpus, src_vocab: Vocabulary, tgt_vocab: Vocabulary
    ) -> list[EncodedExample]:
        """The rows of ``corpus`` as this family's examples, once per corpus (see the module docstring)."""
        return encode_corpus(corpus, src_vocab, tgt_vocab)

    def collate(self, examples: Sequence[EncodedExample], indices: Sequence[int]) -> Batch:
        """The batch of ``examples[i] for i in indices``, on the CPU."""
        return collate(examples, indices)

    def loss_units(self, batch: Batch) -> int:
        """What the summed loss of ``batch`` is divided by: its target tokens (read on the CPU)."""
        return int(batch.tgt_mask.sum())

    def summarize(self, batch: Batch, options: PredictConfig, return_attention: bool = False) -> list[list[Hypothesis]]:
        """A family with ``writes_tokens`` False: the hypotheses of every example of ``batch``, in one pass."""
        raise NotImplementedError(f"{type(self).__name__} writes its summaries token by token")

    def coverage_at(self, step: int) -> bool:
        """Whether coverage is on at training step ``step`` (and after training, at its last step)."""
        return self.coverage_from_step is not None and step >= self.coverage_from_step


def copy_log_probs(logits: Tensor, attention: Tensor, p_gen: Tensor, src_ext: Tensor, n_oov: int) -> Tensor:
    """The pointer-generator's output (See et al. 2017), for n positions: logits (n, vocab),
    attention (n, src_len), p_gen (n, 1), src_ext (n, src_len) -> log-probabilities (n, vocab + n_oov)
    log P(w) = log(p_gen P_vocab(w) + (1 - p_gen) sum_{i: x_i = w} a_i + EPS) over extended ids."""
    extended = F.pad(p_gen * F.softmax(logits, dim=-1), (0, n_oov))  # (n, vocab + n_oov)
    return torch.log(extended.scatter_add(1, src_ext, (1 - p_gen) * attention) + EPS)


def sampled_positions(tgt_in: Tensor, p: float) -> Tensor:
    """Scheduled sampling (Bengio et al. 2015): tgt_in (batch, tgt_len) -> (batch, tgt_len) bool, True
    where the decoder reads its own prediction instead of the gold token: each position after <s>
    with probability ``p``, drawn from torch's seeded generator (which resume restores)."""
    own = torch.rand(tgt_in.shape, device=tgt_in.device) < p
    own[:, 0] = False  # <s>
    return own


def as_input(tokens: Tensor, vocab_size: int) -> Tensor:
    """Predicted extended ids as decoder inputs: a copied source word goes in as <unk>."""
    return tokens.masked_fill(tokens >= vocab_size, UNK_ID)


def mix_predictions(tgt_in: Tensor, mask: Tensor, predicted: Tensor, p: float, vocab_size: int) -> Tensor:
    """Scheduled sampling for a parallel decoder's second pass: tgt_in (batch, tgt_len) the gold inputs,
    predicted (n_tokens,) the first pass's prediction at mask's positions (of the token after each
    input) -> the inputs with each one after <s>, with probability p, replaced by the prediction of it."""
    full = torch.zeros_like(tgt_in)  # (batch, tgt_len): full[:, t] predicted to follow tgt_in[:, t]
    full[mask] = predicted
    own = as_input(F.pad(full[:, :-1], (1, 0)), vocab_size)  # (batch, tgt_len): the prediction of each input
    return torch.where(sampled_positions(tgt_in, p), own, tgt_in)


def token_nll(log_probs: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """log_probs (n, vocab), target (n,) -> (n,) negative log-likelihoods, with label smoothing:
    (1 - e) nll - e mean(log_probs), which is cross_entropy's smoothing."""
    nll = -log_probs.gather(1, target.unsqueeze(1)).squeeze(1)
    if label_smoothing == 0.0:
        return nll
    return (1 - label_smoothing) * nll - label_smoothing * log_probs.mean(dim=-1)


def build_model(options: PartOptions, src_tokens: Sequence[str], tgt_tokens: Sequence[str]) -> Seq2SeqModel:
    """The model ``options`` (``cfg.model``) describe, for these vocabularies (token lists); a
    ``ConfigError`` when its weights do not fit in memory."""
    try:
        return MODELS.build(options, src_tokens=list(src_tokens), tgt_tokens=list(tgt_tokens))
    except (MemoryError, RuntimeError, TypeError, OverflowError) as err:  # torch: a size too large
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if not isinstance(err, MemoryError) and not re.search("allocate|overflow", reason, re.IGNORECASE):
            raise
        raise ConfigError(
            f"model: its weights do not fit in memory ({reason[:160]}); "
            f"lower the model's sizes (hidden sizes, embedding size, layers) or vocab.source_size/target_size"
        ) from None
