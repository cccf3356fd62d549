"""The RNN family (``model.type: rnn``): embeddings + encoder + bridge + attention decoder.

    encoder:  the embedded source through an LSTM/GRU (encoders.py)   -> keys, final state
    bridge:   the encoder's final state -> the decoder's first state  (bridge.py)
    decoder:  an LSTM/GRU that attends to the keys at every step, optionally copying source
              words (the pointer-generator) and tracking coverage     (decoders.py, attention.py)

Each part is built by name from the model's options (``model.encoder.type`` and so on), so a
part of your own registers beside the built-in ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor

from s2s.batching import Batch
from s2s.bridge import Bridge
from s2s.decoders import DecoderState, Memory, RNNDecoderOptions
from s2s.embeddings import Embeddings, EmbeddingsConfig, load_pretrained
from s2s.model import ForwardOutput, Seq2SeqModel, Step, as_input
from s2s.options import OptionError, PartOptions, part
from s2s.registry import ATTENTIONS, DECODERS, ENCODERS, MODELS
from s2s.vocabulary import PAD_ID


@dataclass
class RNNModelOptions(PartOptions):
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)  # source and target token embeddings
    encoder: PartOptions = part(ENCODERS, "lstm")  # s2s config --list encoder
    bridge: Literal["concat", "linear", "zero"] = "linear"  # encoder state -> decoder state (bridge.py)
    attention: PartOptions = part(ATTENTIONS, "bahdanau")  # s2s config --list attention
    decoder: RNNDecoderOptions = part(DECODERS, "attention")  # s2s config --list decoder

    def validate(self, root: Any) -> None:
        if self.embeddings.share_source_target and root is not None and not root.vocab.shared:
            raise OptionError("embeddings.share_source_target", "needs vocab.shared: true")


class Seq2Seq(Seq2SeqModel):
    def __init__(self, cfg: RNNModelOptions, src_vocab_size: int, tgt_vocab_size: int) -> None:
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
        self.copies = self.decoder.copies
        if getattr(cfg.decoder, "coverage", False):
            self.coverage_from_step, self.coverage_weight = cfg.decoder.coverage_from_step, cfg.decoder.coverage_weight

    def encode(
        self, batch: Batch, *, coverage: bool = False, attend: Tensor | None = None
    ) -> tuple[Memory, DecoderState]:
        """``attend`` (batch, src_len) bool: the source positions that attention, and so copying, may
        read (default: every real token; the bottom-up hybrid narrows it to the selected segments)."""
        keys, final = self.encoder(self.src_embeddings(batch.src), batch.src_lengths)  # keys (batch, src_len, key)
        mask = batch.src_mask if attend is None else attend
        memory = Memory(keys, self.decoder.attention.precompute(keys), mask, batch.src_ext, batch.max_oovs)
        return memory, self.decoder.initial_state(self.bridge(final), memory, coverage)

    def forward(
        self,
        batch: Batch,
        *,
        coverage: bool = False,
        label_smoothing: float = 0.0,
        sampling: float = 0.0,
        attend: Tensor | None = None,
    ) -> ForwardOutput:
        memory, state = self.encode(batch, coverage=coverage, attend=attend)
        out = self.decoder(batch.tgt_in, memory, state, sampling=sampling)
        mask = batch.tgt_mask  # (batch, tgt_len)
        target = batch.tgt_out_ext if self.copies else batch.tgt_out
        token_loss = out.hidden.new_zeros(mask.shape)
        token_loss[mask] = self.decoder.token_loss(out, memory, target, mask, label_smoothing)
        coverage_loss = out.coverage_loss.masked_fill(~mask, 0.0) if out.coverage_loss is not None else None
        p_gen = out.p_gen.squeeze(-1) if out.p_gen is not None else None
        return ForwardOutput(token_loss, coverage_loss, out.attention, p_gen)

    def decode_step(self, prev_tokens: Tensor, memory: Memory, state: DecoderState) -> Step:
        """prev_tokens (batch,) extended ids; a copied word fed back in becomes <unk>."""
        out, state = self.decoder.step(self.tgt_embeddings(as_input(prev_tokens, self.tgt_vocab_size)), memory, state)
        log_probs = self.decoder.log_probs(out, memory).squeeze(1)  # (batch, vocab + n_oov)
        p_gen = out.p_gen.view(-1) if out.p_gen is not None else None
        return Step(log_probs, out.attention.squeeze(1), p_gen, state)


@MODELS.register("rnn", options=RNNModelOptions)
def rnn_model(cfg: RNNModelOptions, *, src_tokens: list[str], tgt_tokens: list[str]) -> Seq2Seq:
    """Embeddings, an RNN encoder, a bridge and an attention decoder (the pointer-generator among them)."""
    return with_pretrained(Seq2Seq(cfg, len(src_tokens), len(tgt_tokens)), cfg.embeddings, src_tokens, tgt_tokens)


def with_pretrained(model: Seq2Seq, cfg: EmbeddingsConfig, src_tokens: list[str], tgt_tokens: list[str]) -> Seq2Seq:
    """``model`` with its embeddings loaded from ``cfg.pretrained`` (where it names a file)."""
    if cfg.pretrained:
        load_pretrained(model.src_embeddings, cfg.pretrained, src_tokens, cfg.freeze)
        if model.tgt_embeddings is not model.src_embeddings:
            load_pretrained(model.tgt_embeddings, cfg.pretrained, tgt_tokens, cfg.freeze)
    return model
