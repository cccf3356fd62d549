"""Seq2Seq: embeddings + encoder + bridge + attention decoder, built by name from the config.

Two entry points:
- ``forward(batch)``: teacher-forced training; per-token losses, attention and p_gen.
- ``encode(batch)`` then ``decode_step(...)`` repeatedly: incremental decoding for search;
  ``Memory`` and ``DecoderState`` reorder by beam index with ``index_select``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

from torch import Tensor, nn

from s2s.batching import Batch
from s2s.bridge import Bridge
from s2s.config import ModelConfig
from s2s.decoders import DECODERS, DecoderState, Memory
from s2s.embeddings import Embeddings, load_pretrained
from s2s.encoders import ENCODERS
from s2s.vocabulary import PAD_ID, UNK_ID


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
    state: DecoderState


class Seq2Seq(nn.Module):
    def __init__(self, cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        emb = cfg.embeddings
        self.src_embeddings = Embeddings(src_vocab_size, emb.size, emb.dropout, PAD_ID)
        self.tgt_embeddings = (
            self.src_embeddings
            if emb.share_source_target
            else Embeddings(tgt_vocab_size, emb.size, emb.dropout, PAD_ID)
        )
        self.encoder = ENCODERS.build(cfg.encoder, input_size=emb.size)
        self.bridge = Bridge(
            cfg.bridge,
            encoder_hidden=self.encoder.hidden_size,
            encoder_layers=self.encoder.num_layers,
            encoder_directions=self.encoder.num_directions,
            decoder_hidden=cfg.decoder.hidden_size,
            decoder_layers=cfg.decoder.num_layers,
            decoder_is_lstm=cfg.decoder.rnn == "lstm",
        )
        self.decoder = DECODERS.build(
            cfg.decoder,
            attention=cfg.attention,
            embeddings=self.tgt_embeddings,
            key_size=self.encoder.output_size,
            vocab_size=tgt_vocab_size,
            tie_output=emb.tie_output,
        )
        self.tgt_vocab_size = tgt_vocab_size

    @property
    def copies(self) -> bool:
        """Whether outputs are extended ids (pointer-generator) that may point at source words."""
        return self.decoder.copies

    def set_coverage(self, on: bool) -> None:
        """Switch coverage on (from ``coverage_from_step``); no effect on models without it."""
        self.decoder.coverage_on = on and self.decoder.has_coverage

    def encode(self, batch: Batch) -> tuple[Memory, DecoderState]:
        """The batch's source (its src, src_lengths, src_mask, src_ext and max_oovs), encoded."""
        keys, final = self.encoder(self.src_embeddings(batch.src), batch.src_lengths)
        memory = Memory(keys, self.decoder.attention.precompute(keys), batch.src_mask, batch.src_ext, batch.max_oovs)
        return memory, self.decoder.initial_state(self.bridge(final), memory)

    def forward(self, batch: Batch, label_smoothing: float = 0.0) -> ForwardOutput:
        """Teacher forcing over ``batch.tgt_in``; losses against ``batch.tgt_out(_ext)``."""
        memory, state = self.encode(batch)
        out = self.decoder(batch.tgt_in, memory, state)
        mask = batch.tgt_mask  # (batch, tgt_len)
        target = batch.tgt_out_ext if self.copies else batch.tgt_out
        token_loss = out.hidden.new_zeros(mask.shape)
        token_loss[mask] = self.decoder.token_loss(out, memory, target, mask, label_smoothing)
        coverage_loss = out.coverage_loss.masked_fill(~mask, 0.0) if out.coverage_loss is not None else None
        p_gen = out.p_gen.squeeze(-1) if out.p_gen is not None else None
        return ForwardOutput(token_loss, coverage_loss, out.attention, p_gen)

    def decode_step(self, prev_tokens: Tensor, memory: Memory, state: DecoderState) -> Step:
        """prev_tokens (batch,) extended ids; a copied word fed back in becomes <unk>."""
        prev_tokens = prev_tokens.masked_fill(prev_tokens >= self.tgt_vocab_size, UNK_ID)
        out, state = self.decoder.step(self.tgt_embeddings(prev_tokens), memory, state)
        log_probs = self.decoder.log_probs(out, memory).squeeze(1)  # (batch, vocab + n_oov)
        p_gen = out.p_gen.view(-1) if out.p_gen is not None else None
        return Step(log_probs, out.attention.squeeze(1), p_gen, state)


def build_model(cfg: ModelConfig, src_tokens: Sequence[str], tgt_tokens: Sequence[str]) -> Seq2Seq:
    """A model for these vocabularies (token lists), with pretrained embeddings if configured."""
    model = Seq2Seq(cfg, len(src_tokens), len(tgt_tokens))
    if cfg.embeddings.pretrained:
        freeze = cfg.embeddings.freeze
        load_pretrained(model.src_embeddings, cfg.embeddings.pretrained, list(src_tokens), freeze)
        if model.tgt_embeddings is not model.src_embeddings:
            load_pretrained(model.tgt_embeddings, cfg.embeddings.pretrained, list(tgt_tokens), freeze)
    return model
