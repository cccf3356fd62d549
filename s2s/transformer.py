"""The Transformer (Vaswani et al. 2017) and the Transformer pointer-generator, in one file.

Read top to bottom: options, positions, attention (with its key/value cache), layers, encoder,
decoder, the copy head, and the model with the interface search and the trainer call:
``forward(batch)`` for teacher forcing, ``encode(batch)`` then ``decode_step(...)`` per token.

Attention runs through ``F.scaled_dot_product_attention`` (a fused kernel) except where its
weights are read: ``need_weights`` computes softmax(QK^T / sqrt(d)) explicitly, one visible
branch in ``MultiHeadAttention.forward``. The plain model reads the weights of the last decoder
layer's cross-attention (heads averaged: heatmaps, beam search's coverage penalty); the
pointer-generator shows its copy attention instead, and all its layers keep the fast path.

Which attention copies: a dedicated single-head attention on top of the decoder (query: the
final decoder output h_t; keys: the final encoder output e_i, projected once per source), not
the last layer's heads averaged, because
- the copy loss shapes this distribution directly: on the last layer's heads it would pull
  them all towards one pointing pattern, away from gathering the context the output reads;
- coverage can enter its scores without making the decoder stack sequential (below);
- its weights are the only ones computed explicitly.
The copy switch is p_gen = sigmoid(w [c_t; h_t; x_t] + b), with the copy context
c_t = sum_i a_ti e_i and x_t the decoder input at step t (embedding + position). Over the
target vocabulary extended with the example's source words (ids V, V+1, ... as ``src_ext``):
P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{i: x_i = w} a_ti, one scatter_add, EPS inside the log.

Coverage (See et al. 2017; copy model only): cov_t = sum_{s<t} a_s, the copy attention each
source word has received, enters the copy scores as a learned bias, score_ti = q_t k_i / sqrt(d)
+ w_c cov_ti, with w_c starting at 0, so switching coverage on at ``coverage_from_step`` starts
from the function trained so far; the coverage loss is sum_i min(a_ti, cov_ti). Only this head
depends on coverage: teacher forcing runs the decoder in parallel, then the head's softmax one
step at a time (a loop over target positions of (batch, src_len) operations).

Incremental decoding: ``TransformerMemory`` holds every decoder layer's cross-attention keys and
values, projected once in ``encode``; ``TransformerState`` holds every layer's self-attention
keys and values of the steps so far, (batch, heads, t, d_head), to which each step appends one
position. A step attends over the cache and recomputes nothing; ``index_select`` on either picks
rows of the batch (beam search expands, reorders and drops hypotheses with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s.batching import Batch
from s2s.embeddings import Embeddings, load_pretrained
from s2s.errors import ConfigError
from s2s.model import BatchRows, ForwardOutput, Seq2SeqModel, Step, as_input, copy_log_probs, mix_predictions, token_nll
from s2s.options import Dropout, NonNegativeFloat, NonNegativeInt, OptionError, PartOptions, PositiveInt
from s2s.registry import MODELS
from s2s.shortlist import Shortlist, output_logits
from s2s.vocabulary import PAD_ID


@dataclass
class TransformerOptions(PartOptions):
    """``model.*`` of the Transformer family."""

    d_model: PositiveInt = 256  # width of the embeddings, of attention and of every residual connection
    heads: PositiveInt = 4  # attention heads per layer; must divide model.d_model
    ff_size: PositiveInt = 1024  # inner size of each position-wise feed-forward layer
    encoder_layers: PositiveInt = 3  # encoder layers (self-attention + feed-forward)
    decoder_layers: PositiveInt = 3  # decoder layers (self-attention + cross-attention + feed-forward)
    dropout: Dropout = 0.1  # on embeddings, on every sub-layer's output and inside the feed-forward layers
    attention_dropout: Dropout = 0.1  # on attention weights
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"  # position encodings added to the embeddings
    max_positions: PositiveInt = 512  # learned positions: the longest source or target the model can read
    norm: Literal["pre", "post"] = "pre"  # LayerNorm before each sub-layer (and at the end) or after each residual
    scale_embeddings: bool = True  # multiply token embeddings by sqrt(model.d_model)
    share_embeddings: bool = False  # one embedding table for source and target (needs vocab.shared)
    tie_output: bool = False  # decoder input embedding = output projection weights
    copy: bool = False  # pointer-generator: copy source words, out-of-vocabulary ones included
    coverage: bool = False  # coverage vector in the copy attention + coverage loss (needs model.copy)
    coverage_weight: NonNegativeFloat = 1.0  # weight of the coverage loss
    coverage_from_step: NonNegativeInt = 0  # training step at which coverage switches on
    pretrained: str | None = None  # word2vec/GloVe text file of vectors of size d_model; missing words keep random init
    freeze: bool = False  # keep the pretrained vectors fixed

    def validate(self, root: object) -> None:
        """Options that cannot build a model (with ``root``, the whole config: the vocabularies)."""
        if self.d_model % self.heads:
            raise OptionError("d_model", f"{self.d_model} must be divisible by model.heads ({self.heads})")
        if self.coverage and not self.copy:
            raise OptionError("coverage", "needs model.copy: coverage enters the copy attention")
        if self.share_embeddings and root is not None and not root.vocab.shared:
            raise OptionError("share_embeddings", "needs one vocabulary (vocab.shared: true)")

    def check(self, src_vocab_size: int, tgt_vocab_size: int) -> None:
        """ConfigError for options that cannot build a model for these vocabularies."""
        try:
            self.validate(None)
        except OptionError as err:
            raise ConfigError(f"model.{err.key}: {err.message}") from None
        if self.share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ConfigError(
                f"model.share_embeddings needs one vocabulary (vocab.shared: true), "
                f"got {src_vocab_size} source and {tgt_vocab_size} target words"
            )


# --- Positions ---------------------------------------------------------------------------------


def sinusoids(position: Tensor, d_model: int) -> Tensor:
    """Vaswani et al.'s encodings of positions (length,): sin and cos pairs, wavelengths 2pi .. 10000 * 2pi."""
    frequency = torch.exp(torch.arange(0, d_model, 2, device=position.device) * (-math.log(10000.0) / d_model))
    angle = position.float().unsqueeze(1) * frequency  # (length, ceil(d_model / 2))
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)[:, :d_model]  # (length, d_model)


