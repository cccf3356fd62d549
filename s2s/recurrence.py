"""One time step of an ``nn.LSTM`` / ``nn.GRU``, computed with the module's own weights.

The decoder's step-by-step path cannot hand a whole sequence to the fused RNN kernel: its
input at step t depends on step t-1's attention. Calling the module once per step costs a
kernel set-up per step and projects the token embeddings one step at a time. Here the part of
the first layer's input that is known in advance (the embedded target tokens) is projected for
all steps in one matmul, and each step adds only what depends on the previous one:

    gates_t = [W_x x_t + b]  +  W_f f_t  +  W_h h_{t-1}     (f_t: the fed-back attentional vector)
               precomputed     per step

Weights are shared with the module, so a sequence run through ``rnn(...)`` in one call and
step by step here gives the same numbers (the decoder's fast path and step path).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s.encoders import RNNState


class RNNSteps:
    """Steps through ``rnn`` (batch-first ``nn.LSTM`` or ``nn.GRU``); create one per sequence,
    so that it sees the current weights."""

    def __init__(self, rnn: nn.LSTM | nn.GRU, known_size: int) -> None:
        """``known_size``: the leading input features known for every step in advance."""
        self.rnn, self.known_size = rnn, known_size
        self.is_lstm = isinstance(rnn, nn.LSTM)
        self.dropout = rnn.dropout if rnn.training else 0.0
        # the weights of the per-step part of layer 0's input, copied once: a column slice is not
        # a layout the matmul takes, and would be copied at every step
        self.extra_weight = rnn.weight_ih_l0[:, known_size:].t().contiguous()  # (input - known, gates)

    def project_known(self, known: Tensor) -> Tensor:
        """known (batch, steps, known_size) -> its share of layer 0's input gates, biases included:
        (batch, steps, gates)."""
        weight = self.rnn.weight_ih_l0[:, : self.known_size]
        bias = self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0 if self.is_lstm else self.rnn.bias_ih_l0
        return F.linear(known, weight, bias)

    def step(self, known_gates: Tensor, extra: Tensor | None, state: RNNState) -> tuple[Tensor, RNNState]:
        """known_gates (batch, gates) from ``project_known``; extra (batch, input - known_size),
        the rest of layer 0's input, or None; state (layers, batch, hidden) h or (h, c).
        Returns the top layer's output (batch, hidden) and the new state."""
        h, c = state if self.is_lstm else (state, None)
        new_h, new_c = [], []
        for layer in range(self.rnn.num_layers):
            w_ih, w_hh = getattr(self.rnn, f"weight_ih_l{layer}"), getattr(self.rnn, f"weight_hh_l{layer}")
            if layer == 0:
                input_gates = known_gates if extra is None else torch.addmm(known_gates, extra, self.extra_weight)
            else:
                below = F.dropout(new_h[-1], self.dropout, training=self.dropout > 0)
                b_ih = getattr(self.rnn, f"bias_ih_l{layer}")
                input_gates = F.linear(below, w_ih, b_ih + getattr(self.rnn, f"bias_hh_l{layer}") if self.is_lstm else b_ih)
            if self.is_lstm:
                hidden, cell = _lstm_cell(torch.addmm(input_gates, h[layer], w_hh.t()), c[layer])
                new_c.append(cell)
            else:
                hidden = _gru_cell(input_gates, F.linear(h[layer], w_hh, getattr(self.rnn, f"bias_hh_l{layer}")), h[layer])
            new_h.append(hidden)
        h = torch.stack(new_h)
        return new_h[-1], ((h, torch.stack(new_c)) if self.is_lstm else h)


def _lstm_cell(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
    """gates (batch, 4 * hidden) in PyTorch's order i, f, g, o -> (h, c)."""
    i, f, g, o = gates.chunk(4, dim=1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell), cell


def _gru_cell(input_gates: Tensor, hidden_gates: Tensor, h: Tensor) -> Tensor:
    """input_gates = W_i x + b_i, hidden_gates = W_h h + b_h, each (batch, 3 * hidden) in
    PyTorch's order r, z, n -> the new h."""
    i_r, i_z, i_n = input_gates.chunk(3, dim=1)
    h_r, h_z, h_n = hidden_gates.chunk(3, dim=1)
    reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    candidate = torch.tanh(i_n + reset * h_n)
    return candidate + update * (h - candidate)
