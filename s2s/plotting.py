"""Attention heatmaps as image tensors (for TensorBoard), with no plotting library needed."""
from __future__ import annotations

import torch
from torch import Tensor

# viridis at 0, 0.25, 0.5, 0.75, 1
_ANCHORS = torch.tensor(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=torch.float
)


def colorize(values: Tensor) -> Tensor:
    """values in [0, 1] of any shape -> (*shape, 3) uint8 RGB on the viridis scale."""
    position = values.float().clamp(0, 1) * (len(_ANCHORS) - 1)
    low = position.floor().long().clamp(max=len(_ANCHORS) - 2)
    frac = (position - low).unsqueeze(-1)
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).round().to(torch.uint8)


def attention_image(attention: Tensor, p_gen: Tensor | None = None, max_side: int = 800) -> Tensor:
    """attention (out_len, src_len) -> (3, H, W) uint8: a row per output token, a column per
    source token; with p_gen (out_len,), one more column, apart on the right, shows it."""
    grid = attention.detach().float().cpu()
    if p_gen is not None:
        gap = torch.full((grid.size(0), 1), float("nan"))
        grid = torch.cat([grid, gap, p_gen.detach().float().cpu().view(-1, 1)], dim=1)
    cell = max(1, min(12, max_side // max(grid.shape)))
    rgb = colorize(torch.nan_to_num(grid, nan=0.0))  # (rows, cols, 3)
    rgb[grid.isnan()] = 255  # the gap is white
    rgb = rgb.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    return rgb.permute(2, 0, 1).contiguous()