class Positions(nn.Module):
    """Position encodings, sinusoidal or learned (up to ``max_positions``)."""

    def __init__(self, options: TransformerOptions) -> None:
        super().__init__()
        self.d_model, self.max_positions = options.d_model, options.max_positions
        self.table = nn.Embedding(options.max_positions, options.d_model) if options.positions == "learned" else None

    def forward(self, start: int, length: int, device: torch.device) -> Tensor:
        """(length, d_model) encodings of positions start .. start + length - 1."""
        position = torch.arange(start, start + length, device=device)
        if self.table is None:
            return sinusoids(position, self.d_model)
        if start + length > self.max_positions:
            raise ConfigError(
                f"a sequence of {start + length} tokens is longer than model.max_positions ({self.max_positions}) "
                f"allows with learned positions: raise it, or lower data.max_source_len, data.max_target_len "
                f"and predict.max_length"
            )
        return self.table(position)


# --- Attention ---------------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention. Keys and values arrive projected (``project``),
    so that the decoder can cache them."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _split(self, x: Tensor) -> Tensor:
        """(batch, len, d_model) -> (batch, heads, len, d_head)."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of x (batch, len, d_model), each (batch, heads, len, d_head)."""
        keys, values = self.key_value(x).chunk(2, dim=-1)
        return self._split(keys), self._split(values)

    def forward(
        self,
        x: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x (batch, q_len, d_model) attends to keys, values (batch, heads, k_len, d_head); mask
        (batch, 1, 1, k_len) bool, True where attended. Returns (batch, q_len, d_model) and, with
        need_weights (cross-attention: a mask, never causal), the weights averaged over heads
        (batch, q_len, k_len)."""
        query = self._split(self.query(x))  # (batch, heads, q_len, d_head)
        dropout = self.dropout if self.training else 0.0
        weights = None
        if need_weights:  # explicit, because the weights are read
            scores = query @ keys.transpose(-2, -1) / math.sqrt(query.size(-1))  # (batch, heads, q_len, k_len)
            probs = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            context = F.dropout(probs, dropout, self.training) @ values  # (batch, heads, q_len, d_head)
            weights = probs.mean(dim=1)
        else:  # the fused kernel
            context = F.scaled_dot_product_attention(
                query, keys, values, attn_mask=mask, dropout_p=dropout, is_causal=causal
            )
        return self.out(context.transpose(1, 2).flatten(2)), weights


# --- Layers, encoder, decoder ------------------------------------------------------------------


class Layer(nn.Module):
    """Residual sub-layers, each with a LayerNorm before it (pre-norm) or after the sum (post-norm),
    the last one a position-wise feed-forward layer."""

    def __init__(self, options: TransformerOptions, sublayers: int) -> None:
        super().__init__()
        d = options.d_model
        self.pre_norm = options.norm == "pre"
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(sublayers))
        self.dropout = nn.Dropout(options.dropout)
        self.feed_forward = nn.Sequential(
            nn.Linear(d, options.ff_size), nn.ReLU(), nn.Dropout(options.dropout), nn.Linear(options.ff_size, d)
        )

    def _input(self, x: Tensor, i: int) -> Tensor:
        """What sub-layer i reads."""
        return self.norms[i](x) if self.pre_norm else x

    def _add(self, x: Tensor, output: Tensor, i: int) -> Tensor:
        """The residual connection around sub-layer i."""
        x = x + self.dropout(output)
        return x if self.pre_norm else self.norms[i](x)

    def _feed_forward(self, x: Tensor) -> Tensor:
        last = len(self.norms) - 1
        return self._add(x, self.feed_forward(self._input(x, last)), last)


class EncoderLayer(Layer):
    def __init__(self, options: TransformerOptions) -> None:
        super().__init__(options, sublayers=2)
        self.attention = MultiHeadAttention(options.d_model, options.heads, options.attention_dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (batch, src_len, d_model); mask (batch, 1, 1, src_len)."""
        h = self._input(x, 0)
        x = self._add(x, self.attention(h, *self.attention.project(h), mask)[0], 0)
        return self._feed_forward(x)


class DecoderLayer(Layer):
    def __init__(self, options: TransformerOptions) -> None:
        super().__init__(options, sublayers=3)
        self.self_attention = MultiHeadAttention(options.d_model, options.heads, options.attention_dropout)
        self.cross_attention = MultiHeadAttention(options.d_model, options.heads, options.attention_dropout)

    def forward(
        self,
        x: Tensor,
        past: tuple[Tensor, Tensor] | None,
        cross: tuple[Tensor, Tensor],
        mask: Tensor,
        need_weights: bool,
    ) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor | None]:
        """x (batch, len, d_model): the whole target (past None: causal self-attention) or the
        next positions after ``past``, this layer's cached keys and values (batch, heads, t, d_head).
        Returns the output, the keys and values up to x's last position, and the cross-attention
        weights (batch, len, src_len) with need_weights."""
        h = self._input(x, 0)
        keys, values = self.self_attention.project(h)  # (batch, heads, len, d_head)
        if past is not None:
            keys, values = torch.cat([past[0], keys], dim=2), torch.cat([past[1], values], dim=2)  # (.., t + len, ..)
        x = self._add(x, self.self_attention(h, keys, values, causal=past is None)[0], 0)
        context, weights = self.cross_attention(self._input(x, 1), *cross, mask, need_weights=need_weights)
        x = self._add(x, context, 1)
        return self._feed_forward(x), (keys, values), weights


