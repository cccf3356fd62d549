"""CPU speed kernels, kept apart from the model files, which call them by name.

Three kernels, each pinned by a test to the plain PyTorch path it replaces:

``rnn_by_segments(rnn, inputs, lengths)``, for the encoder. On CPUs PyTorch's fused (MKL-DNN)
RNN kernel only takes batches whose sequences all have one length: a packed batch of mixed
lengths falls back to a step-by-step loop, about three times slower. So here the packing is done
a segment of time at a time: with the batch sorted longest first, the sequences still running at
any time are a prefix of it, and that prefix only changes where a sequence ends. Each stretch
between two such ends is one call of the fused kernel, the state carried over; the backward
direction runs the same way over each sequence reversed within its length. With length-bucketed
batches that is a few fused calls per layer and direction, and the outputs and final states are
those of packed sequences, exactly.

``RNNSteps``, for the decoder's step-by-step path (LSTM, GRU or plain RNN). Its input at step t depends on step t-1's
attention, so it cannot hand a whole sequence to the fused kernel, and calling the module once
per step costs a kernel set-up per step and projects the token embeddings one step at a time.
Here the part of the first layer's input that is known in advance (the embedded target tokens)
is projected for all steps in one matmul, and each step adds only what depends on the previous
one:

    gates_t = [W_x x_t + b]  +  W_f f_t  +  W_h h_{t-1}     (f_t: the fed-back attentional vector)
               precomputed     per step

Weights are the module's own, so a sequence run through ``rnn(...)`` in one call and step by
step here gives the same numbers.

``additive_scores``, for additive (Bahdanau) attention at decoding time: v^T sigmoid(q + k) for
every query and source position needs a (rows, queries, src_len, hidden) tensor, and its cost is
memory traffic, not arithmetic (for a beam of 128 sentences x 4 over 200 source words, 105 MB a
step, which no cache holds). Made a block of rows at a time, each block stays in the cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# An RNN's state: h, or (h, c) for an LSTM; each (num_layers * num_directions, batch, hidden).
RNNState = Tensor | tuple[Tensor, Tensor]


# ---------------------------------------------------------------------------------------------
# The encoder: fused calls over segments of time
# ---------------------------------------------------------------------------------------------


def rnn_by_segments(
    rnn: nn.RNNBase, inputs: Tensor, lengths: Tensor, residual: bool = False
) -> tuple[Tensor, RNNState]:
    """A batch-first ``rnn`` (LSTM, GRU or plain RNN) over inputs (batch, src_len, input_size) of
    ``lengths`` (batch,) on the CPU, as packed sequences would run it: outputs (batch, src_len,
    directions * hidden), zero at padding, and the final state of every layer and direction.
    ``residual``: from the second layer on, each layer's input is added to its output."""
    is_lstm = isinstance(rnn, nn.LSTM)
    directions = 2 if rnn.bidirectional else 1
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order].tolist()
    x = inputs.index_select(0, order.to(inputs.device))  # (batch, src_len, input) longest first
    reverse = _reversal_index(sorted_lengths, inputs.size(1), inputs.device)
    finals_h, finals_c = [], []
    for layer in range(rnn.num_layers):
        if layer > 0:
            x = F.dropout(x, rnn.dropout, rnn.training)
        outputs = []
        for direction in range(directions):
            flipped = x if direction == 0 else x.gather(1, reverse.expand(-1, -1, x.size(2)))
            out, h, c = _one_direction(rnn, flipped, sorted_lengths, _weights(rnn, layer, direction), is_lstm)
            outputs.append(out if direction == 0 else out.gather(1, reverse.expand(-1, -1, out.size(2))))
            finals_h.append(h)
            finals_c.append(c)
        below, x = x, torch.cat(outputs, dim=-1)  # (batch, src_len, directions * hidden)
        if residual and layer > 0:
            x = x + below
    unsort = torch.argsort(order).to(inputs.device)
    h = torch.stack(finals_h).index_select(1, unsort)  # (layers * directions, batch, hidden)
    final = (h, torch.stack(finals_c).index_select(1, unsort)) if is_lstm else h
    return x.index_select(0, unsort), final


