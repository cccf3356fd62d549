"""Nothing lost, nothing stale (issue 17): what a crash, a kill or a bad file leaves behind is
either used correctly or refused with a one-line error; a resume never deletes a run."""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_trainer import QUICK, curve, interrupt_at, records, toy_config  # noqa: F401 (toy_config is a fixture)

from s2s import cli
from s2s.checkpoint import Checkpoint, find_resume_checkpoint
from s2s.cli import main
from s2s.errors import CheckpointError, ConfigError, DataError
from s2s.predict import predict_file
from s2s.readers import read_examples, reader_options
from s2s.trainer import Trainer, TrainingInterrupted, train

from conftest import ROOT

TESTS = Path(__file__).resolve().parent


def run_files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run directory, by relative path, with its bytes."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture
def finished_run(toy_config):  # noqa: F811
    """A 40-step toy run with step_10 ... step_40 kept; returns its directory."""
    return train(toy_config("train.eval_every=10", "train.keep_last=4"), show_progress=False).output_dir


def test_resume_auto_with_no_loadable_checkpoint_stops_and_touches_nothing(toy_config, finished_run) -> None:  # noqa: F811
    for path in [finished_run / "last.pt", *finished_run.glob("step_*.pt")]:
        path.write_bytes(path.read_bytes()[:1000])  # `head -c 1000`
    before = run_files(finished_run)
    assert (finished_run / "best.pt").exists() and any(p.startswith("tensorboard") for p in before)
    with pytest.raises(CheckpointError, match=r"no checkpoint in .* can be resumed .*train.overwrite=true"):
        Trainer(toy_config("train.resume=auto"), show_progress=False)
    assert run_files(finished_run) == before


def test_a_checkpoint_of_a_newer_format_stops_the_resume(toy_config, finished_run) -> None:  # noqa: F811
    raw = torch.load(finished_run / "step_30.pt", weights_only=True)
    torch.save(raw | {"version": 99}, finished_run / "step_50.pt")
    before = run_files(finished_run)
    with pytest.raises(CheckpointError, match="format version 99.*upgrade s2s"):
        Trainer(toy_config("train.resume=auto"), show_progress=False)
    assert run_files(finished_run) == before


def test_resume_takes_the_newest_checkpoint_not_last_pt_by_name(finished_run) -> None:
    shutil.copy(finished_run / "step_30.pt", finished_run / "last.pt")  # killed between step_40.pt and last.pt
    path, ckpt = find_resume_checkpoint(finished_run)
    assert path.name == "step_40.pt" and ckpt.progress.step == 40


def test_resume_from_best_pt_says_it_holds_weights_only(toy_config, finished_run) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match=r"holds weights only .*last\.pt"):
        Trainer(toy_config(f"train.resume={finished_run / 'best.pt'}"), show_progress=False)


def test_a_torn_metrics_line_is_dropped_with_a_warning(toy_config, tmp_path, caplog, monkeypatch) -> None:  # noqa: F811
    cfg = toy_config("train.eval_every=10", "train.max_steps=20", run="torn")
    train(cfg, show_progress=False)
    metrics = Path(cfg.train.output_dir, "metrics.jsonl")
    with open(metrics, "a", encoding="utf-8") as f:
        f.write('{"step": 21, "loss": 1.2')  # killed mid-write
    Path(cfg.train.output_dir, "last.pt").unlink()  # resume from step_20.pt
    result = train(
        toy_config("train.eval_every=10", "train.max_steps=30", "train.resume=auto", run="torn"), show_progress=False
    )
    assert result.steps == 30 and "dropping a torn record" in caplog.text
    assert [r["step"] for r in records(result.output_dir) if "loss" in r] == list(range(1, 31))


def test_orphaned_temporary_checkpoints_are_removed_at_start(toy_config, finished_run) -> None:  # noqa: F811
    orphan = finished_run / ".last.pt.12345.tmp"
    orphan.write_bytes(b"half a checkpoint")
    Trainer(toy_config("train.resume=auto", "train.max_steps=50"), show_progress=False)
    assert not orphan.exists()


