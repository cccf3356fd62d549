"""Decoders: an LSTM/GRU/plain-RNN decoder with attention, and the pointer-generator (See et al. 2017).

One decoder step (Luong et al. 2015, as in OpenNMT-py and JoeyNMT):

    x_t      = [embed(y_{t-1}); h~_{t-1}]         (h~_{t-1} only with input feeding)
    s_t      = RNN(x_t, s_{t-1})
    c_t, a_t = attention(s_t, encoder outputs)     (a_t: weights over the source)
    h~_t     = tanh(W_c [s_t; c_t])                (the attentional vector)
    P_vocab  = softmax(W_out h~_t)

Two ways to run it over a target sequence, giving the same numbers where both apply:
- the fast path: without input feeding, s_t does not depend on attention, so the RNN runs over
  the whole target in one fused call and all steps attend in one batched matmul (for the
  multiplicative attentions, whose scores are a matmul);
- the step-by-step path otherwise (input feeding, additive attention, coverage), and always with
  scheduled sampling (``sampling`` > 0), where an input may be the prediction of the step before,
  and with ``residual`` or ``layer_norm`` (recurrence.py), which only the step-by-step cell has.

The output layer always runs once, after the RNN, on the real (non-padding) positions only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s.embeddings import Embeddings
from s2s.errors import ConfigError
from s2s.kernels import RNNState, RNNSteps
from s2s.model import as_input, copy_log_probs, sampled_positions, token_nll
from s2s.options import Dropout, NonNegativeFloat, NonNegativeInt, PartOptions, PositiveInt
from s2s.recurrence import Cell, LayerNormCell, RecurrenceOptions, make_rnn
from s2s.registry import ATTENTIONS, DECODERS
from s2s.shortlist import Shortlist, output_logits


@dataclass
class Memory:
    """The encoded source, as the decoder attends to it."""

    keys: Tensor  # (batch, src_len, key_size) encoder outputs
    proj_keys: Tensor  # attention.precompute(keys), reused at every step
    mask: Tensor  # (batch, src_len) bool, True at real tokens
    src_ext: Tensor  # (batch, src_len) source tokens as extended target ids (for copying)
    n_oov: int  # extended ids beyond the target vocabulary in this batch
    shortlist: Shortlist | None = None  # decoding with predict.shortlist: the output layer's candidates

    def index_select(self, index: Tensor) -> Memory:
        """Rows ``index`` of the batch (beam search: expand, reorder, drop finished)."""
        rows = lambda t: t.index_select(0, index)  # noqa: E731
        keys, proj_keys, mask, src_ext = rows(self.keys), rows(self.proj_keys), rows(self.mask), rows(self.src_ext)
        return Memory(keys, proj_keys, mask, src_ext, self.n_oov, self.shortlist)


@dataclass
class DecoderState:
    """What one decoder step hands to the next."""

    rnn: RNNState  # (num_layers, batch, hidden) h, or (h, c) for an LSTM
    feed: Tensor | None  # (batch, hidden) the last attentional vector, with input feeding
    coverage: Tensor | None  # (batch, src_len) attention received so far, with coverage on

    def index_select(self, index: Tensor) -> DecoderState:
        """Rows ``index`` of the batch (beam search reorders hypotheses with this)."""

        def rows(t: Tensor | None, dim: int = 0) -> Tensor | None:
            return None if t is None else t.index_select(dim, index)

        # RNN states are (num_layers, batch, hidden): their batch dimension is 1
        rnn = tuple(rows(t, 1) for t in self.rnn) if isinstance(self.rnn, tuple) else rows(self.rnn, 1)
        return DecoderState(rnn, rows(self.feed), rows(self.coverage))


@dataclass
class DecoderOutput:
    """Per target position; ``tgt_len`` is 1 for a single step."""

    hidden: Tensor  # (batch, tgt_len, hidden) attentional vectors h~, read by the output layer
    attention: Tensor  # (batch, tgt_len, src_len)
    coverage_loss: Tensor | None = None  # (batch, tgt_len) sum_i min(a_i, coverage_i)
    p_gen: Tensor | None = None  # (batch, tgt_len, 1) pointer-generator: P(generate)


@dataclass
class RNNDecoderOptions(RecurrenceOptions):
    rnn: Cell = "lstm"  # the recurrent cell: lstm, gru or rnn (the plain RNN)
    hidden_size: PositiveInt = 256  # the RNN's and the attentional vector's size
    num_layers: PositiveInt = 1  # stacked layers
    dropout: Dropout = 0.0  # between stacked layers and on the attentional vector
    input_feeding: bool = True  # feed the previous attentional vector into the next step
    coverage: bool = False  # See et al. 2017: coverage vector in attention + coverage loss
    coverage_weight: NonNegativeFloat = 1.0  # weight of the coverage loss
    coverage_from_step: NonNegativeInt = 0  # training step at which coverage switches on
    layer_norm: bool = False  # Ba et al. 2016: layer normalization in the recurrence (step-by-step path)

    def validate(self, root: object) -> None:
        self.check_cell(self.rnn)


@DECODERS.register("attention", options=RNNDecoderOptions)
class AttentionDecoder(nn.Module):
    """LSTM/GRU/plain-RNN decoder with attention and optional input feeding; see the module docstring."""

    copies = False  # whether outputs use extended (copy) ids

    def __init__(
        self,
        cfg: RNNDecoderOptions,
        *,
        attention: PartOptions,
        embeddings: Embeddings,
        key_size: int,
        vocab_size: int,
        tie_output: bool = False,
    ) -> None:
        super().__init__()
        hidden = cfg.hidden_size
        self.embeddings = embeddings
        self.input_feeding = cfg.input_feeding
        self.rnn = make_rnn(
            cfg.rnn,
            embeddings.size + (hidden if cfg.input_feeding else 0),
            hidden,
            cfg,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.residual = cfg.residual and cfg.num_layers > 1
        self.norms = (
            nn.ModuleList(LayerNormCell(cfg.rnn, hidden) for _ in range(cfg.num_layers)) if cfg.layer_norm else None
        )
        self.attention = ATTENTIONS.build(attention, query_size=hidden, key_size=key_size, coverage=cfg.coverage)
        self.combine = nn.Linear(hidden + key_size, hidden, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(hidden, vocab_size)
        if tie_output:
            if embeddings.size != hidden:
                raise ConfigError(
                    f"model.embeddings.tie_output needs model.decoder.hidden_size == "
                    f"model.embeddings.size, got {hidden} and {embeddings.size}"
                )
            self.output.weight = embeddings.table.weight
        self.hidden_size = hidden
        self.vocab_size = vocab_size
        self.has_coverage = cfg.coverage

    @property
    def fast_path(self) -> bool:
        """Whether teacher forcing can run the RNN over the whole target at once."""
        return self.attention.parallel and not self.input_feeding and not self.residual and self.norms is None

    def initial_state(self, rnn_state: RNNState, memory: Memory, coverage: bool = False) -> DecoderState:
        """``coverage``: keep a coverage vector (ignored by a decoder without coverage)."""
        batch, src_len = memory.mask.shape
        feed = memory.keys.new_zeros(batch, self.hidden_size) if self.input_feeding else None
        coverage_vector = memory.keys.new_zeros(batch, src_len) if coverage and self.has_coverage else None
        return DecoderState(rnn_state, feed, coverage_vector)

    def forward(
        self,
        tgt_in: Tensor,
        memory: Memory,
        state: DecoderState,
        fast_path: bool | None = None,
        sampling: float = 0.0,
    ) -> DecoderOutput:
        """Teacher forcing: tgt_in (batch, tgt_len) target ids, starting with <s>; with ``sampling``
        > 0, scheduled sampling (``_sampled``).

        ``fast_path`` forces a path (tests compare them); by default the fast one when possible.
        """
        if sampling > 0:
            return self._sampled(tgt_in, memory, state, sampling)
        inputs = self.embeddings(tgt_in)  # (batch, tgt_len, emb)
        use_fast_path = self.fast_path if fast_path is None else fast_path
        if use_fast_path:
            if self.input_feeding or state.coverage is not None or self.residual or self.norms is not None:
                raise ValueError("the fast path needs a decoder without input feeding, coverage, residual, layer_norm")
            rnn_output, _ = self.rnn(inputs, state.rnn)  # (batch, tgt_len, hidden)
            context, attention = self.attention(rnn_output, memory.keys, memory.proj_keys, memory.mask)
            return self._output(inputs, rnn_output, context, attention)
        rnn = self._steps()
        known = rnn.project_known(inputs)  # (batch, tgt_len, gates): one matmul for all steps
        steps = []
        for x, gates in zip(inputs.unbind(1), known.unbind(1)):
            out, state = self._step(x, gates, rnn, memory, state)
            steps.append(out)
        return _cat_steps(steps)

    def _steps(self) -> RNNSteps:
        """The step-by-step cell, for one sequence."""
        return RNNSteps(self.rnn, self.embeddings.size, self.residual, self.norms)

    def _sampled(self, tgt_in: Tensor, memory: Memory, state: DecoderState, p: float) -> DecoderOutput:
        """Scheduled sampling, step by step: each input after <s> is, with probability p, the token
        this decoder predicted at the step before (its argmax, as greedy search feeds it; no
        gradient flows through the choice) instead of the gold one."""
        own = sampled_positions(tgt_in, p)  # (batch, tgt_len)
        rnn = self._steps()
        tokens, steps = tgt_in[:, 0], []
        for t in range(tgt_in.size(1)):
            x = self.embeddings(tokens)  # (batch, emb)
            out, state = self._step(x, rnn.project_known(x), rnn, memory, state)
            steps.append(out)
            if t + 1 < tgt_in.size(1):
                with torch.no_grad():
                    predicted = self.log_probs(out, memory)[:, 0].argmax(-1)  # (batch,) extended ids
                tokens = torch.where(own[:, t + 1], as_input(predicted, self.vocab_size), tgt_in[:, t + 1])
        return _cat_steps(steps)

    def step(self, inputs: Tensor, memory: Memory, state: DecoderState) -> tuple[DecoderOutput, DecoderState]:
        """One step: inputs (batch, emb), the embedded previous tokens."""
        rnn = self._steps()
        return self._step(inputs, rnn.project_known(inputs), rnn, memory, state)

    def _step(
        self, inputs: Tensor, known_gates: Tensor, rnn: RNNSteps, memory: Memory, state: DecoderState
    ) -> tuple[DecoderOutput, DecoderState]:
        """inputs (batch, emb); known_gates: their share of the RNN's input gates."""
        top, rnn_state = rnn.step(known_gates, state.feed if self.input_feeding else None, state.rnn)
        rnn_output = top.unsqueeze(1)  # (batch, 1, hidden)
        context, attention = self.attention(
            rnn_output, memory.keys, memory.proj_keys, memory.mask, state.coverage
        )  # (batch, 1, key_size), (batch, 1, src_len)
        coverage_loss = coverage = None
        if state.coverage is not None:
            weights = attention.squeeze(1)  # (batch, src_len)
            coverage_loss = torch.minimum(weights, state.coverage).sum(-1, keepdim=True)  # (batch, 1)
            coverage = state.coverage + weights
        out = self._output(inputs.unsqueeze(1), rnn_output, context, attention, coverage_loss)
        feed = out.hidden.squeeze(1) if self.input_feeding else None
        return out, DecoderState(rnn_state, feed, coverage)

    def _output(
        self,
        inputs: Tensor,
        rnn_output: Tensor,
        context: Tensor,
        attention: Tensor,
        coverage_loss: Tensor | None = None,
    ) -> DecoderOutput:
        """The attentional vector h~ = tanh(W_c [s; c]), for tgt_len positions at once."""
        hidden = torch.tanh(self.combine(torch.cat([rnn_output, context], dim=-1)))
        return DecoderOutput(self.dropout(hidden), attention, coverage_loss)

    def log_probs(self, out: DecoderOutput, memory: Memory) -> Tensor:
        """Output distribution: (batch, tgt_len, vocab) log-probabilities (vocab: the shortlist's, with one)."""
        return F.log_softmax(output_logits(self.output, out.hidden, memory.shortlist), dim=-1)

    def token_loss(
        self, out: DecoderOutput, memory: Memory, target: Tensor, mask: Tensor, label_smoothing: float
    ) -> Tensor:
        """Negative log-likelihood (n_tokens,) of target (batch, tgt_len) at the mask's positions."""
        logits = self.output(out.hidden[mask])  # (n_tokens, vocab): padding never projected
        return F.cross_entropy(logits, target[mask], label_smoothing=label_smoothing, reduction="none")


