"""The command line: help, one-line errors with exit code 2, JSON output, prepare."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml

from s2s.cli import main
from s2s.errors import ConfigError

from conftest import ROOT

SAMPLE_DEV = ROOT / "data" / "automaster_sample_dev.csv"


@pytest.mark.parametrize("command", [[], ["prepare"], ["train"], ["predict"], ["evaluate"], ["serve"], ["info"]])
def test_help_explains_every_command(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: s2s" in out
    if not command:
        for name in ("prepare", "train", "predict", "evaluate", "serve", "info"):
            assert name in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "missing.yaml"], "error: config file not found: missing.yaml"),
        (
            ["train", "configs/toy.yaml", "model.encoder.type=lsmt"],
            "command line (model.encoder.type=lsmt): model.encoder.type: unknown encoder 'lsmt' "
            "(choices: gru, lstm, rnn)",
        ),
        (["train", "configs/toy.yaml", "train.max_step=1"], "did you mean 'max_steps'?"),
        (["predict", "--input", "x.txt"], "error: predict needs --checkpoint CKPT (or --baseline lead / oracle)"),
        (["predict", "--checkpoint", "missing.pt", "--input", "x.txt"], "error: checkpoint not found: missing.pt"),
        (["info", "missing.pt"], "error: checkpoint not found: missing.pt"),
        (["info", "configs/toy.yaml"], "error: configs/toy.yaml: cannot read the checkpoint"),
        (["evaluate", "--predictions", "missing.txt", "--references", str(SAMPLE_DEV)], "error: "),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(argv: list[str], message: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("error: ")
    assert not any("Traceback" in line for line in err)


def test_version(capsys) -> None:
    from s2s import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"s2s {__version__}"


def test_info_describes_a_checkpoint(pointer_generator, capsys) -> None:
    from s2s.checkpoint import Checkpoint
    from s2s.config import to_dict

    ckpt = Checkpoint.load(pointer_generator)
    assert main(["info", str(pointer_generator)]) == 0
    out = capsys.readouterr().out
    summary, config = out.split("\nconfig:\n")
    parameters = sum(p.numel() for p in ckpt.build_model().parameters())  # tied weights once
    assert f"model: rnn, {parameters / 1e6:.2f}M parameters (" in summary
    assert f"vocabularies: source {len(ckpt.src_vocab)}, target {len(ckpt.tgt_vocab)} tokens" in summary
    assert f"training: step {ckpt.progress.step}, epoch {ckpt.progress.epoch}" in summary
    assert f"at step {ckpt.progress.best_step}" in summary
    assert yaml.safe_load(config) == to_dict(ckpt.config)  # the config it was trained with, whole


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        main(["--debug", "train", "missing.yaml"])


def test_evaluate_json_is_all_of_stdout(tmp_path, capsys) -> None:
    main(["predict", "--baseline", "lead", "--input", str(SAMPLE_DEV), "--output", str(tmp_path / "lead.csv")])
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--predictions",
                str(tmp_path / "lead.csv"),
                "--references",
                str(SAMPLE_DEV),
                "--level",
                "char",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 30 and set(result) >= {"count", "char"} and "word" not in result
    assert 0 < result["char"]["rouge-l"]["f"] < 1


def test_prepare_writes_the_vocabularies_and_the_test_split(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "prepare",
                "configs/quickstart.yaml",
                f"train.output_dir={out}",
                f"data.cache_dir={tmp_path / 'cache'}",
                f"data.train={ROOT / 'data' / 'automaster_sample.csv'}",
                f"data.dev={SAMPLE_DEV}",
                "data.test_split=27",
            ]
        )
        == 0
    )
    with open(out / "test_split.csv", encoding="utf-8", newline="") as f:
        assert len(list(csv.DictReader(f))) == 27
    assert not (out / "dev_split.csv").exists()  # the dev set is a file of its own
    assert (out / "src_vocab.txt").read_text(encoding="utf-8").splitlines()[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert len((out / "tgt_vocab.txt").read_text(encoding="utf-8").splitlines()) > 100


def test_the_console_script_exits_2_on_user_errors() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "s2s", "train", "configs/toy.yaml", "train.amp=fp32"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2
    assert process.stderr.strip() == (
        "error: command line (train.amp=fp32): train.amp: expected one of none, bf16, fp16, got 'fp32' (str)"
    )
