"""RNN encoders (LSTM, GRU): bidirectional, stacked; padding is never computed on.

On GPUs the batch goes through cuDNN as a packed sequence. On CPUs PyTorch's fused (MKL-DNN)
RNN kernel only takes batches whose sequences all have one length: a packed batch of mixed
lengths falls back to a step-by-step loop, about three times slower. So on CPUs the encoder
does the packing itself, a segment of time at a time: with the batch sorted longest first, the
sequences still running at any time are a prefix of it, and that prefix only changes where a
sequence ends. Each stretch between two such ends is one call of the fused kernel, the state
carried over; the backward direction runs the same way over each sequence reversed within its
length. With length-bucketed batches that is a few fused calls per layer and direction, and
the outputs and final states are those of packed sequences, exactly.
"""
from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from s2s.config import EncoderConfig
from s2s.registry import Registry

ENCODERS = Registry("encoder")

# An RNN's final state: h, or (h, c) for an LSTM; each (num_layers * num_directions, batch, hidden).
RNNState = Union[Tensor, tuple[Tensor, Tensor]]


class RNNEncoder(nn.Module):
    """Runs an RNN over the embedded source (see the module docstring)."""

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
        self.is_lstm = self.rnn_type is nn.LSTM
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.num_layers
        self.num_directions = 2 if cfg.bidirectional else 1
        self.output_size = self.num_directions * cfg.hidden_size

    def forward(self, embedded: Tensor, lengths: Tensor, packed: bool | None = None) -> tuple[Tensor, RNNState]:
        """embedded (batch, src_len, input_size), lengths (batch,) on the CPU.

        Returns the outputs (batch, src_len, num_directions * hidden), zero at padding, and the
        final state of every layer and direction. ``packed`` forces PyTorch's packed sequences
        (the default on GPUs) or the segment-by-segment path (the default on CPUs).
        """
        if packed if packed is not None else embedded.is_cuda:
            return self._packed(embedded, lengths)
        return self._by_segments(embedded, lengths)

    def _packed(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, RNNState]:
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_outputs, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
        return outputs, final

    def _by_segments(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, RNNState]:
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order].tolist()
        inputs = embedded.index_select(0, order.to(embedded.device))  # (batch, src_len, input) longest first
        reverse = _reversal_index(sorted_lengths, embedded.size(1), embedded.device)
        finals_h, finals_c = [], []
        for layer in range(self.num_layers):
            if layer > 0:
                inputs = F.dropout(inputs, self.rnn.dropout, self.training)
            outputs = []
            for direction in range(self.num_directions):
                x = inputs if direction == 0 else inputs.gather(1, reverse.expand(-1, -1, inputs.size(2)))
                out, h, c = self._run(x, sorted_lengths, self._weights(layer, direction))
                outputs.append(out if direction == 0 else out.gather(1, reverse.expand(-1, -1, out.size(2))))
                finals_h.append(h)
                finals_c.append(c)
            inputs = torch.cat(outputs, dim=-1)  # (batch, src_len, directions * hidden)
        unsort = torch.argsort(order).to(embedded.device)
        outputs = inputs.index_select(0, unsort)
        h = torch.stack(finals_h).index_select(1, unsort)  # (layers * directions, batch, hidden)
        return outputs, ((h, torch.stack(finals_c).index_select(1, unsort)) if self.is_lstm else h)

    def _run(self, x: Tensor, lengths: list[int], weights: list[Tensor]) -> tuple[Tensor, Tensor, Tensor | None]:
        """One layer, one direction, over x (batch, src_len, input) sorted longest first, a
        segment of time per distinct length. Returns outputs (batch, src_len, hidden), zero at
        padding, and each sequence's final h and c (c None for a GRU), (batch, hidden)."""
        batch, src_len = x.size(0), x.size(1)
        h = x.new_zeros(1, batch, self.hidden_size)
        c = torch.zeros_like(h) if self.is_lstm else None
        segments, final_h, final_c = [], [], []
        start, active = 0, batch
        for end in sorted(set(lengths)):
            if self.is_lstm:
                out, h, c = torch.lstm(x[:active, start:end], (h, c), weights, True, 1, 0.0, self.training, False, True)
            else:
                out, h = torch.gru(x[:active, start:end], h, weights, True, 1, 0.0, self.training, False, True)
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

    def _weights(self, layer: int, direction: int) -> list[Tensor]:
        suffix = f"l{layer}" + ("_reverse" if direction else "")
        return [getattr(self.rnn, f"{name}_{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _reversal_index(lengths: list[int], src_len: int, device: torch.device) -> Tensor:
    """(batch, src_len, 1) gather index that reverses each row within its length; padding stays."""
    positions = torch.arange(src_len)
    lengths_t = torch.tensor(lengths).unsqueeze(1)
    index = torch.where(positions < lengths_t, lengths_t - 1 - positions, positions)
    return index.unsqueeze(-1).to(device)


@ENCODERS.register("lstm")
class LSTMEncoder(RNNEncoder):
    rnn_type = nn.LSTM


@ENCODERS.register("gru")
class GRUEncoder(RNNEncoder):
    rnn_type = nn.GRU
