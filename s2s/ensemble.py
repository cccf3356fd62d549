"""Ensembles: several trained models decoding as one (``s2s predict --checkpoint a.pt b.pt``).

    model, ckpt, coverage = load_models(["runs/a/best.pt", "runs/b/best.pt"])
    step = model.decode_step(prev_tokens, memory, state)   # the members' mean distribution

``Ensemble`` implements the model interface (``encode``, ``decode_step``, ``copies``) for any mix
of model families, so greedy and beam search run it unchanged: its memory and state are tuples of
the members', and at every step the next-token distribution is the mean of the members'
probabilities (not log-probabilities). Members that copy give distributions over extended ids
(target vocabulary + the batch's source words it lacks); as members share their vocabularies, an
extended id means the same word for every member, and a member that does not copy gives those
ids probability 0. Members with different vocabularies or tokenizers are refused, and so is a mix
of extractive members (``writes_tokens`` False: they pick segments, there is no distribution to
average) with members that write; extractive members alone are a ``SegmentEnsemble``
(``s2s.extractive``: the mean of their segment probabilities picks).
The first member encodes and collates the examples (``encode_corpus``, ``collate``) for all: a
member of a family with examples of its own (the hybrid's segments) must be first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s.batching import Batch, EncodedExample
from s2s.checkpoint import Checkpoint, vocabulary_mismatch
from s2s.errors import CheckpointError, ConfigError
from s2s.model import Seq2SeqModel, Step

if TYPE_CHECKING:
    from s2s.corpus import TokenizedCorpus
    from s2s.vocabulary import Vocabulary


@dataclass
class Members:
    """The members' memories (or states), one each, selected together."""

    parts: tuple[Any, ...]

    @property
    def mask(self) -> Tensor:
        """(batch, src_len) the source mask, the same for every member (search reads it)."""
        return self.parts[0].mask

    def index_select(self, index: Tensor) -> Members:
        return Members(tuple(part.index_select(index) for part in self.parts))


class Ensemble(Seq2SeqModel):
    """Models with one target vocabulary, decoding with the mean of their probabilities.

    ``coverage``: per member, whether it decodes with coverage when search asks for it (a
    member's training may have ended before its coverage came on)."""

    def __init__(self, models: Sequence[Seq2SeqModel], coverage: Sequence[bool] | None = None) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        sizes = {model.tgt_vocab_size for model in models}
        if len(sizes) > 1:
            raise ValueError(f"ensemble members have different target vocabulary sizes: {sorted(sizes)}")
        for model in models:
            if not model.writes_tokens:
                raise ConfigError(
                    f"ensemble: {type(model).__name__} picks segments: it ensembles only with other extractive models"
                )
            if type(model).encode_corpus not in (type(models[0]).encode_corpus, Seq2SeqModel.encode_corpus):
                raise ConfigError(f"ensemble: {type(model).__name__} encodes examples of its own: give it first")
        self.members = nn.ModuleList(models)
        self.member_coverage = list(coverage) if coverage is not None else [True] * len(models)
        self.tgt_vocab_size = sizes.pop()
        self.copies = any(model.copies for model in models)

    def encode_corpus(
        self, corpus: TokenizedCorpus, src_vocab: Vocabulary, tgt_vocab: Vocabulary
    ) -> list[EncodedExample]:
        return self.members[0].encode_corpus(corpus, src_vocab, tgt_vocab)

    def collate(self, examples: Sequence[EncodedExample], indices: Sequence[int]) -> Batch:
        return self.members[0].collate(examples, indices)

    def loss_units(self, batch: Batch) -> int:
        return self.members[0].loss_units(batch)

    def encode(self, batch: Batch, *, coverage: bool = False) -> tuple[Members, Members]:
        encoded = [
            model.encode(batch, coverage=coverage and on) for model, on in zip(self.members, self.member_coverage)
        ]
        return Members(tuple(memory for memory, _ in encoded)), Members(tuple(state for _, state in encoded))

    def decode_step(self, prev_tokens: Tensor, memory: Members, state: Members) -> Step:
        """prev_tokens (batch,) extended ids -> log of the members' mean next-token probabilities."""
        steps = [
            model.decode_step(prev_tokens, *parts) for model, parts in zip(self.members, zip(memory.parts, state.parts))
        ]
        width = max(step.log_probs.size(-1) for step in steps)  # vocab + n_oov if a member copies
        log_probs = torch.stack(
            [F.pad(step.log_probs, (0, width - step.log_probs.size(-1)), value=-math.inf) for step in steps]
        )  # (members, batch, width)
        mean = log_probs.logsumexp(dim=0) - math.log(len(steps))  # (batch, width)
        attention = torch.stack([step.attention for step in steps]).mean(dim=0)  # (batch, src_len)
        p_gens = [step.p_gen for step in steps if step.p_gen is not None]
        p_gen = torch.stack(p_gens).mean(dim=0) if p_gens else None  # (batch,) over the copying members
        return Step(mean, attention, p_gen, Members(tuple(step.state for step in steps)))


def load_models(paths: Sequence[str | Path]) -> tuple[Seq2SeqModel, Checkpoint, bool]:
    """The model of one checkpoint, or the ensemble of several; the first checkpoint (its config,
    vocabularies and tokenizer serve them all); and whether to decode with coverage."""
    if not paths:
        raise CheckpointError("no checkpoint given")
    checkpoints = [Checkpoint.load(path) for path in paths]
    first = checkpoints[0]
    for path, ckpt in zip(paths[1:], checkpoints[1:]):
        side = vocabulary_mismatch(ckpt, first)
        if side:
            raise CheckpointError(
                f"ensemble: {path} has another {side} vocabulary than {paths[0]}: the members of an ensemble "
                "must share their vocabularies (train them with the same data and vocab options)"
            )
        if ckpt.config.tokenizer != first.config.tokenizer:
            raise CheckpointError(f"ensemble: {path} has another tokenizer than {paths[0]}")
    models = [ckpt.build_model(path) for path, ckpt in zip(paths, checkpoints)]
    coverage = [ckpt.progress.coverage_on for ckpt in checkpoints]
    if len(models) == 1:
        return models[0], first, coverage[0]
    if not any(model.writes_tokens for model in models):
        from s2s.extractive import SegmentEnsemble

        return SegmentEnsemble(models).eval(), first, False
    return Ensemble(models, coverage).eval(), first, any(coverage)
