"""A plugin as a user writes one: an encoder and a learning-rate schedule of its own, each with an
option of its own, registered by importing this module (``s2s --plugin plugin_parts ...``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from s2s.errors import ConfigError
from s2s.options import PartOptions, PositiveFloat, PositiveInt
from s2s.registry import ENCODERS, SCHEDULERS


@dataclass
class ConvEncoderOptions(PartOptions):
    hidden_size: PositiveInt = 64  # channels of every layer
    kernel_size: PositiveInt = 3  # width of the convolution window (odd)
    num_layers: PositiveInt = 2  # stacked convolutions


@ENCODERS.register("conv", options=ConvEncoderOptions)
class ConvEncoder(nn.Module):
    """Stacked 1-D convolutions over the embedded source; the final state is the mean of the outputs."""

    def __init__(self, cfg: ConvEncoderOptions, input_size: int) -> None:
        super().__init__()
        if cfg.kernel_size % 2 == 0:
            raise ConfigError(f"model.encoder.kernel_size: must be odd, got {cfg.kernel_size}")
        sizes = [input_size] + [cfg.hidden_size] * cfg.num_layers
        self.layers = nn.ModuleList(
            nn.Conv1d(a, b, cfg.kernel_size, padding=cfg.kernel_size // 2) for a, b in zip(sizes, sizes[1:])
        )
        self.hidden_size, self.num_layers, self.num_directions = cfg.hidden_size, 1, 1
        self.output_size = cfg.hidden_size

    def forward(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """embedded (batch, src_len, input) -> outputs (batch, src_len, hidden), final h (1, batch, hidden)."""
        mask = (torch.arange(embedded.size(1)) < lengths.unsqueeze(1)).to(embedded.device).unsqueeze(1)
        x = embedded.transpose(1, 2)  # (batch, channels, src_len)
        for layer in self.layers:
            x = torch.relu(layer(x * mask)) * mask
        outputs = x.transpose(1, 2)
        final = outputs.sum(1) / lengths.to(outputs.device).unsqueeze(1)
        return outputs, final.unsqueeze(0)


@dataclass
class PolyOptions(PartOptions):
    power: PositiveFloat = 1.0  # 1: linear decay to zero at train.max_steps


@SCHEDULERS.register("poly", options=PolyOptions)
def poly(cfg: PolyOptions, optimizer: torch.optim.Optimizer, *, max_steps: int = 0, **_: object) -> LambdaLR:
    """(1 - step / train.max_steps) ** power times optimizer.lr."""
    if max_steps < 1:
        raise ConfigError("train.scheduler: poly needs train.max_steps")
    return LambdaLR(optimizer, lambda step: (1 - min(step, max_steps) / max_steps) ** cfg.power)