class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs."""


def kill_while_saving(monkeypatch, name: str, step: int) -> None:
    """Kill the run when it starts writing ``name`` at ``step``."""
    original = Checkpoint.save

    def save(self, path):
        if Path(path).name == name and self.progress.step == step:
            raise Killed
        original(self, path)

    monkeypatch.setattr(Checkpoint, "save", save)


def best_on_disk(run_dir: Path) -> int:
    return Checkpoint.load(run_dir / "best.pt").progress.step


@pytest.mark.parametrize("name", ["best.pt", "step_20.pt", "last.pt"])
def test_a_kill_while_saving_leaves_best_pt_as_the_resumed_state_records_it(toy_config, monkeypatch, name) -> None:  # noqa: F811
    """Without a dev set every evaluation is a new best; killed at step 20 while writing ``name``."""
    extra = ("data.dev=null", "train.eval_every=10", "train.keep_last=4")
    with monkeypatch.context() as patch:
        kill_while_saving(patch, name, 20)
        with pytest.raises(Killed):
            train(toy_config(*extra), show_progress=False)
    _, resumable = find_resume_checkpoint(Path(toy_config().train.output_dir))
    trainer = Trainer(toy_config(*extra, "train.resume=auto"), show_progress=False)
    assert best_on_disk(trainer.out) == resumable.progress.best_step == trainer.progress.best_step
    result = trainer.run()
    assert best_on_disk(result.output_dir) == result.best_step == 40


def test_resume_rewrites_a_missing_best_pt(toy_config, finished_run, caplog) -> None:  # noqa: F811
    best_step = Checkpoint.load(finished_run / "best.pt").progress.step
    (finished_run / "best.pt").unlink()
    Trainer(toy_config("train.resume=auto", "train.max_steps=50"), show_progress=False)
    assert best_on_disk(finished_run) == best_step and "rewritten with the model of step" in caplog.text


def test_resuming_an_early_stopped_run_says_it_is_finished(toy_config, caplog) -> None:  # noqa: F811
    extra = ("train.optimizer.lr=0", "train.scheduler.type=constant", "train.eval_every=5", "train.patience=2")
    first = train(toy_config(*extra), show_progress=False)
    assert first.stopped_early and first.steps == 15
    before = run_files(first.output_dir)["metrics.jsonl"]
    again = train(toy_config(*extra, "train.resume=auto"), show_progress=False)
    assert again.stopped_early and again.steps == 15 and "is finished" in caplog.text
    assert run_files(first.output_dir)["metrics.jsonl"] == before


def test_bit_rot_in_a_checkpoint_is_refused(finished_run) -> None:
    path = finished_run / "best.pt"
    data = bytearray(path.read_bytes())
    rng = random.Random(0)
    for _ in range(64):
        data[rng.randrange(len(data) // 4, 3 * len(data) // 4)] ^= 0xFF  # inside the tensors, not the headers
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"best\.pt: the checkpoint is corrupt \(.* fails its CRC check"):
        Checkpoint.load(path)


@pytest.mark.parametrize("key", ["config", "src_vocab"])
def test_a_checkpoint_missing_a_part_is_a_one_line_error(finished_run, tmp_path, key) -> None:
    raw = torch.load(finished_run / "best.pt", weights_only=True)
    del raw[key]
    torch.save(raw, tmp_path / "part.pt")
    with pytest.raises(CheckpointError, match=f"not a complete s2s checkpoint \\(no {key}\\)"):
        Checkpoint.load(tmp_path / "part.pt")


def test_a_second_ctrl_c_while_saving_waits_for_the_save(toy_config, monkeypatch, caplog) -> None:  # noqa: F811
    interrupt_at(monkeypatch, 5)
    original = Checkpoint.save

    def save(self, path):
        os.kill(os.getpid(), signal.SIGINT)  # the impatient second Ctrl-C
        original(self, path)

    monkeypatch.setattr(Checkpoint, "save", save)
    with pytest.raises(TrainingInterrupted) as stop:
        train(toy_config(), show_progress=False)
    assert stop.value.step == 5 and Checkpoint.load(stop.value.checkpoint).progress.step == 5
    assert "a checkpoint is being written" in caplog.text


def test_a_second_ctrl_c_between_saves_says_what_is_lost(toy_config, monkeypatch, caplog) -> None:  # noqa: F811
    original = Trainer.training_step

    def update(self, batches):
        if self.progress.step + 1 == 13:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batches)

    monkeypatch.setattr(Trainer, "training_step", update)
    with pytest.raises(KeyboardInterrupt):
        train(toy_config("train.eval_every=10"), show_progress=False)
    assert "stopping now, without saving" in caplog.text and "train.resume=auto continues from step 10" in caplog.text


def test_a_10_mb_cell_is_read(tmp_path) -> None:
    """Over the csv module's default field limit (128 KB): every row comes out."""
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["QID", "Brand", "Model", "Question", "Dialogue"])
        writer.writerows((f"Q{i}", "b", "m", "问题", "技师说：好" * (2_000_000 if i == 2 else 1)) for i in range(5))
    examples = list(read_examples(path, reader_options("automaster"), need_target=False))
    assert [e.id for e in examples] == ["Q0", "Q1", "Q2", "Q3", "Q4"] and len(examples[2].raw["Dialogue"]) == 10_000_000