def _one_direction(
    rnn: nn.RNNBase, x: Tensor, lengths: list[int], weights: list[Tensor], is_lstm: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer, one direction, over x (batch, src_len, input) sorted longest first, a segment
    of time per distinct length. Returns outputs (batch, src_len, hidden), zero at padding, and
    each sequence's final h and c (c None for a GRU or plain RNN), (batch, hidden)."""
    kernel = _FUSED.get(rnn.mode)  # None for an LSTM, which has its own call below
    batch, src_len = x.size(0), x.size(1)
    h = x.new_zeros(1, batch, rnn.hidden_size)
    c = torch.zeros_like(h) if is_lstm else None
    segments, final_h, final_c = [], [], []
    start, active = 0, batch
    for end in sorted(set(lengths)):
        if is_lstm:
            out, h, c = torch.lstm(x[:active, start:end], (h, c), weights, True, 1, 0.0, rnn.training, False, True)
        else:
            out, h = kernel(x[:active, start:end], h, weights, True, 1, 0.0, rnn.training, False, True)
        segments.append(F.pad(out, (0, 0, 0, 0, 0, batch - active)))  # rows that ended: zeros
        ending = lengths.count(end)  # the last rows of the running prefix end here
        final_h.append(h[0, active - ending : active])
        if c is not None:
            final_c.append(c[0, active - ending : active])
        active -= ending
        h = h[:, :active]
        c = c[:, :active] if c is not None else None
        start = end
    outputs = F.pad(torch.cat(segments, dim=1), (0, 0, 0, src_len - start))
    # the first segment ends the shortest sequences, the last rows: reverse to batch order
    return outputs, torch.cat(final_h[::-1]), torch.cat(final_c[::-1]) if final_c else None


_FUSED = {"GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}  # the kernels of one state h


def _weights(rnn: nn.RNNBase, layer: int, direction: int) -> list[Tensor]:
    suffix = f"l{layer}" + ("_reverse" if direction else "")
    return [getattr(rnn, f"{name}_{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _reversal_index(lengths: list[int], src_len: int, device: torch.device) -> Tensor:
    """(batch, src_len, 1) gather index that reverses each row within its length; padding stays."""
    positions = torch.arange(src_len)
    lengths_t = torch.tensor(lengths).unsqueeze(1)
    index = torch.where(positions < lengths_t, lengths_t - 1 - positions, positions)
    return index.unsqueeze(-1).to(device)


# ---------------------------------------------------------------------------------------------
# Additive attention scores, a block of rows at a time
# ---------------------------------------------------------------------------------------------

BLOCK_ELEMENTS = 1 << 21  # features made at a time: 8 MB of fp32, well inside a server's L3 cache


def additive_scores(
    query: Tensor,
    proj_keys: Tensor,
    energy: Tensor,
    coverage: Tensor | None = None,
    coverage_weight: Tensor | None = None,
    block_elements: int = BLOCK_ELEMENTS,
) -> Tensor:
    """energy sigmoid(query + proj_keys [+ coverage_weight * coverage]) for query (rows, queries,
    hidden), proj_keys (rows, src_len, hidden), energy (1, hidden), coverage (rows, src_len) and
    coverage_weight (hidden,) -> (rows, queries, src_len).

    Blocks of rows only on CPUs and without autograd (decoding): training keeps the features for
    the backward pass anyway, and a GPU's bandwidth makes one block the faster."""
    rows, per_row = query.size(0), query.size(1) * proj_keys.size(1) * proj_keys.size(2)
    block = max(1, block_elements // per_row)
    if block >= rows or query.is_cuda or torch.is_grad_enabled():
        return _additive_block(query, proj_keys, energy, coverage, coverage_weight)
    scores = query.new_empty(rows, query.size(1), proj_keys.size(1))
    for start in range(0, rows, block):
        part = slice(start, start + block)
        covered = coverage[part] if coverage is not None else None
        scores[part] = _additive_block(query[part], proj_keys[part], energy, covered, coverage_weight)
    return scores


def _additive_block(
    query: Tensor, proj_keys: Tensor, energy: Tensor, coverage: Tensor | None, coverage_weight: Tensor | None
) -> Tensor:
    features = query.unsqueeze(2) + proj_keys.unsqueeze(1)  # (rows, queries, src_len, hidden)
    if coverage is not None and coverage_weight is not None:
        features = torch.addcmul(features, coverage[:, None, :, None], coverage_weight)
    return F.linear(torch.sigmoid_(features), energy).squeeze(-1)  # (rows, queries, src_len)


# ---------------------------------------------------------------------------------------------
# The decoder: one step at a time with the module's weights
# ---------------------------------------------------------------------------------------------


class RNNSteps:
    """Steps through ``rnn`` (batch-first ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``); create one per
    sequence, so that it sees the current weights.

    Two options of the decoder change the recurrence and run here only (a visible branch; off,
    the step is the plain one): ``residual``, from the second layer on a layer's input is added
    to its output (the state it carries is its own); ``norms``, layer normalization (Ba et al.
    2016; recurrence.LayerNormCell per layer) of the input and the recurrent pre-activations, and
    of an LSTM's cell before its output."""

    def __init__(
        self, rnn: nn.RNNBase, known_size: int, residual: bool = False, norms: nn.ModuleList | None = None
    ) -> None:
        """``known_size``: the leading input features known for every step in advance."""
        self.rnn, self.known_size = rnn, known_size
        self.residual, self.norms = residual, norms
        self.is_lstm, self.is_gru = rnn.mode == "LSTM", rnn.mode == "GRU"
        self.activation = torch.relu if rnn.mode == "RNN_RELU" else torch.tanh  # the plain RNN's
        self.dropout = rnn.dropout if rnn.training else 0.0
        # the weights of the per-step part of layer 0's input, copied once: a column slice is not
        # a layout the matmul takes, and would be copied at every step
        self.extra_weight = rnn.weight_ih_l0[:, known_size:].t().contiguous()  # (input - known, gates)

    def project_known(self, known: Tensor) -> Tensor:
        """known (batch, steps, known_size) -> its share of layer 0's input gates, biases included:
        (batch, steps, gates)."""
        return F.linear(known, self.rnn.weight_ih_l0[:, : self.known_size], self._input_bias(0))

    def _input_bias(self, layer: int) -> Tensor:
        """Both biases, where they add up before the nonlinearity (not in a GRU's candidate)."""
        b_ih = getattr(self.rnn, f"bias_ih_l{layer}")
        return b_ih if self.is_gru else b_ih + getattr(self.rnn, f"bias_hh_l{layer}")

    def step(self, known_gates: Tensor, extra: Tensor | None, state: RNNState) -> tuple[Tensor, RNNState]:
        """known_gates (batch, gates) from ``project_known``; extra (batch, input - known_size),
        the rest of layer 0's input, or None; state (layers, batch, hidden) h or (h, c).
        Returns the top layer's output (batch, hidden) and the new state."""
        h, c = state if self.is_lstm else (state, None)
        new_h, new_c, outputs = [], [], []  # outputs: what the layer above reads
        for layer in range(self.rnn.num_layers):
            w_hh = getattr(self.rnn, f"weight_hh_l{layer}")
            if layer == 0:
                input_gates = known_gates if extra is None else torch.addmm(known_gates, extra, self.extra_weight)
            else:
                below = F.dropout(outputs[-1], self.dropout, training=self.dropout > 0)
                input_gates = F.linear(below, getattr(self.rnn, f"weight_ih_l{layer}"), self._input_bias(layer))
            if self.norms is not None:
                hidden, cell = self._normalized(self.norms[layer], layer, input_gates, h[layer], c)
            elif self.is_lstm:
                hidden, cell = lstm_cell(torch.addmm(input_gates, h[layer], w_hh.t()), c[layer])
            elif self.is_gru:
                recurrent = F.linear(h[layer], w_hh, getattr(self.rnn, f"bias_hh_l{layer}"))
                hidden, cell = gru_cell(input_gates, recurrent, h[layer]), None
            else:
                hidden, cell = self.activation(torch.addmm(input_gates, h[layer], w_hh.t())), None
            new_h.append(hidden)
            new_c.append(cell)
            outputs.append(hidden + below if self.residual and layer > 0 else hidden)
        h = torch.stack(new_h)
        return outputs[-1], ((h, torch.stack(new_c)) if self.is_lstm else h)

    def _normalized(
        self, norm: nn.Module, layer: int, input_gates: Tensor, h: Tensor, c: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """One layer's step with layer normalization: input_gates (batch, gates), h (batch, hidden),
        c (layers, batch, hidden) or None -> the layer's new h and c."""
        recurrent = F.linear(
            h, getattr(self.rnn, f"weight_hh_l{layer}"), getattr(self.rnn, f"bias_hh_l{layer}") if self.is_gru else None
        )
        input_gates, recurrent = norm.input(input_gates), norm.recurrent(recurrent)
        if self.is_lstm:
            return lstm_cell(input_gates + recurrent, c[layer], norm.cell)
        if self.is_gru:
            return gru_cell(input_gates, recurrent, h), None
        return self.activation(input_gates + recurrent), None


def lstm_cell(gates: Tensor, cell: Tensor, cell_norm: nn.Module | None = None) -> tuple[Tensor, Tensor]:
    """gates (batch, 4 * hidden) in PyTorch's order i, f, g, o -> (h, c); ``cell_norm``
    (layer normalization) applies to the cell as the output reads it."""
    i, f, g, o = gates.chunk(4, dim=1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell if cell_norm is None else cell_norm(cell)), cell


def gru_cell(input_gates: Tensor, hidden_gates: Tensor, h: Tensor) -> Tensor:
    """input_gates = W_i x + b_i, hidden_gates = W_h h + b_h, each (batch, 3 * hidden) in
    PyTorch's order r, z, n -> the new h."""
    i_r, i_z, i_n = input_gates.chunk(3, dim=1)
    h_r, h_z, h_n = hidden_gates.chunk(3, dim=1)
    reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    candidate = torch.tanh(i_n + reset * h_n)
    return candidate + update * (h - candidate)
