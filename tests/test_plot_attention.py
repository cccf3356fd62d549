"""`s2s predict --plot-attention DIR`: one labelled heatmap PNG per input."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed: pip install 's2s-summarizer[plot]'")

from s2s import plotting  # noqa: E402
from s2s.cli import main  # noqa: E402
from s2s.plotting import colorize, find_cjk_font, save_attention_png  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEST_CSV = ROOT / "data" / "automaster_sample_test.csv"


@pytest.fixture
def no_cjk_font(monkeypatch):
    monkeypatch.setattr(plotting, "find_cjk_font", lambda: None)
    plotting._warn_once.cache_clear()
    yield
    plotting._warn_once.cache_clear()


def _predict(checkpoint: Path, out: Path, *args: str) -> int:
    return main(
        [
            "predict",
            "--checkpoint",
            str(checkpoint),
            "--input",
            str(TEST_CSV),
            "--output",
            str(out / "p.csv"),
            "--search",
            "greedy",
            "--max-length",
            "6",
            *args,
        ]
    )


def _has_ink(image, box: tuple[int, int, int, int]) -> bool:
    """Whether a region holds text: dark grey pixels (no colour of the viridis heatmap is grey)."""
    rgb = image.crop(box).tobytes()
    return any(rgb[i] == rgb[i + 1] == rgb[i + 2] < 100 for i in range(0, len(rgb), 3))


def test_predict_writes_a_labelled_png_per_input(pointer_generator: Path, tmp_path: Path) -> None:
    if find_cjk_font() is None:
        pytest.skip("no CJK font for the labels: apt-get install fonts-wqy-zenhei (or set S2S_FONT)")
    assert _predict(pointer_generator, tmp_path, "--plot-attention", str(tmp_path / "heat")) == 0
    pngs = sorted((tmp_path / "heat").iterdir())
    assert [p.name for p in pngs] == ["Q325.png", "Q326.png", "Q328.png", "Q329.png", "Q330.png"]  # one per row, by QID
    for png in pngs:
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            width, height = image.size
            assert _has_ink(image, (0, height // 2, width // 8, height))  # output words, left
            assert _has_ink(image, (0, 0, width, height // 3))  # source words, on top
            copy_column = {image.getpixel((width - 8 - 8, y)) for y in range(height)}
            assert len(copy_column - {(255, 255, 255)}) > 1  # the copy column: colours, not only text
            assert _has_ink(image, (width // 2, height - 16, width, height))  # the colour scale: its 1


def test_without_a_font_for_the_words_the_heatmap_has_no_labels_and_one_warning(no_cjk_font, tmp_path, caplog) -> None:
    attention = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    with caplog.at_level(logging.WARNING, logger="s2s.plotting"):
        for name in ("a", "b"):
            save_attention_png(
                tmp_path / f"{name}.png",
                attention,
                ["刹车", "异响"],
                ["刹车", "有", "异响"],
                p_gen=torch.tensor([0.25, 1.0]),
                cell=10,
            )
    assert [r.getMessage() for r in caplog.records] == [
        "no CJK font found: heatmaps without word labels (install fonts-noto-cjk or fonts-wqy-zenhei, "
        "or set S2S_FONT to a font file)"
    ]
    with Image.open(tmp_path / "a.png") as image:
        # 3 source columns, a gap, the copy column; 2 rows; then the colour scale (2 cells high)
        assert image.size == (10 * 5, 10 * 2 + 10 * 2)
        scale = colorize(torch.linspace(0, 1, 50))
        assert image.getpixel((0, 27)) == tuple(scale[0].tolist())  # the scale: 0 on the left ...
        assert image.getpixel((49, 27)) == tuple(scale[-1].tolist())  # ... to 1 on the right
        assert _has_ink(image, (0, 30, 50, 40))  # its labels need no CJK font
        expected = colorize(torch.tensor([0.0, 0.5, 1.0, 0.75]))
        assert image.getpixel((5, 5)) == tuple(expected[0].tolist())
        assert image.getpixel((15, 5)) == tuple(expected[1].tolist())
        assert image.getpixel((5, 15)) == tuple(expected[2].tolist())
        assert image.getpixel((35, 5)) == (255, 255, 255)  # the gap
        assert image.getpixel((45, 5)) == tuple(expected[3].tolist())  # copied: 1 - p_gen = 0.75


def test_ascii_words_are_labelled_with_the_default_font(no_cjk_font, tmp_path, caplog) -> None:
    save_attention_png(tmp_path / "toy.png", torch.eye(3), ["c", "b", "a"], ["a", "b", "c"], cell=16)
    assert not caplog.records
    with Image.open(tmp_path / "toy.png") as image:
        assert image.size[0] > 3 * 16 and image.size[1] > 3 * 16
        assert _has_ink(image, (0, image.size[1] // 2, 16, image.size[1]))


def test_plot_attention_needs_a_model(tmp_path: Path, capsys) -> None:
    args = ["predict", "--baseline", "lead", "--input", str(TEST_CSV), "--plot-attention", str(tmp_path)]
    assert main(args) == 2
    assert "--plot-attention needs a model's attention" in capsys.readouterr().err


def test_a_missing_pillow_is_one_clear_line(pointer_generator: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if not installed
    assert _predict(pointer_generator, tmp_path, "--plot-attention", str(tmp_path / "heat")) == 2
    assert capsys.readouterr().err.strip() == "error: --plot-attention needs PIL: pip install 's2s-summarizer[plot]'"
    assert not (tmp_path / "heat").exists()
