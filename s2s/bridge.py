"""The bridge: from the encoder's final state to the decoder's initial state.

Encoder and decoder are independent: any encoder (LSTM/GRU/plain RNN, one or two directions, any
depth and size) can start any decoder (LSTM/GRU/plain RNN, any depth and size); a GRU and a plain
RNN have no cell state, only h. ``model.bridge`` picks how:

- ``concat``: the final forward and backward states, concatenated (OpenNMT-py's default; the
  decoder's hidden size must be num_directions x the encoder's). An LSTM decoder after an LSTM
  encoder gets the cell states the same way; after a GRU encoder its cells start at zero.
- ``linear``: ``tanh(W [forward; backward])``, learned, for any sizes; an LSTM decoder's cells
  get their own layer (from the encoder's cells, or from its hidden state after a GRU).
- ``zero``: the decoder starts from zeros.

When both sides have the same number of layers, encoder layer i starts decoder layer i;
otherwise the encoder's top layer starts every decoder layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from s2s.errors import ConfigError
from s2s.kernels import RNNState


class Bridge(nn.Module):
    def __init__(
        self,
        kind: str,
        *,
        encoder_hidden: int,
        encoder_layers: int,
        encoder_directions: int,
        decoder_hidden: int,
        decoder_layers: int,
        decoder_is_lstm: bool,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.encoder_layers = encoder_layers
        self.encoder_directions = encoder_directions
        self.decoder_hidden = decoder_hidden
        self.decoder_layers = decoder_layers
        self.decoder_is_lstm = decoder_is_lstm
        encoder_size = encoder_directions * encoder_hidden
        if kind == "concat" and encoder_size != decoder_hidden:
            raise ConfigError(
                f"model.bridge: concat needs model.decoder.hidden_size == {encoder_size} "
                f"(encoder hidden x directions), got {decoder_hidden}; use bridge: linear"
            )
        if kind == "linear":
            self.to_hidden = nn.Linear(encoder_size, decoder_hidden)
            self.to_cell = nn.Linear(encoder_size, decoder_hidden) if decoder_is_lstm else None

    def forward(self, final: RNNState) -> RNNState:
        """final: (encoder_layers * directions, batch, encoder_hidden) h, or (h, c).

        Returns the decoder's initial h, or (h, c), each (decoder_layers, batch, decoder_hidden).
        """
        h, c = final if isinstance(final, tuple) else (final, None)
        if self.kind == "zero":
            shape = (self.decoder_layers, h.size(1), self.decoder_hidden)
            h0 = h.new_zeros(shape)
            return (h0, h0.clone()) if self.decoder_is_lstm else h0
        h = self._by_decoder_layer(h)  # (decoder_layers, batch, directions * encoder_hidden)
        c = self._by_decoder_layer(c) if c is not None else None
        if self.kind == "linear":
            h0 = torch.tanh(self.to_hidden(h))
            if not self.decoder_is_lstm:
                return h0
            return h0, torch.tanh(self.to_cell(c if c is not None else h))
        if not self.decoder_is_lstm:  # concat
            return h
        return h, c if c is not None else torch.zeros_like(h)

    def _by_decoder_layer(self, state: Tensor) -> Tensor:
        """(layers * directions, batch, hidden) -> (decoder_layers, batch, directions * hidden)."""
        batch, hidden = state.size(1), state.size(2)
        layers = state.view(self.encoder_layers, self.encoder_directions, batch, hidden)
        layers = layers.transpose(1, 2).reshape(self.encoder_layers, batch, -1)
        if self.encoder_layers != self.decoder_layers:
            layers = layers[-1:].expand(self.decoder_layers, -1, -1)
        return layers.contiguous()