def cli_error(argv: list[str], capsys) -> str:
    """The one line ``s2s ARGV`` prints, checked to be an error with exit code 2."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert not any("Traceback" in line for line in lines) and lines[-1].startswith("error: ")
    return lines[-1]


def test_a_model_too_large_for_memory_is_a_one_line_error(toy_config, capsys) -> None:  # noqa: F811
    cfg = toy_config()
    args = ["train", "configs/toy.yaml", f"data.train={cfg.data.train}", f"data.cache_dir={cfg.data.cache_dir}"]
    for size in (2**40, 2**70):
        line = cli_error(
            [*args, f"train.output_dir={cfg.train.output_dir}", f"model.encoder.hidden_size={size}"], capsys
        )
        assert "its weights do not fit in memory" in line and "lower the model's sizes" in line


def test_resume_from_best_pt_on_the_command_line_is_one_line(toy_config, finished_run, capsys) -> None:  # noqa: F811
    cfg = toy_config()
    argv = ["train", "configs/toy.yaml", f"data.train={cfg.data.train}", f"data.dev={cfg.data.dev}"]
    line = cli_error([*argv, f"train.output_dir={finished_run}", f"train.resume={finished_run / 'best.pt'}"], capsys)
    assert "holds weights only" in line and str(finished_run / "last.pt") in line


def test_prepare_refuses_an_unknown_scheduler(toy_config, capsys) -> None:  # noqa: F811
    cfg = toy_config()
    argv = ["prepare", "configs/toy.yaml", f"data.train={cfg.data.train}", f"data.cache_dir={cfg.data.cache_dir}"]
    assert "unknown scheduler '汉'" in cli_error([*argv, "train.scheduler.type=汉"], capsys)


def test_ctrl_c_in_the_first_instant_is_no_traceback(monkeypatch, capsys) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt  # while building the parser, before any command runs

    monkeypatch.setattr(cli, "_parser", interrupted)
    assert main(["--version"]) == 130 and capsys.readouterr().err.strip() == "interrupted"


def test_predict_on_a_csv_without_the_model_columns_names_them(finished_run, tmp_path) -> None:
    path = tmp_path / "input.csv"
    path.write_text("QID,Text\nQ1,1 2 3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"lacks Question, Dialogue .*give the input those columns") as error:
        predict_file(finished_run / "best.pt", path, input_format="automaster")
    assert "data.source_fields" not in str(error.value)


def test_a_run_killed_while_writing_best_pt_resumes_to_the_same_end(toy_config, tmp_path) -> None:  # noqa: F811
    """A real SIGKILL (tests/plugin_kill.py) at step 20 while best.pt is written; the same command
    with train.resume=auto cleans up and ends where an uninterrupted run ends."""
    extra = ("train.eval_every=10", "train.keep_last=2")
    cfg, split = toy_config(*extra), tmp_path / "split"
    argv = ["train", "configs/toy.yaml", f"data.train={cfg.data.train}", f"data.dev={cfg.data.dev}"]
    argv += [f"data.cache_dir={cfg.data.cache_dir}", *QUICK, *extra, f"train.output_dir={split}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}

    def s2s(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "s2s", *args]
        return subprocess.run(command, cwd=ROOT, env={**env, **extra_env}, capture_output=True, text=True, timeout=300)

    killed = s2s("--plugin", "plugin_kill", *argv, S2S_TEST_KILL_AT="best.pt:20")
    assert killed.returncode == -signal.SIGKILL and list(split.glob(".*.tmp"))
    resumed = s2s(*argv, "train.resume=auto")
    assert resumed.returncode == 0, resumed.stderr
    whole = tmp_path / "whole"  # in a process of its own too: the same torch threads, the same sums
    assert s2s(*argv[:-1], f"train.output_dir={whole}").returncode == 0
    assert not list(split.glob(".*.tmp"))
    assert curve(split) == curve(whole)
    assert best_on_disk(split) == best_on_disk(whole) == Checkpoint.load(split / "last.pt").progress.best_step


def test_resume_auto_without_checkpoints_keeps_the_rest_of_the_run(toy_config, finished_run) -> None:  # noqa: F811
    for path in [finished_run / "last.pt", *finished_run.glob("step_*.pt")]:
        path.unlink()  # e.g. train.keep_last=0 and last.pt deleted by hand: best.pt and the logs are left
    before = run_files(finished_run)
    with pytest.raises(ConfigError, match="holds a run but no checkpoint to resume from .*train.overwrite=true"):
        Trainer(toy_config("train.resume=auto"), show_progress=False)
    assert run_files(finished_run) == before


def test_a_directory_as_data_train_is_named_as_one(toy_config, tmp_path) -> None:  # noqa: F811
    with pytest.raises(DataError, match="is a directory; name a file"):
        train(toy_config(f"data.train={tmp_path}"), show_progress=False)


def test_a_nan_learning_rate_is_refused(toy_config) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="train.optimizer.lr: expected a finite number, got nan"):
        toy_config("train.optimizer.lr=.nan")


def test_ctrl_c_while_the_cli_imports_is_no_traceback(monkeypatch, capsys) -> None:
    from s2s.__main__ import run

    class Interrupting:  # an import hook: the Ctrl-C arrives while s2s.cli is being imported
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "s2s.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "s2s.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert run() == 130 and capsys.readouterr().err.strip() == "interrupted"
