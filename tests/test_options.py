"""Every part brings its own options: validation, defaults, layers, help and the reference."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from s2s.cli import main
from s2s.config import Config, load_config, override, to_dict
from s2s.errors import ConfigError
from s2s.reference import list_parts, markdown

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_an_option_of_another_part_is_refused_naming_the_part(tmp_path) -> None:
    path = write(tmp_path / "c.yaml", "model:\n  encoder: {type: lstm}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["model.encoder.num_heads=4"])
    assert str(err.value) == (
        "command line (model.encoder.num_heads=4): model.encoder.num_heads: unknown option of "
        "encoder 'lstm' (options: nonlinearity, residual, recurrent_init, hidden_size, num_layers, bidirectional, "
        "dropout)"
    )
    with pytest.raises(ConfigError, match=r"c2.yaml: train.scheduler.power: unknown option of scheduler 'cosine'"):
        load_config(write(tmp_path / "c2.yaml", "train:\n  scheduler: {type: cosine, power: 2}\n"))
    with pytest.raises(
        ConfigError, match=r"train.optimizer.dampening: unknown option of optimizer 'sgd' \(options: lr, "
    ):
        load_config(write(tmp_path / "c3.yaml", "train:\n  optimizer: {type: sgd, dampening: 0.1}\n"))


def test_a_parts_defaults_apply_only_to_it() -> None:
    cfg = override(Config(), "train.optimizer.type=sgd", "train.scheduler.type=plateau", "data.dev_split=0.1")
    assert cfg.train.optimizer.momentum == 0.0 and not hasattr(cfg.train.optimizer, "betas")
    assert cfg.train.scheduler.patience == 2 and not hasattr(cfg.train.scheduler, "warmup_steps")
    assert to_dict(Config())["train"]["optimizer"] == {
        "type": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
    }


def test_changing_a_part_keeps_the_options_both_have(tmp_path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "train:\n  optimizer: {type: adam, lr: 0.01, betas: [0.8, 0.9]}\n"
        "model:\n  encoder: {type: lstm, hidden_size: 48}\n",
    )
    cfg = load_config(path, ["train.optimizer.type=sgd", "model.encoder=gru"])  # a part may be named alone
    assert cfg.train.optimizer.type == "sgd" and cfg.train.optimizer.lr == 0.01
    assert not hasattr(cfg.train.optimizer, "betas")
    assert (cfg.model.encoder.type, cfg.model.encoder.hidden_size) == ("gru", 48)


def test_unknown_part_names_list_the_choices(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"model.attention.type: unknown attention 'luong' \(choices: bahdanau, "):
        load_config(write(tmp_path / "c.yaml", "model:\n  attention: luong\n"))
    with pytest.raises(ConfigError, match=r"model.type: unknown model 'rnnn' \(choices: extractive, hybrid, rnn"):
        load_config(write(tmp_path / "c.yaml", "model: {type: rnnn}\n"))


def test_values_are_checked_where_they_are_given(tmp_path) -> None:
    path = write(tmp_path / "c.yaml", "train:\n  max_steps: 5\n")
    for override_text, message in [
        ("train.max_steps=-5", "command line (train.max_steps=-5): train.max_steps: must not be negative, got -5"),
        ("predict.alpha=.nan", "command line (predict.alpha=.nan): predict.alpha: expected a finite number, got nan"),
        ("train.optimizer.lr=-1", "train.optimizer.lr: must not be negative, got -1.0"),
        ("train.optimizer.betas=[2,3]", "train.optimizer.betas: expected two numbers in [0, 1), got [2.0, 3.0]"),
        ("model.decoder.coverage_weight=-1e30", "model.decoder.coverage_weight: must not be negative"),
        ("predict.min_length=50", "predict.min_length: 50 is more than max_length 5"),
    ]:
        overrides = [override_text, "predict.max_length=5"] if "min_length" in override_text else [override_text]
        with pytest.raises(ConfigError) as err:
            load_config(path, overrides)
        assert message in str(err.value)


def test_old_layout_keys_are_dropped_with_one_warning(tmp_path, caplog) -> None:
    path = write(
        tmp_path / "old.yaml",
        "train:\n  optimizer: {type: adam, momentum: 0.9}\ntokenizer: {type: char, user_dict: null}\n",
    )
    with caplog.at_level(logging.WARNING, logger="s2s"):
        cfg = load_config(path)
    [warning] = [r.getMessage() for r in caplog.records]
    assert "ignored 2 option(s)" in warning and "train.optimizer.momentum, tokenizer.user_dict" in warning
    assert cfg.tokenizer.keep_ascii_words is True


def test_config_command_prints_what_loads_back(tmp_path, capsys) -> None:
    path = write(tmp_path / "c.yaml", f"base: {ROOT / 'configs' / 'toy.yaml'}\ndata:\n  train: train.tsv\n")
    assert main(["config", str(path), "model.encoder.hidden_size=24"]) == 0
    printed = write(tmp_path / "resolved.yaml", capsys.readouterr().out)
    assert to_dict(load_config(printed)) == to_dict(load_config(path, ["model.encoder.hidden_size=24"]))
    assert "hidden_size: 24" in printed.read_text(encoding="utf-8")
    assert main(["config", str(path), "train.max_steps=0"]) == 2  # validated as `s2s train` would
    assert "set train.max_steps, train.max_epochs or train.max_minutes" in capsys.readouterr().err


def test_list_parts_shows_options_defaults_and_help(capsys) -> None:
    text = list_parts("encoder")
    assert "encoder parts (named by model.encoder.type, model.segment_encoder.type" in text
    assert "  gru: A (bidirectional, stacked) GRU over the embedded source." in text
    assert "      hidden_size: int at least 1 = 256  per direction" in text
    assert "scheduler parts (named by train.scheduler.type)" in list_parts("scheduler")
    assert "warmup_steps: int at least 1 = 4000" in list_parts("scheduler")
    assert "reader parts (named by data.format)" in list_parts("reader")
    assert main(["config", "--list", "encoders"]) == 2
    assert "unknown kind 'encoders' (choices: reader, tokenizer, model, encoder" in capsys.readouterr().err


def test_the_config_reference_is_current() -> None:
    """docs/config.md is generated from the options types: regenerate it with
    `s2s config --markdown > docs/config.md` when this fails."""
    assert (ROOT / "docs" / "config.md").read_text(encoding="utf-8") == markdown()


def test_import_s2s_and_evaluate_need_no_torch(tmp_path) -> None:
    predictions = write(tmp_path / "p.txt", "检查助力泵\n")
    code = (
        "import sys, s2s, s2s.metrics, s2s.evaluate\n"
        "from s2s.cli import main\n"
        f"assert main(['evaluate', '--predictions', {str(predictions)!r}, '--references', {str(predictions)!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_no_module_is_over_500_lines() -> None:
    long = {
        p.name: n for p in (ROOT / "s2s").glob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long