@DECODERS.register("pointer_generator", options=RNNDecoderOptions)
class PointerGeneratorDecoder(AttentionDecoder):
    """The attention decoder plus a copy switch (See et al. 2017).

    P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{i: x_i = w} a_i, over the target vocabulary
    extended with this example's source words (extended ids V, V+1, ...), so words the model
    has never generated can be copied. p_gen = sigmoid(w [c_t; s_t; x_t] + b).
    """

    copies = True

    def __init__(
        self,
        cfg: RNNDecoderOptions,
        *,
        attention: PartOptions,
        embeddings: Embeddings,
        key_size: int,
        vocab_size: int,
        tie_output: bool = False,
    ) -> None:
        super().__init__(
            cfg,
            attention=attention,
            embeddings=embeddings,
            key_size=key_size,
            vocab_size=vocab_size,
            tie_output=tie_output,
        )
        self.switch = nn.Linear(key_size + cfg.hidden_size + embeddings.size, 1)

    def _output(
        self,
        inputs: Tensor,
        rnn_output: Tensor,
        context: Tensor,
        attention: Tensor,
        coverage_loss: Tensor | None = None,
    ) -> DecoderOutput:
        out = super()._output(inputs, rnn_output, context, attention, coverage_loss)
        out.p_gen = torch.sigmoid(self.switch(torch.cat([context, rnn_output, inputs], dim=-1)))
        return out

    def log_probs(self, out: DecoderOutput, memory: Memory) -> Tensor:
        batch, tgt_len, src_len = out.attention.shape
        src_ext = memory.src_ext.unsqueeze(1).expand(batch, tgt_len, src_len)
        log_probs = copy_log_probs(
            output_logits(self.output, out.hidden.reshape(batch * tgt_len, -1), memory.shortlist),
            out.attention.reshape(batch * tgt_len, src_len),
            out.p_gen.reshape(batch * tgt_len, 1),
            src_ext.reshape(batch * tgt_len, src_len),
            memory.n_oov,
        )
        return log_probs.view(batch, tgt_len, -1)

    def token_loss(
        self, out: DecoderOutput, memory: Memory, target: Tensor, mask: Tensor, label_smoothing: float
    ) -> Tensor:
        """target holds extended ids: copied source words are scored by their copy probability."""
        rows = mask.nonzero(as_tuple=True)[0]  # (n_tokens,) batch row of each real token
        log_probs = copy_log_probs(
            self.output(out.hidden[mask]), out.attention[mask], out.p_gen[mask], memory.src_ext[rows], memory.n_oov
        )  # (n_tokens, vocab + n_oov)
        return token_nll(log_probs, target[mask], label_smoothing)


def _cat_steps(steps: list[DecoderOutput]) -> DecoderOutput:
    """Per-step outputs (batch, 1, ...) concatenated along time; None stays None."""
    cat = lambda values: None if values[0] is None else torch.cat(values, dim=1)  # noqa: E731
    return DecoderOutput(**{f.name: cat([getattr(s, f.name) for s in steps]) for f in fields(DecoderOutput)})
