"""The bottom-up hybrid (``model.type: hybrid``): a content selector narrows what the
pointer-generator may attend to and copy (Gehrmann et al. 2018, with segments as the units).

    selector:  SummaRuNNer over the source's segments (``s2s.extractive.SegmentScorer``), sharing
               the source embeddings with the encoder: P(segment j belongs in the summary)
    mask:      the tokens of the ``attend_segments`` most probable segments
    decoder:   the RNN family's encoder-decoder (``s2s.rnn``), unchanged, whose attention, and so
               whose copy distribution, reads only the masked tokens; the encoder still reads the
               whole source, so the selected turns are encoded in the context of the others

Why bottom-up and not select-then-rewrite (Chen and Bansal 2018): it is one model, one pass and
one checkpoint, the selection is only a narrower attention mask (``Seq2Seq.encode(attend=...)``),
so greedy and beam search, coverage, copying and the heatmaps work unchanged, and the rewriter
keeps the context of the turns it does not copy from. Chen and Bansal's rewriter reads each
picked sentence alone and learns which to pick by reinforcement learning, which a thousand
training rows cannot feed. What the pointer-generator gets wrong on this data is where it copies
from (the right words of several turns stitched together, docs/quality.md); restricting it to
the turns a selector trusts addresses that directly.

Training adds the selector's binary cross-entropy against the greedy-oracle labels (``aux_loss``,
weighted by ``selector_weight``, per target token as the NLL) and masks the attention with
``train_mask``: the oracle's segments (``oracle``), those and the selector's own picks
(``union``: the decoder learns to copy from the right segment among the kind of distractors it
will meet), or nothing (``full``: Gehrmann et al. train the abstractor on whole sources and mask
only when decoding). A row whose mask would be empty (no segment labelled) attends to everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from s2s.batching import EncodedExample
from s2s.decoders import DecoderState, Memory
from s2s.extractive import (
    SegmentBatch,
    SegmentedExample,
    SegmentScorer,
    SelectorOptions,
    collate_segmented,
    encode_segmented,
    segment_loss,
)
from s2s.model import ForwardOutput
from s2s.options import NonNegativeFloat, OptionError, PositiveInt
from s2s.registry import MODELS
from s2s.rnn import RNNModelOptions, Seq2Seq, with_pretrained

if TYPE_CHECKING:
    from s2s.corpus import TokenizedCorpus
    from s2s.vocabulary import Vocabulary


@dataclass
class HybridOptions(RNNModelOptions):
    """``model.*`` of the hybrid: the RNN family's options, and its selector's."""

    selector: SelectorOptions = field(default_factory=SelectorOptions)  # the content selector (SummaRuNNer)
    selector_weight: NonNegativeFloat = 1.0  # weight of the selector's loss beside the decoder's
    train_mask: Literal["oracle", "union", "full"] = "union"  # what the decoder attends to in training
    attend_segments: PositiveInt = 2  # the most probable segments whose tokens the decoder reads

    def validate(self, root: Any) -> None:
        super().validate(root)
        if root is not None and root.predict.search == "select":
            raise OptionError("type", "hybrid writes its summaries token by token: set predict.search: greedy or beam")


class BottomUp(Seq2Seq):
    """A pointer-generator that attends only to the segments its selector picks (module docstring)."""

    def __init__(self, cfg: HybridOptions, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__(cfg, src_vocab_size, tgt_vocab_size)
        self.options = cfg
        self.selector = SegmentScorer(cfg.selector, self.src_embeddings)

    def encode_corpus(
        self, corpus: TokenizedCorpus, src_vocab: Vocabulary, tgt_vocab: Vocabulary
    ) -> list[SegmentedExample]:
        return encode_segmented(corpus, src_vocab, tgt_vocab, self.options.selector)

    def collate(self, examples: Sequence[EncodedExample], indices: Sequence[int]) -> SegmentBatch:
        return collate_segmented(examples, indices)

    def forward(
        self,
        batch: SegmentBatch,
        *,
        coverage: bool = False,
        label_smoothing: float = 0.0,
        sampling: float = 0.0,
        attend: Tensor | None = None,
    ) -> ForwardOutput:
        logits = self.selector(batch)  # (batch, S)
        picked = self.predicted(batch, logits)
        if self.training and self.options.train_mask != "full":
            oracle = batch.labels > 0.5  # (batch, S)
            picked = oracle if self.options.train_mask == "oracle" else oracle | picked
        if self.training and self.options.train_mask == "full":
            picked = batch.segment_mask
        attend = attend_mask(batch, picked)
        smoothing = label_smoothing
        out = super().forward(batch, coverage=coverage, label_smoothing=smoothing, sampling=sampling, attend=attend)
        if batch.labels is not None:
            out.aux_loss = self.options.selector_weight * segment_loss(logits, batch.labels, label_smoothing).sum()
        return out

    def encode(
        self, batch: SegmentBatch, *, coverage: bool = False, attend: Tensor | None = None
    ) -> tuple[Memory, DecoderState]:
        """The source encoded; attention reads the selected segments (``attend``, if given, instead)."""
        if attend is None:
            attend = attend_mask(batch, self.predicted(batch, self.selector(batch)))
        return super().encode(batch, coverage=coverage, attend=attend)

    def predicted(self, batch: SegmentBatch, logits: Tensor) -> Tensor:
        """(batch, S) bool: the ``attend_segments`` most probable real segments of each example."""
        k = min(self.options.attend_segments, logits.size(1))
        best = logits.masked_fill(~batch.segment_mask, float("-inf")).topk(k, dim=1).indices  # (batch, k)
        picked = torch.zeros_like(batch.segment_mask).scatter_(1, best, True)
        return picked & batch.segment_mask


def attend_mask(batch: SegmentBatch, picked: Tensor) -> Tensor:
    """(batch, src_len) bool: the tokens of the ``picked`` (batch, S) segments; every real token
    where a row picked none."""
    position = torch.arange(batch.src.size(1), device=batch.src.device)  # (src_len,)
    spans = batch.segment_spans  # (batch, S, 2)
    inside = (position >= spans[..., :1]) & (position < spans[..., 1:])  # (batch, S, src_len)
    mask = (inside & picked.unsqueeze(-1)).any(1)  # (batch, src_len)
    return torch.where(mask.any(1, keepdim=True), mask, batch.src_mask)


@MODELS.register("hybrid", options=HybridOptions)
def hybrid_model(cfg: HybridOptions, *, src_tokens: list[str], tgt_tokens: list[str]) -> BottomUp:
    """Bottom-up: a pointer-generator copying only from the segments a SummaRuNNer selector picks."""
    return with_pretrained(BottomUp(cfg, len(src_tokens), len(tgt_tokens)), cfg.embeddings, src_tokens, tgt_tokens)
