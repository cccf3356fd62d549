"""Attention heatmaps: the labelled figure (words, copy column, colour scale; Pillow, ``s2s-summarizer[plot]``)
that ``s2s predict --plot-attention DIR`` writes as PNGs and training logs to TensorBoard, and the
bare grid as an image tensor (no plotting library needed)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from s2s.extras import require

log = logging.getLogger(__name__)

# viridis at 0, 0.25, 0.5, 0.75, 1
_ANCHORS = torch.tensor([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=torch.float)


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


# --------------------------------------------------------------------------------------------
# Labelled PNGs (``s2s predict --plot-attention DIR``): Pillow, the optional extra ``s2s-summarizer[plot]``
# --------------------------------------------------------------------------------------------

FONT_ENV = "S2S_FONT"  # a font file to label heatmaps with; else a known CJK font is looked for
_CJK_FONTS = (  # file names, preferred first: Debian/Ubuntu packages, then macOS and Windows fonts
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSerifCJK-Regular.ttc",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "DroidSansFallbackFull.ttf",
    "SourceHanSansSC-Regular.otf",
    "PingFang.ttc",
    "Hiragino Sans GB.ttc",
    "STHeiti Light.ttc",
    "msyh.ttc",
    "simhei.ttf",
    "simsun.ttc",
)
_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/System/Library/Fonts",
    "/Library/Fonts",
    "C:/Windows/Fonts",
)


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> Path | None:
    """A font file with Chinese glyphs: ``$S2S_FONT``, else a known one in the usual font folders."""
    if os.environ.get(FONT_ENV):
        return Path(os.environ[FONT_ENV])
    rank = {name.lower(): i for i, name in enumerate(_CJK_FONTS)}
    found = [
        path
        for folder in map(Path, _FONT_DIRS)
        if folder.expanduser().is_dir()
        for path in folder.expanduser().rglob("*")
        if path.name.lower() in rank
    ]
    return min(found, key=lambda path: rank[path.name.lower()], default=None)


def save_attention_png(
    path: str | Path,
    attention: Tensor,
    output_tokens: Sequence[str],
    source_tokens: Sequence[str],
    p_gen: Tensor | None = None,
    cell: int = 16,
) -> Path:
    """Write :func:`attention_figure` as a PNG."""
    require("PIL", "plot", "--plot-attention")
    path = Path(path)
    attention_figure(attention, output_tokens, source_tokens, p_gen, cell).save(path, format="PNG")
    return path


def attention_figure(
    attention: Tensor,
    output_tokens: Sequence[str],
    source_tokens: Sequence[str],
    p_gen: Tensor | None = None,
    cell: int = 16,
) -> Any:
    """Attention (out_len, src_len) as a PIL image: ``cell`` pixels a square, output words label
    the rows, source words the columns; with p_gen (out_len,), a column apart shows how much each
    word was copied (1 - p_gen); under the grid, the colour scale from 0 to 1. Words need a font
    that has them: without one (no CJK font for Chinese words) they are left out, with one warning."""
    from PIL import Image

    copied = None if p_gen is None else 1 - p_gen.detach().float().cpu()
    grid = _pixels(attention_image(attention, copied, max_side=1), cell)  # one pixel a square, enlarged
    column_words = [*source_tokens, *(["", "copy"] if p_gen is not None else [])]
    font = _label_font([*output_tokens, *column_words], size=cell - 4)
    scale = _colour_scale(max(grid.width, 5 * cell), cell)
    if font is None:
        row_labels, column_labels, margin = Image.new("RGB", (0, 0)), Image.new("RGB", (0, 0)), 0
    else:
        row_labels = _label_strip(output_tokens, cell, font)
        column_labels = _label_strip(column_words, cell, font).rotate(90, expand=True)  # read upwards
        margin = cell // 2
    left, top = margin + row_labels.width, margin + column_labels.height
    width = left + max(grid.width, scale.width) + margin
    image = Image.new("RGB", (width, top + grid.height + scale.height + margin), "white")
    image.paste(row_labels, (margin, top))
    image.paste(column_labels, (left, margin))
    image.paste(grid, (left, top))
    image.paste(scale, (left, top + grid.height))
    return image


def attention_tensor(
    attention: Tensor, output_tokens: Sequence[str], source_tokens: Sequence[str], p_gen: Tensor | None = None
) -> Tensor:
    """(3, H, W) uint8 for TensorBoard: :func:`attention_figure` (the ``--plot-attention`` image);
    without Pillow, the bare grid at 12 pixels a square (and one warning)."""
    try:
        figure = attention_figure(attention, output_tokens, source_tokens, p_gen)
    except ImportError:
        _warn_once(
            "TensorBoard heatmaps without labels or scale: Pillow is missing (pip install 's2s-summarizer[plot]')"
        )
        copied = None if p_gen is None else 1 - p_gen
        return attention_image(attention, copied, max_side=12 * max(attention.shape))
    pixels = torch.frombuffer(bytearray(figure.tobytes()), dtype=torch.uint8)
    return pixels.view(figure.height, figure.width, 3).permute(2, 0, 1).contiguous()


def _pixels(rgb: Tensor, cell: int) -> Any:
    """(3, rows, cols) uint8 -> a PIL image, ``cell`` pixels a value."""
    from PIL import Image

    rows, cols = rgb.shape[1:]
    image = Image.frombytes("RGB", (cols, rows), bytes(rgb.permute(1, 2, 0).flatten().tolist()))
    return image.resize((cols * cell, rows * cell), Image.Resampling.NEAREST)


def _colour_scale(width: int, cell: int) -> Any:
    """The colours from 0 (left) to 1 (right), ``width`` pixels, labelled 0, 0.5 and 1 beneath."""
    from PIL import Image, ImageDraw, ImageFont

    colours = colorize(torch.linspace(0, 1, width)).T.unsqueeze(1)  # (3, 1, width)
    bar = _pixels(colours, 1).resize((width, cell // 2), Image.Resampling.NEAREST)
    scale = Image.new("RGB", (width, cell // 2 + cell // 2 + cell), "white")
    scale.paste(bar, (0, cell // 2))
    draw, font = ImageDraw.Draw(scale), ImageFont.load_default(max(cell - 4, 8))
    y = cell + cell // 2
    for x, text, anchor in ((0, "0", "lm"), (width // 2, "0.5", "mm"), (width - 1, "1", "rm")):
        draw.text((x, y), text, fill="black", font=font, anchor=anchor)
    return scale


def _label_strip(words: Sequence[str], cell: int, font: Any) -> Any:
    """The words one under the other, left-aligned, ``cell`` pixels apart (a PIL image)."""
    from PIL import Image, ImageDraw

    width = max([int(font.getlength(word)) for word in words] + [1]) + cell // 2
    strip = Image.new("RGB", (width, cell * len(words)), "white")
    draw = ImageDraw.Draw(strip)
    for i, word in enumerate(words):
        draw.text((cell // 4, i * cell + cell // 2), word, fill="black", font=font, anchor="lm")
    return strip


def _label_font(words: Sequence[str], size: int) -> Any | None:
    """A font for ``words``: the CJK font where there is one, Pillow's own for ASCII-only words,
    else None (and one warning)."""
    from PIL import ImageFont

    font_file = find_cjk_font()
    if font_file is not None:
        try:
            return ImageFont.truetype(str(font_file), size)
        except OSError as err:
            _warn_once(f"cannot read the font {font_file} ({err}): heatmaps without word labels")
            return None
    if all(word.isascii() for word in words):
        return ImageFont.load_default(size)
    _warn_once(
        f"no CJK font found: heatmaps without word labels (install fonts-noto-cjk or fonts-wqy-zenhei, "
        f"or set {FONT_ENV} to a font file)"
    )
    return None


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)