class Encoder(nn.Module):
    def __init__(self, options: TransformerOptions) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(options) for _ in range(options.encoder_layers))
        self.norm = nn.LayerNorm(options.d_model) if options.norm == "pre" else nn.Identity()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (batch, src_len, d_model) embedded source; mask (batch, 1, 1, src_len)."""
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


class Decoder(nn.Module):
    def __init__(self, options: TransformerOptions) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(options) for _ in range(options.decoder_layers))
        self.norm = nn.LayerNorm(options.d_model) if options.norm == "pre" else nn.Identity()

    def forward(
        self, x: Tensor, memory: TransformerMemory, past: TransformerState | None, need_weights: bool
    ) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor | None]:
        """x (batch, len, d_model) embedded target -> the output (batch, len, d_model), every
        layer's self-attention keys and values so far, the last layer's cross-attention weights."""
        keys, values, weights = [], [], None
        mask = memory.mask[:, None, None, :]  # (batch, 1, 1, src_len)
        for i, layer in enumerate(self.layers):
            cache = None if past is None else (past.keys[i], past.values[i])
            last = i == len(self.layers) - 1
            x, (k, v), weights = layer(x, cache, (memory.keys[i], memory.values[i]), mask, need_weights and last)
            keys.append(k)
            values.append(v)
        return self.norm(x), keys, values, weights


# --- Decoding state ----------------------------------------------------------------------------


@dataclass
class TransformerMemory(BatchRows):
    """The encoded source, with what every decoding step reads of it precomputed."""

    keys: list[Tensor]  # per decoder layer: cross-attention keys (batch, heads, src_len, d_head)
    values: list[Tensor]  # per decoder layer: cross-attention values (batch, heads, src_len, d_head)
    copy_keys: Tensor | None  # (batch, src_len, d_model) the copy attention's keys; None without copy
    copy_values: Tensor | None  # (batch, src_len, d_model) the encoder output, averaged into the copy context
    mask: Tensor  # (batch, src_len) bool, True at real tokens
    src_ext: Tensor  # (batch, src_len) source tokens as extended target ids (for copying)
    n_oov: int  # extended ids beyond the target vocabulary in this batch
    shortlist: Shortlist | None = None  # decoding with predict.shortlist: the output layer's candidates


@dataclass
class TransformerState(BatchRows):
    """The decoder's cache: what one step hands to the next."""

    keys: list[Tensor]  # per decoder layer: self-attention keys of the steps so far (batch, heads, t, d_head)
    values: list[Tensor]  # per decoder layer: self-attention values (batch, heads, t, d_head)
    coverage: Tensor | None  # (batch, src_len) copy attention received so far, with coverage on


