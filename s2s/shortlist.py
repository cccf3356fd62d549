"""A vocabulary shortlist for the output layer (as Marian's lexical shortlist): ``predict.shortlist: K``.

Per batch, the output layer computes only the candidates: the K most frequent target words (the
first K ids: a vocabulary built by s2s is in frequency order, the specials first) and the source's
words through the copy ids (the source words the target vocabulary has). The search runs in the
shortlist's ids, a one-to-one renaming of the candidates kept in ascending order (the specials keep
their ids, so the searchers' constraints read as ever, and so does n-gram blocking), and the
hypotheses' tokens are renamed back. When K covers the vocabulary, the candidates are every id in
order: the same numbers as without a shortlist.

    hypotheses = shortlisted_search(searcher, model, batch, cfg, return_attention=False, coverage=False)

A family takes part through one hook: its decoding step computes the logits with
``output_logits(layer, hidden, memory.shortlist)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s.errors import ConfigError
from s2s.model import Seq2SeqModel, Step
from s2s.quantize import is_quantized
from s2s.vocabulary import SPECIALS

if TYPE_CHECKING:
    from s2s.batching import Batch
    from s2s.config import PredictConfig
    from s2s.search import Hypothesis


class Shortlist:
    """The target words one batch's output layer computes."""

    def __init__(self, ids: Tensor, vocab_size: int, n_oov: int) -> None:
        """``ids`` (n,): ascending target ids, the specials among them. Shortlist id j < n is target
        id ``ids[j]``; n + k is the batch's k-th copied out-of-vocabulary word, extended id V + k."""
        self.ids = ids
        oov = torch.arange(vocab_size, vocab_size + n_oov, device=ids.device)
        self.extended = torch.cat([ids, oov])  # (n + n_oov,) shortlist id -> extended id
        self.position = torch.zeros(vocab_size + n_oov, dtype=torch.long, device=ids.device)
        self.position[self.extended] = torch.arange(len(self.extended), device=ids.device)  # the inverse
        self._layers: dict[int, Callable[[Tensor], Tensor]] = {}

    @classmethod
    def of_batch(cls, batch: Batch, size: int, vocab_size: int) -> Shortlist:
        """The candidates of ``batch``: the first ``size`` ids (the specials at least) and the source's
        in-vocabulary words."""
        frequent = torch.arange(min(max(size, len(SPECIALS)), vocab_size), device=batch.src_ext.device)
        source = batch.src_ext[batch.src_mask & (batch.src_ext < vocab_size)]  # (n_words,) copy ids in the vocabulary
        return cls(torch.unique(torch.cat([frequent, source])), vocab_size, batch.max_oovs)  # sorted

    def to_shortlist(self, extended: Tensor) -> Tensor:
        """Extended ids (any shape) of candidates -> shortlist ids."""
        return self.position[extended]

    def layer(self, output: nn.Module) -> Callable[[Tensor], Tensor]:
        """``output`` (a linear layer over the target vocabulary, fp32 or int8) restricted to the
        candidates' rows, made once per batch and layer."""
        key = id(output)
        if key not in self._layers:
            self._layers[key] = _restricted(output, self.ids)
        return self._layers[key]


def output_logits(output: nn.Module, hidden: Tensor, shortlist: Shortlist | None) -> Tensor:
    """The output layer's logits: hidden (..., size) -> (..., vocab), or (..., n) over a shortlist's candidates."""
    return output(hidden) if shortlist is None else shortlist.layer(output)(hidden)


def _restricted(output: nn.Module, ids: Tensor) -> Callable[[Tensor], Tensor]:
    """The rows ``ids`` of a linear layer as a function of its input. An int8 layer keeps its int8
    rows and their per-row scales, so its candidates' logits are the unrestricted layer's."""
    if is_quantized(output):
        weight = output.weight()  # (vocab, size) qint8, per-channel
        bias = output.bias()
        rows = torch._make_per_channel_quantized_tensor(
            weight.int_repr()[ids],
            weight.q_per_channel_scales()[ids],
            weight.q_per_channel_zero_points()[ids],
            0,
        )
        restricted = torch.ao.nn.quantized.dynamic.Linear(output.in_features, len(ids), dtype=torch.qint8)
        restricted.set_weight_bias(rows, None if bias is None else bias[ids])
        return restricted
    weight, bias = output.weight[ids], None if output.bias is None else output.bias[ids]
    return lambda hidden: F.linear(hidden, weight, bias)


class ShortlistedModel:
    """``model`` decoding in one batch's shortlist ids: what the searchers see of it."""

    def __init__(self, model: Seq2SeqModel, shortlist: Shortlist) -> None:
        self.model, self.shortlist, self.copies = model, shortlist, model.copies

    def encode(self, batch: Batch, *, coverage: bool = False) -> tuple[Any, Any]:
        """The batch encoded with its copy ids renamed; the memory carries the shortlist to the output layer."""
        renamed = dataclasses.replace(batch, src_ext=self.shortlist.to_shortlist(batch.src_ext))
        memory, state = self.model.encode(renamed, coverage=coverage)
        if "shortlist" not in {f.name for f in dataclasses.fields(memory)}:
            raise ConfigError(
                f"predict.shortlist: {type(self.model).__name__} (an ensemble, say) has no output-layer hook for "
                "a shortlist; set predict.shortlist=0"
            )
        return dataclasses.replace(memory, shortlist=self.shortlist), state

    def decode_step(self, prev_tokens: Tensor, memory: Any, state: Any) -> Step:
        """prev_tokens (rows,) shortlist ids -> log-probabilities over the shortlist (rows, n + n_oov)."""
        return self.model.decode_step(self.shortlist.extended[prev_tokens], memory, state)


def shortlisted_search(
    searcher: Callable[..., list[list[Hypothesis]]],
    model: Seq2SeqModel,
    batch: Batch,
    cfg: PredictConfig,
    **options: Any,
) -> list[list[Hypothesis]]:
    """``searcher`` over ``batch`` with the output layer restricted to the batch's shortlist of
    ``cfg.shortlist`` words; the hypotheses in extended target ids, as without."""
    if not model.writes_tokens:
        raise ConfigError(
            "predict.shortlist: this model picks source segments (model.type: extractive) and has no target "
            "vocabulary to shortlist; set predict.shortlist=0"
        )
    shortlist = Shortlist.of_batch(batch, cfg.shortlist, model.tgt_vocab_size)
    found = searcher(ShortlistedModel(model, shortlist), batch, cfg, **options)
    for hypotheses in found:
        for hypothesis in hypotheses:
            hypothesis.tokens = shortlist.extended[torch.tensor(hypothesis.tokens, dtype=torch.long)].tolist()
    return found
