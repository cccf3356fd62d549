"""int8 inference on CPUs: ``Summarizer.load(ckpt, quantize="int8")``, ``s2s predict|serve --quantize int8``.

Dynamic quantization (``torch.ao.quantization.quantize_dynamic``): the weights of the linear
layers are stored as int8, one scale per output row (per channel), and each call quantizes its
input on the fly, multiplies in int8 (VNNI where the CPU has it) and returns fp32. The output
layer (hidden x target vocabulary) is most of a decoding step's arithmetic, so it gains most; the
other linear layers of a family (the attentional vector, the copy switch, the bridge, the
Transformer's projections and feed-forward layers) come along.

Kept fp32:
- linear layers whose weights a fast kernel reads itself (``KERNEL_WEIGHTS``: the additive
  attention's energy vector and coverage weight, a few hundred numbers each);
- the RNNs: the decoder's step cell (``kernels.RNNSteps``) reads the LSTM's weights directly, and
  the encoder runs once per sentence, through the fused fp32 kernel (``kernels.rnn_by_segments``);
- embeddings (a lookup, no arithmetic).

Per-row scales keep a shortlist exact on int8 weights: the rows of the chosen words, with their
own scales, are the same int8 numbers (``shortlist.output_logits``).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from s2s.errors import ConfigError

QUANTIZE = ("int8",)  # the choices of --quantize (fp32: none, the default)
KERNEL_WEIGHTS = ("energy", "coverage_layer")  # linear layers whose weights kernels read: fp32


def quantize_model(model: nn.Module, mode: str | None, device: torch.device) -> nn.Module:
    """``model`` with its linear layers dynamically quantized to ``mode`` (``int8``); ``None`` or
    ``fp32``: unchanged. A ``ConfigError`` for an unknown mode or a device that cannot run it."""
    if mode in (None, "fp32"):
        return model
    if mode not in QUANTIZE:
        raise ConfigError(f"--quantize {mode}: unknown quantization (choices: fp32, {', '.join(QUANTIZE)})")
    if device.type != "cpu":
        raise ConfigError(
            f"--quantize {mode}: dynamic int8 runs on the CPU only, not on {device.type}; use --device cpu, "
            "or fp32 on the GPU"
        )
    names = quantizable_linears(model)
    if not names:
        raise ConfigError(f"--quantize {mode}: {type(model).__name__} has no linear layers to quantize")
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch deprecates eager-mode quantization in favour of torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.eval(), {name: per_channel_dynamic_qconfig for name in names}, inplace=False)


def quantizable_linears(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` modules of ``model`` that run as modules (not ``KERNEL_WEIGHTS``)."""
    return [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear and name.rsplit(".", 1)[-1] not in KERNEL_WEIGHTS
    ]


def is_quantized(layer: nn.Module) -> bool:
    """Whether ``layer`` is a dynamically quantized linear layer."""
    return isinstance(layer, torch.ao.nn.quantized.dynamic.Linear)
