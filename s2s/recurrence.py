"""What the RNN lecture adds to a stacked RNN, shared by the encoder and the decoder.

- three cells: the plain RNN (Elman: h_t = tanh or ReLU(W_x x_t + W_h h_{t-1} + b)), the GRU
  and the LSTM, each one PyTorch module (``nn.RNN``, ``nn.GRU``, ``nn.LSTM``) so that every
  fast path (cuDNN, the fused CPU kernels of kernels.py) runs all three the same way;
- residual connections between stacked layers (GNMT, Wu et al. 2016): from the second layer on,
  a layer's input is added to its output, x_{l+1} = RNN_l(x_l) + x_l, so the gradient reaches
  the lower layers through an identity path (the encoder and the decoder apply it);
- the initialization of the recurrent weights W_h, per gate block: PyTorch's default
  (uniform in +-1/sqrt(hidden)), ``identity`` (Le et al. 2015, the IRNN: W_h = I, biases 0, so
  that a ReLU RNN starts by carrying its state unchanged) or ``orthogonal`` (Saxe et al. 2014:
  all singular values 1, so that repeated products neither shrink nor grow the gradient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from s2s.options import OptionError, PartOptions

Cell = Literal["lstm", "gru", "rnn"]
CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


@dataclass
class RecurrenceOptions(PartOptions):
    """The options every RNN part (encoder, decoder) has for its recurrence."""

    nonlinearity: Literal["tanh", "relu"] = "tanh"  # the plain RNN's activation (only for the rnn cell)
    residual: bool = False  # GNMT residual connections from the second layer on (no effect with one layer)
    recurrent_init: Literal["default", "identity", "orthogonal"] = "default"  # the recurrent weights' init, per gate

    def check_cell(self, cell: str) -> None:
        """Raises OptionError where an option does not apply to ``cell``."""
        if cell != "rnn" and self.nonlinearity != "tanh":
            raise OptionError("nonlinearity", f"applies only to the plain RNN cell (rnn), not {cell}; remove it")


def make_rnn(cell: str, input_size: int, hidden_size: int, options: RecurrenceOptions, **kwargs: object) -> nn.RNNBase:
    """A batch-first ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with ``options``' nonlinearity and
    recurrent init; ``kwargs`` (num_layers, dropout, bidirectional) go to the module."""
    if cell == "rnn":
        kwargs["nonlinearity"] = options.nonlinearity
    rnn = CELLS[cell](input_size, hidden_size, batch_first=True, **kwargs)
    init_recurrent(rnn, options.recurrent_init)
    return rnn


@torch.no_grad()
def init_recurrent(rnn: nn.RNNBase, kind: str) -> None:
    """Initializes every layer's and direction's W_h (gates x hidden, hidden), one gate block at a
    time: ``identity`` (and its biases 0), ``orthogonal``, or ``default`` (left as PyTorch made it)."""
    if kind == "default":
        return
    for name, weight in rnn.named_parameters():
        if not name.startswith("weight_hh"):
            continue
        for block in weight.split(rnn.hidden_size):  # (hidden, hidden) per gate, in place
            if kind == "identity":
                block.copy_(torch.eye(rnn.hidden_size))
            else:
                nn.init.orthogonal_(block)
        if kind == "identity":
            suffix = name.removeprefix("weight_hh")
            getattr(rnn, f"bias_ih{suffix}").zero_()
            getattr(rnn, f"bias_hh{suffix}").zero_()


class LayerNormCell(nn.Module):
    """Layer normalization of one layer's recurrence (Ba et al. 2016), for kernels.RNNSteps:

        gates_t = LN_x(W_x x_t + b) + LN_h(W_h h_{t-1})       (each with its own gain and bias)
        h_t     = o_t * tanh(LN_c(c_t))                        (an LSTM's cell, as its output reads it)

    A GRU normalizes its input and recurrent parts apart (its reset gate scales the recurrent one)."""

    def __init__(self, cell: str, hidden_size: int) -> None:
        super().__init__()
        gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell] * hidden_size
        self.input = nn.LayerNorm(gates)
        self.recurrent = nn.LayerNorm(gates)
        self.cell = nn.LayerNorm(hidden_size) if cell == "lstm" else None