# --- The copy head and the model ---------------------------------------------------------------


class CopyHead(nn.Module):
    """The pointer-generator's copy attention and switch; see the module docstring."""

    def __init__(self, d_model: int, coverage: bool) -> None:
        super().__init__()
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.switch = nn.Linear(3 * d_model, 1)
        self.coverage_scale = nn.Parameter(torch.zeros(())) if coverage else None  # w_c

    def forward(
        self, hidden: Tensor, inputs: Tensor, memory: TransformerMemory, coverage: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """hidden, inputs (batch, len, d_model): decoder outputs and inputs; coverage (batch, src_len)
        before the first of these positions, or None. Returns the copy attention (batch, len, src_len),
        p_gen (batch, len), the coverage loss (batch, len) and the coverage after the last position."""
        scores = self.query(hidden) @ memory.copy_keys.transpose(1, 2) / math.sqrt(hidden.size(-1))
        scores = scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf"))  # (batch, len, src_len)
        coverage_loss = None
        if coverage is None:
            attention = scores.softmax(dim=-1)
        else:  # each position's attention depends on the ones before: one position at a time
            steps, losses = [], []
            for score in scores.unbind(1):  # (batch, src_len)
                weights = (score + self.coverage_scale * coverage).softmax(dim=-1)
                losses.append(torch.minimum(weights, coverage).sum(dim=-1))
                coverage = coverage + weights
                steps.append(weights)
            attention, coverage_loss = torch.stack(steps, 1), torch.stack(losses, 1)
        context = attention @ memory.copy_values  # (batch, len, d_model)
        p_gen = torch.sigmoid(self.switch(torch.cat([context, hidden, inputs], dim=-1))).squeeze(-1)
        return attention, p_gen, coverage_loss, coverage


class Decoded(NamedTuple):
    hidden: Tensor  # (batch, len, d_model) decoder output
    attention: Tensor  # (batch, len, src_len): the copy attention, else the last cross-attention
    p_gen: Tensor | None  # (batch, len) pointer-generator: P(generate)
    coverage_loss: Tensor | None  # (batch, len) with coverage on


def token_embeddings(vocab_size: int, d_model: int) -> Embeddings:
    """An s2s embedding table (pretrained vectors load into it), initialised N(0, 1 / d_model):
    scaled by sqrt(d_model) its rows have the variance of the position encodings."""
    embeddings = Embeddings(vocab_size, d_model, 0.0, PAD_ID)
    with torch.no_grad():
        nn.init.normal_(embeddings.table.weight, 0.0, d_model**-0.5)
        embeddings.table.weight[PAD_ID].zero_()
    return embeddings


class TransformerModel(Seq2SeqModel):
    """Encoder-decoder Transformer, optionally a pointer-generator; see the module docstring."""

    def __init__(self, options: TransformerOptions, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        options.check(src_vocab_size, tgt_vocab_size)
        d = options.d_model
        self.src_embeddings = token_embeddings(src_vocab_size, d)
        self.tgt_embeddings = self.src_embeddings if options.share_embeddings else token_embeddings(tgt_vocab_size, d)
        self.embedding_scale = math.sqrt(d) if options.scale_embeddings else 1.0
        self.positions = Positions(options)
        self.dropout = nn.Dropout(options.dropout)
        self.encoder = Encoder(options)
        self.decoder = Decoder(options)
        self.output = nn.Linear(d, tgt_vocab_size)
        if options.tie_output:
            self.output.weight = self.tgt_embeddings.table.weight
        self.copy_head = CopyHead(d, options.coverage) if options.copy else None
        self.heads = options.heads
        self.copies = options.copy
        self.tgt_vocab_size = tgt_vocab_size
        self.coverage_from_step = options.coverage_from_step if options.coverage else None
        self.coverage_weight = options.coverage_weight

    def _embed(self, embeddings: Embeddings, ids: Tensor, start: int = 0) -> Tensor:
        """ids (batch, len) at positions start.. -> (batch, len, d_model)."""
        x = embeddings(ids) * self.embedding_scale + self.positions(start, ids.size(1), ids.device)
        return self.dropout(x)

    def encode(self, batch: Batch, *, coverage: bool = False) -> tuple[TransformerMemory, TransformerState]:
        """The source encoded, each decoder layer's cross-attention keys and values projected, and
        an empty cache; coverage (models with it) tracks the copy attention from the first step."""
        encoded = self.encoder(self._embed(self.src_embeddings, batch.src), batch.src_mask[:, None, None, :])
        cross = [layer.cross_attention.project(encoded) for layer in self.decoder.layers]
        copy_keys, copy_values = (self.copy_head.key(encoded), encoded) if self.copies else (None, None)
        memory = TransformerMemory(
            [k for k, _ in cross],
            [v for _, v in cross],
            copy_keys,
            copy_values,
            batch.src_mask,
            batch.src_ext,
            batch.max_oovs,
        )
        empty = encoded.new_zeros(
            batch.size, self.heads, 0, encoded.size(-1) // self.heads
        )  # (batch, heads, 0, d_head)
        covered = encoded.new_zeros(batch.src_mask.shape) if coverage and self.coverage_from_step is not None else None
        n = len(self.decoder.layers)
        return memory, TransformerState([empty] * n, [empty] * n, covered)

    def _decode(
        self, tokens: Tensor, memory: TransformerMemory, state: TransformerState, incremental: bool
    ) -> tuple[Decoded, TransformerState]:
        """tokens (batch, len) target ids: the whole target (incremental False, the cache unread)
        or the positions after the cache's."""
        start = state.keys[0].size(2) if incremental else 0
        inputs = self._embed(self.tgt_embeddings, tokens, start)  # (batch, len, d_model)
        hidden, keys, values, attention = self.decoder(
            inputs, memory, state if incremental else None, need_weights=self.copy_head is None
        )
        p_gen = coverage_loss = None
        coverage = state.coverage
        if self.copy_head is not None:
            attention, p_gen, coverage_loss, coverage = self.copy_head(hidden, inputs, memory, coverage)
        return Decoded(hidden, attention, p_gen, coverage_loss), TransformerState(keys, values, coverage)

    def _log_probs(
        self, hidden: Tensor, attention: Tensor, p_gen: Tensor | None, memory: TransformerMemory, rows: Tensor | None
    ) -> Tensor:
        """For n positions (of the batch's ``rows``; None: every row): hidden (n, d_model) -> (n, vocab)
        log-probabilities, or with copying (attention (n, src_len), p_gen (n,)) -> (n, vocab + n_oov);
        vocab: the memory's shortlist, if it has one."""
        logits = output_logits(self.output, hidden, memory.shortlist)
        if not self.copies:
            return logits.log_softmax(dim=-1)
        src_ext = memory.src_ext if rows is None else memory.src_ext[rows]  # (n, src_len)
        return copy_log_probs(logits, attention, p_gen.unsqueeze(-1), src_ext, memory.n_oov)

    def forward(
        self, batch: Batch, *, coverage: bool = False, label_smoothing: float = 0.0, sampling: float = 0.0
    ) -> ForwardOutput:
        """Teacher forcing over ``batch.tgt_in``; losses against ``batch.tgt_out(_ext)``. Scheduled
        sampling (``sampling`` > 0) in two passes, to keep the decoder parallel: predict every token
        from the gold ones before it (no gradients), then read the inputs with predictions mixed in."""
        memory, state = self.encode(batch, coverage=coverage)
        mask = batch.tgt_mask  # (batch, tgt_len)
        tokens = batch.tgt_in
        if sampling > 0:
            with torch.no_grad():
                predicted = self._teacher_forced(tokens, memory, state, mask)[1].argmax(-1)  # (n_tokens,)
            tokens = mix_predictions(tokens, mask, predicted, sampling, self.tgt_vocab_size)
        out, log_probs = self._teacher_forced(tokens, memory, state, mask)
        target = (batch.tgt_out_ext if self.copies else batch.tgt_out)[mask]  # (n_tokens,)
        token_loss = out.hidden.new_zeros(mask.shape)
        token_loss[mask] = token_nll(log_probs, target, label_smoothing)
        coverage_loss = out.coverage_loss.masked_fill(~mask, 0.0) if out.coverage_loss is not None else None
        return ForwardOutput(token_loss, coverage_loss, out.attention, out.p_gen)

    def _teacher_forced(
        self, tokens: Tensor, memory: TransformerMemory, state: TransformerState, mask: Tensor
    ) -> tuple[Decoded, Tensor]:
        """The decoder over tokens (batch, tgt_len) in parallel; log-probabilities at mask's positions."""
        out, _ = self._decode(tokens, memory, state, incremental=False)
        rows = mask.nonzero(as_tuple=True)[0]  # (n_tokens,) batch row of each real token
        p_gen = out.p_gen[mask] if out.p_gen is not None else None
        return out, self._log_probs(out.hidden[mask], out.attention[mask], p_gen, memory, rows)

    def decode_step(self, prev_tokens: Tensor, memory: TransformerMemory, state: TransformerState) -> Step:
        """prev_tokens (batch,) extended ids; a copied word fed back in becomes <unk>."""
        tokens = as_input(prev_tokens, self.tgt_vocab_size).unsqueeze(1)  # (batch, 1)
        out, state = self._decode(tokens, memory, state, incremental=True)
        p_gen = out.p_gen[:, 0] if out.p_gen is not None else None
        log_probs = self._log_probs(out.hidden[:, 0], out.attention[:, 0], p_gen, memory, None)
        return Step(log_probs, out.attention[:, 0], p_gen, state)


@MODELS.register("transformer", options=TransformerOptions)
def transformer_model(cfg: TransformerOptions, *, src_tokens: list[str], tgt_tokens: list[str]) -> TransformerModel:
    """The Transformer (Vaswani et al. 2017); with ``copy``, the Transformer pointer-generator."""
    model = TransformerModel(cfg, len(src_tokens), len(tgt_tokens))
    if cfg.pretrained:
        load_pretrained(model.src_embeddings, cfg.pretrained, src_tokens, cfg.freeze)
        if model.tgt_embeddings is not model.src_embeddings:
            load_pretrained(model.tgt_embeddings, cfg.pretrained, tgt_tokens, cfg.freeze)
    return model
