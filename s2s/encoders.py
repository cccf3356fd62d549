"""RNN encoders (LSTM, GRU, the plain RNN): bidirectional, stacked; padding is never computed on.

The embedded source runs through one ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: every layer reads the whole
sequence, forwards and (bidirectional) backwards, and the outputs of both directions are
concatenated per position. On GPUs the batch goes through cuDNN as a packed sequence. On CPUs
the same packed-sequence result comes from fused kernel calls over segments of time
(``kernels.rnn_by_segments``: several times faster than PyTorch's packed path there).

With ``residual: true`` (recurrence.py) each layer from the second on adds its input to its
output; the layers then run one at a time, always by segments (packed sequences run a stack
in one call, with no place to add the residual).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from s2s.kernels import RNNState, rnn_by_segments
from s2s.options import Dropout, PositiveInt
from s2s.recurrence import RecurrenceOptions, make_rnn
from s2s.registry import ENCODERS


@dataclass
class RNNEncoderOptions(RecurrenceOptions):
    hidden_size: PositiveInt = 256  # per direction
    num_layers: PositiveInt = 1  # stacked layers
    bidirectional: bool = True  # a backward RNN too; outputs are both directions concatenated
    dropout: Dropout = 0.0  # between stacked layers

    def validate(self, root: object) -> None:
        self.check_cell(self.type)


class RNNEncoder(nn.Module):
    """Runs an RNN over the embedded source (see the module docstring)."""

    cell: str  # recurrence.CELLS

    def __init__(self, cfg: RNNEncoderOptions, input_size: int) -> None:
        super().__init__()
        self.rnn = make_rnn(
            self.cell,
            input_size,
            cfg.hidden_size,
            cfg,
            num_layers=cfg.num_layers,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.residual = cfg.residual and cfg.num_layers > 1
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.num_layers
        self.num_directions = 2 if cfg.bidirectional else 1
        self.output_size = self.num_directions * cfg.hidden_size

    def forward(self, embedded: Tensor, lengths: Tensor, packed: bool | None = None) -> tuple[Tensor, RNNState]:
        """embedded (batch, src_len, input_size), lengths (batch,) on the CPU.

        Returns the outputs (batch, src_len, num_directions * hidden), zero at padding, and the
        final state of every layer and direction. ``packed`` forces PyTorch's packed sequences
        (the default on GPUs) or the segment-by-segment kernel (the default on CPUs).
        """
        if self.residual:
            return rnn_by_segments(self.rnn, embedded, lengths, residual=True)
        if not (packed if packed is not None else embedded.is_cuda):
            return rnn_by_segments(self.rnn, embedded, lengths)
        packed_input = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_outputs, final = self.rnn(packed_input)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
        return outputs, final


@ENCODERS.register("lstm", options=RNNEncoderOptions)
class LSTMEncoder(RNNEncoder):
    """A (bidirectional, stacked) LSTM over the embedded source."""

    cell = "lstm"


@ENCODERS.register("gru", options=RNNEncoderOptions)
class GRUEncoder(RNNEncoder):
    """A (bidirectional, stacked) GRU over the embedded source."""

    cell = "gru"


@ENCODERS.register("rnn", options=RNNEncoderOptions)
class PlainRNNEncoder(RNNEncoder):
    """A (bidirectional, stacked) plain RNN over the embedded source: tanh or ReLU (nonlinearity)."""

    cell = "rnn"
