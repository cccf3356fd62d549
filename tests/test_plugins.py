"""Plugins end to end: a module of one's own adds an encoder and a schedule, each with an option of
its own, and ``s2s --plugin MODULE train CONFIG`` trains them from YAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, toy_tasks

TESTS = Path(__file__).resolve().parent


def s2s(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "s2s", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def plugin_config(tmp_path: Path) -> Path:
    train_tsv, dev_tsv = toy_tasks.write_task("copy", tmp_path / "data", n_train=1000, n_dev=50)
    path = tmp_path / "conv.yaml"
    path.write_text(
        f"base: {ROOT / 'configs' / 'toy.yaml'}\n"
        f"data: {{train: {train_tsv}, dev: {dev_tsv}, cache_dir: {tmp_path / 'cache'}}}\n"
        "model:\n"
        "  encoder: {type: conv, hidden_size: 48, kernel_size: 5, num_layers: 2}\n"
        "  attention: {type: luong_general}\n"
        "train:\n"
        f"  output_dir: {tmp_path / 'run'}\n"
        "  max_steps: 200\n"
        "  eval_every: 200\n"
        "  log_every: 10\n"
        "  threads: 1\n"
        "  scheduler: {type: poly, power: 2.0}\n",
        encoding="utf-8",
    )
    return path


def test_a_plugin_encoder_and_schedule_train_from_yaml(plugin_config: Path, tmp_path: Path) -> None:
    done = s2s("--plugin", "plugin_parts", "train", str(plugin_config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl", encoding="utf-8")]
    steps = [r for r in records if "loss" in r]
    # the plugin's schedule with its own option: lr = 0.01 (1 - step / 200) ** 2 after each update
    for r in steps:
        assert r["lr"] == pytest.approx(0.01 * (1 - r["step"] / 200) ** 2, rel=1e-6, abs=1e-12)
    assert steps[-1]["loss"] < 0.6 * steps[0]["loss"]  # the convolutional encoder learns
    config = (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8")
    assert "kernel_size: 5" in config and "power: 2.0" in config

    shown = s2s("--plugin", "plugin_parts", "config", str(plugin_config), cwd=tmp_path)
    assert shown.returncode == 0 and "type: conv" in shown.stdout and "kernel_size: 5" in shown.stdout
    listed = s2s("--plugin", "plugin_parts", "config", "--list", "encoder", cwd=tmp_path)
    assert "conv: Stacked 1-D convolutions" in listed.stdout
    assert "kernel_size: int at least 1 = 3  width of the convolution window (odd)" in listed.stdout


def test_a_typo_in_a_plugin_option_names_the_file_and_the_key(plugin_config: Path, tmp_path: Path) -> None:
    text = plugin_config.read_text(encoding="utf-8").replace("kernel_size", "kernal_size")
    plugin_config.write_text(text, encoding="utf-8")
    done = s2s("--plugin", "plugin_parts", "train", str(plugin_config), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {plugin_config}: model.encoder.kernal_size: unknown option of encoder 'conv' "
        "(did you mean 'kernel_size'?)"
    )
    without = s2s("train", str(plugin_config.with_name("conv.yaml")), cwd=tmp_path)  # no --plugin: no such part
    assert "unknown encoder 'conv' (choices: gru, lstm, rnn)" in without.stderr
