"""RNN encoders (LSTM, GRU): bidirectional, stacked, over packed sequences."""
from __future__ import annotations

from typing import Union

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from s2s.config import EncoderConfig
from s2s.registry import Registry

ENCODERS = Registry("encoder")

# An RNN's final state: h, or (h, c) for an LSTM; each (num_layers * num_directions, batch, hidden).
RNNState = Union[Tensor, tuple[Tensor, Tensor]]


class RNNEncoder(nn.Module):
    """Runs an RNN over the embedded source; padding is never computed on (packed sequences)."""

    rnn_type: type[nn.RNNBase]

    def __init__(self, cfg: EncoderConfig, input_size: int) -> None:
        super().__init__()
        self.rnn = self.rnn_type(
            input_size,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.num_layers
        self.num_directions = 2 if cfg.bidirectional else 1
        self.output_size = self.num_directions * cfg.hidden_size

    def forward(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, RNNState]:
        """embedded (batch, src_len, input_size), lengths (batch,) on the CPU.

        Returns the outputs (batch, src_len, num_directions * hidden), zero at padding,
        and the final state of every layer and direction.
        """
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_outputs, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(
            packed_outputs, batch_first=True, total_length=embedded.size(1)
        )
        return outputs, final


@ENCODERS.register("lstm")
class LSTMEncoder(RNNEncoder):
    rnn_type = nn.LSTM


@ENCODERS.register("gru")
class GRUEncoder(RNNEncoder):
    rnn_type = nn.GRU
