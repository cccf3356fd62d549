"""Checkpoint averaging (``s2s average``): the mean of one run's weights; other runs refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from s2s.average import average_checkpoints
from s2s.checkpoint import Checkpoint, Progress
from s2s.cli import main
from s2s.config import load_config
from s2s.model import build_model

ROOT = Path(__file__).resolve().parents[1]
TOKENS = ["<pad>", "<unk>", "<s>", "</s>", *(str(i) for i in range(16))]


def tiny_checkpoint(path: Path, seed: int, *overrides: str, tokens: list[str] = TOKENS, step: int = 0) -> Checkpoint:
    """An untrained checkpoint of configs/toy.yaml (random weights from ``seed``), saved at ``path``."""
    cfg = load_config(
        ROOT / "configs" / "toy.yaml", ["model.embeddings.size=8", "model.encoder.hidden_size=8", *overrides]
    )
    torch.manual_seed(seed)
    model = build_model(cfg.model, tokens, tokens)
    ckpt = Checkpoint(cfg, tokens, tokens, model.state_dict(), Progress(step=step))
    ckpt.save(path)
    return ckpt


def test_averaging_copies_of_one_checkpoint_gives_it(tmp_path) -> None:
    one = tiny_checkpoint(tmp_path / "a.pt", 0)
    averaged = average_checkpoints([tmp_path / "a.pt", tmp_path / "a.pt", tmp_path / "a.pt"])
    assert averaged.model.keys() == one.model.keys()
    assert all(torch.equal(averaged.model[k], v) for k, v in one.model.items())


def test_average_is_the_parameter_mean_with_the_newest_config(tmp_path) -> None:
    a = tiny_checkpoint(tmp_path / "a.pt", 0, step=100)
    b = tiny_checkpoint(tmp_path / "b.pt", 1, "train.max_steps=900", step=200)  # a resume may change it
    averaged = average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    for name, tensor in averaged.model.items():
        torch.testing.assert_close(tensor, (a.model[name] + b.model[name]) / 2)
    assert not torch.equal(averaged.model["decoder.output.weight"], a.model["decoder.output.weight"])
    assert averaged.progress.step == 200 and averaged.config.train.max_steps == 900
    assert averaged.training is None
    averaged.build_model()  # loads into the model it describes


def test_checkpoints_of_other_runs_are_refused(tmp_path, capsys) -> None:
    tiny_checkpoint(tmp_path / "a.pt", 0)
    tiny_checkpoint(tmp_path / "dropout.pt", 1, "model.embeddings.dropout=0.5")
    tiny_checkpoint(tmp_path / "vocab.pt", 1, tokens=[*TOKENS[:-1], "other"])
    output = tmp_path / "avg.pt"
    assert main(["average", "--output", str(output), str(tmp_path / "a.pt"), str(tmp_path / "dropout.pt")]) == 2
    assert "different configs (model.embeddings.dropout: 0.0 vs 0.5)" in capsys.readouterr().err
    assert main(["average", "--output", str(output), str(tmp_path / "a.pt"), str(tmp_path / "vocab.pt")]) == 2
    assert "different source vocabularies" in capsys.readouterr().err
    assert not output.exists()


def test_last_n_of_a_run_directory(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    steps = {step: tiny_checkpoint(run / f"step_{step}.pt", step, step=step) for step in (50, 100, 150)}
    output = tmp_path / "avg.pt"
    assert main(["average", "--output", str(output), "--last", "2", str(run)]) == 0
    averaged = Checkpoint.load(output)
    assert averaged.progress.step == 150
    name = "decoder.output.weight"
    torch.testing.assert_close(averaged.model[name], (steps[100].model[name] + steps[150].model[name]) / 2)
    assert main(["average", "--output", str(output), "--last", "4", str(run)]) == 2
    assert "holds 3 step_N.pt checkpoints; train with train.keep_last=4" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--last", "2", "a.pt", "b.pt"], ["--last", "0", "run"]])
def test_bad_last_arguments(tmp_path, capsys, args) -> None:
    assert main(["average", "--output", str(tmp_path / "avg.pt"), *args]) == 2
    assert capsys.readouterr().err.startswith("error: average")
