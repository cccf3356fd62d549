"""Gradient flow through the encoder's time steps: what vanishing and exploding gradients look like.

For a batch, the profile is ||dL/dh_t|| for each source position t = 1..T, h_t the encoder's
output at t (all layers' and directions' features of the top layer), averaged over the
sequences that reach t; L is the batch's mean token loss. A plain RNN's profile falls (or
grows) geometrically with the distance from where the loss reads the state; gates (GRU, LSTM),
identity or orthogonal initialization and residual connections flatten it.

``train.log_gradient_flow: true`` logs the profile of the first dev batch at every evaluation
(TensorBoard ``dev/gradient_flow``, an image); scripts/gradient_flow.py draws it for the
lecture's cells side by side. The figures need matplotlib (``pip install 's2s[plot]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from s2s.batching import Batch
from s2s.extras import require
from s2s.model import Seq2SeqModel

FEATURE = "train.log_gradient_flow"


@contextlib.contextmanager
def encoder_outputs(model: Seq2SeqModel, inputs: bool = False) -> Iterator[list[Tensor]]:
    """Collects the encoder's outputs h (batch, src_len, size) of every forward pass inside, or
    (``inputs``) its embedded inputs x, each keeping its gradient (``.grad`` after a backward
    pass). Without attention dL/dh_t is zero (the loss reads only the final state, another
    output of the RNN); dL/dx_t is then what the recurrence carries back to step t."""
    captured: list[Tensor] = []

    def keep(module: Any, args: Any, output: Tensor | tuple) -> None:
        tensor = args[0] if inputs else output[0] if isinstance(output, tuple) else output
        if tensor.requires_grad:
            tensor.retain_grad()
        captured.append(tensor)

    handle = model.encoder.register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


def norms_by_time_step(grad: Tensor, mask: Tensor) -> Tensor:
    """grad (batch, src_len, size), mask (batch, src_len) True at real tokens -> (src_len,) the
    mean ||grad_t|| over the sequences that reach t."""
    norms = grad.float().norm(dim=-1) * mask  # (batch, src_len)
    return norms.sum(0) / mask.sum(0).clamp(min=1)


def time_step_profile(model: Seq2SeqModel, batch: Batch, *, coverage: bool = False) -> Tensor:
    """(src_len,) ||dL/dh_t|| for one batch; the parameters' gradients are left untouched."""
    with encoder_outputs(model) as captured, torch.enable_grad():
        out = model(batch, coverage=coverage)
        loss = out.token_loss.sum() / batch.tgt_mask.sum()
        (grad,) = torch.autograd.grad(loss, captured[0])
    return norms_by_time_step(grad, batch.src_mask)


def require_figures() -> Any:
    """matplotlib's Figure module; a one-line error naming the plot extra where it is missing."""
    return require("matplotlib.figure", "plot", FEATURE)


def profile_figure(
    profiles: Mapping[str, Sequence[float]] | Mapping[str, Mapping[str, Sequence[float]]],
    losses: Mapping[str, Sequence[float]] | None = None,
    grad_norms: Mapping[str, Sequence[float]] | None = None,
    title: str = "",
) -> Any:
    """A matplotlib Figure: the profiles (log scale; a mapping of titled mappings draws a panel
    per title), and beside them, where given, the loss and the global gradient norm per
    training step, one line per label in every panel."""
    figure_module = require_figures()
    first = next(iter(profiles.values()), None)
    titled = profiles if isinstance(first, Mapping) else {"||dL/dh_t|| (log)": profiles}
    panels = [(series, "encoder time step t", ylabel, True) for ylabel, series in titled.items()]
    if losses:
        panels.append((losses, "training step", "loss (train)", False))
    if grad_norms:
        panels.append((grad_norms, "training step", "global gradient norm (log, before clipping)", True))
    fig = figure_module.Figure(figsize=(5.5 * len(panels), 4.2), dpi=100, layout="constrained")
    for ax, (series, xlabel, ylabel, log_scale) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for label, values in series.items():
            ax.plot(range(1, len(values) + 1), values, label=label, linewidth=1.4)
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    fig.axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def figure_pixels(fig: Any) -> Tensor:
    """(3, height, width) uint8, as TensorBoard's add_image takes it."""
    backend = require("matplotlib.backends.backend_agg", "plot", FEATURE)
    canvas = backend.FigureCanvasAgg(fig)
    canvas.draw()
    rgba = torch.frombuffer(bytearray(canvas.buffer_rgba()), dtype=torch.uint8)
    height, width = canvas.get_width_height()[::-1]
    return rgba.view(height, width, 4)[..., :3].permute(2, 0, 1)


def log_gradient_flow(
    writer: Any, model: Seq2SeqModel, examples: Sequence, *, step: int, device: torch.device, coverage: bool
) -> None:
    """The profile of the first (up to 64) dev examples, as the image ``dev/gradient_flow``."""
    batch = model.collate(examples, list(range(min(64, len(examples))))).to(device)
    profile = time_step_profile(model, batch, coverage=coverage).tolist()
    fig = profile_figure({f"step {step}": profile}, title="gradient reaching each source position")
    writer.add_image("dev/gradient_flow", figure_pixels(fig), step)
