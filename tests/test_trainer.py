"""The trainer survives what long runs meet: interrupts, crashes mid-save, NaNs, resumes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from s2s import checkpoint as checkpoint_module
from s2s.checkpoint import Checkpoint, Progress, find_resume_checkpoint
from s2s.config import Config, load_config
from s2s.errors import CheckpointError, ConfigError
from s2s.registry import SCHEDULERS
from s2s.rnn import Seq2Seq
from s2s.trainer import Trainer, TrainingError, TrainingInterrupted, train

from conftest import ROOT, toy_tasks

# small and quick, with dropout (so random state matters) and a decaying learning rate
QUICK = (
    "train.max_steps=40",
    "train.log_every=1",
    "train.eval_every=20",
    "train.batch_size=32",
    "model.embeddings.dropout=0.2",
    "model.decoder.dropout=0.2",
    "train.scheduler.type=step",
    "train.scheduler.step_size=7",
    "train.scheduler.gamma=0.7",
)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint as the dict it is stored as."""
    return Checkpoint.load(path).to_dict()


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in open(run_dir / "metrics.jsonl", encoding="utf-8")]


def curve(run_dir: Path) -> list[tuple[int, float, float]]:
    """(step, loss, lr) of every logged training step."""
    return [(r["step"], r["loss"], r["lr"]) for r in records(run_dir) if "loss" in r]


@pytest.fixture
def toy_config(tmp_path: Path):
    """configs/toy.yaml on a small reverse task (10 batches an epoch) in tmp_path."""
    train_tsv, dev_tsv = toy_tasks.write_task("reverse", tmp_path / "data", n_train=320, n_dev=40)

    def make(*overrides: str, run: str = "run"):
        return load_config(
            ROOT / "configs" / "toy.yaml",
            [
                f"data.train={train_tsv}",
                f"data.dev={dev_tsv}",
                f"data.cache_dir={tmp_path / 'cache'}",
                f"train.output_dir={tmp_path / run}",
                *QUICK,
                *overrides,
            ],
        )

    return make


def interrupt_at(monkeypatch, step: int, signal_number: int = signal.SIGINT) -> None:
    """Deliver a real signal to this process while update number ``step`` runs."""
    original = Trainer.training_step

    def update(self, batches):
        if self.progress.step + 1 == step:
            os.kill(os.getpid(), signal_number)
        return original(self, batches)

    monkeypatch.setattr(Trainer, "training_step", update)


@pytest.mark.parametrize(
    "extra",
    [
        (),
        (
            "train.scheduled_sampling.type=linear",
            "train.scheduled_sampling.end=0.5",
            "train.scheduled_sampling.steps=30",
        ),
    ],
    ids=["teacher_forcing", "scheduled_sampling"],
)
def test_resume_continues_exactly(toy_config, monkeypatch, extra: tuple[str, ...]) -> None:
    """Interrupted at step 25 (mid-epoch 3) and resumed: the same losses and learning rates
    at every step as a run that was never interrupted (scheduled sampling's draws too)."""
    whole = train(toy_config(*extra, run="whole"), show_progress=False)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 25)
        with pytest.raises(TrainingInterrupted) as stop:
            train(toy_config(*extra, run="split"), show_progress=False)
    assert stop.value.step == 25 and stop.value.signal_number == signal.SIGINT
    assert stop.value.checkpoint.name == "last.pt"
    assert load_checkpoint(stop.value.checkpoint)["progress"]["batch_in_epoch"] == 5
    resumed = train(toy_config(*extra, "train.resume=auto", run="split"), show_progress=False)
    assert resumed.steps == whole.steps == 40
    assert curve(whole.output_dir) == curve(resumed.output_dir)
    for name in ("model", "optimizer"):
        assert_same(load_checkpoint(whole.last_checkpoint)[name], load_checkpoint(resumed.last_checkpoint)[name])


SCHEDULES = {  # every built-in schedule, set to change the learning rate within 40 steps
    "constant": ("train.scheduler.warmup_steps=15",),
    "step": (),
    "noam": ("train.scheduler.warmup_steps=15",),
    "cosine": ("train.scheduler.warmup_steps=5",),
    "plateau": ("train.scheduler.patience=0", "train.optimizer.lr=0.05"),
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_resume_is_exact_for_every_schedule_interrupted_on_an_evaluation_step(
    toy_config, monkeypatch, schedule
) -> None:
    """Interrupted during update 20, an evaluation step: the evaluation still happens, and the
    resumed run has the same losses, learning rates, evaluations and best as an uninterrupted one."""
    assert sorted(SCHEDULES) == sorted(SCHEDULERS.names())
    extra = ("train.eval_every=10", f"train.scheduler.type={schedule}", *SCHEDULES[schedule])
    whole = train(toy_config(*extra, run="whole"), show_progress=False)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 20)
        with pytest.raises(TrainingInterrupted):
            train(toy_config(*extra, run="split"), show_progress=False)
    resumed = train(toy_config(*extra, "train.resume=auto", run="split"), show_progress=False)
    assert curve(whole.output_dir) == curve(resumed.output_dir)
    evaluations = [[r for r in records(run.output_dir) if "dev_loss" in r] for run in (whole, resumed)]
    assert [r["step"] for r in evaluations[1]] == [10, 20, 30, 40]
    assert evaluations[0] == evaluations[1]
    assert (whole.best_step, whole.best_score) == (resumed.best_step, resumed.best_score)
    if schedule == "plateau":
        assert len({lr for _, _, lr in curve(whole.output_dir)}) > 1  # the schedule did decay


def assert_same(a, b) -> None:
    """Nested dicts/lists of tensors and numbers, equal to the last bit."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


def test_resume_restores_the_scheduler_and_allows_a_longer_run(toy_config) -> None:
    first = train(toy_config(), show_progress=False)
    lr_before = curve(first.output_dir)[-1][2]
    longer = train(toy_config("train.resume=auto", "train.max_steps=50"), show_progress=False)
    assert longer.steps == 50
    lrs = [lr for step, _, lr in curve(longer.output_dir) if step > 40]
    assert lr_before == pytest.approx(0.01 * 0.7 ** (40 // 7), rel=1e-6)
    assert lrs[0] == pytest.approx(0.01 * 0.7 ** (41 // 7), rel=1e-6)  # not reset to the base lr


def test_resume_refuses_a_model_change(toy_config) -> None:
    train(toy_config("train.max_steps=5"), show_progress=False)
    with pytest.raises(ConfigError, match=r"model cannot change on resume \(model.encoder.hidden_size: 32 -> 48\)"):
        Trainer(toy_config("train.resume=auto", "model.encoder.hidden_size=48"), show_progress=False)


def test_output_dir_of_another_run_is_refused_unless_asked(toy_config) -> None:
    train(toy_config("train.max_steps=5"), show_progress=False)
    with pytest.raises(ConfigError, match="holds another run"):
        Trainer(toy_config("train.max_steps=5"), show_progress=False)
    result = train(toy_config("train.max_steps=3", "train.overwrite=true"), show_progress=False)
    assert result.steps == 3 and max(r["step"] for r in records(result.output_dir)) == 3


def test_resume_auto_falls_back_to_the_newest_valid_checkpoint(toy_config, tmp_path, caplog) -> None:
    first = train(toy_config("train.eval_every=10", "train.keep_last=5"), show_progress=False)
    last = first.output_dir / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # a crash left it truncated
    with pytest.raises(CheckpointError, match="last.pt: cannot read the checkpoint"):
        load_checkpoint(last)
    path, ckpt = find_resume_checkpoint(first.output_dir)
    assert path.name == "step_40.pt" and ckpt.progress.step == 40
    assert "skipping" in caplog.text and "last.pt" in caplog.text


def test_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    tokens = ["<pad>", "<unk>", "<s>", "</s>"]
    Checkpoint(Config(), tokens, tokens, {}, Progress(step=1)).save(path)

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        Checkpoint(Config(), tokens, tokens, {}, Progress(step=2)).save(path)
    monkeypatch.undo()
    assert load_checkpoint(path)["progress"]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_checkpoints_hold_no_pickled_objects(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "s2s-checkpoint", "version": 1, "config": Path("x")}, path)
    with pytest.raises(CheckpointError, match="refused: the file holds objects other than tensors"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an s2s checkpoint"):
        load_checkpoint(path)


def _nan_on(monkeypatch, steps: set[int] | None) -> None:
    """Make the loss NaN on the given updates (all of them for None)."""
    original = Seq2Seq.forward
    calls = {"n": 0}

    def forward(self, batch, **options):
        out = original(self, batch, **options)
        calls["n"] += 1
        if steps is None or calls["n"] in steps:
            out.token_loss = out.token_loss * float("nan")
        return out

    monkeypatch.setattr(Seq2Seq, "forward", forward)


def test_nan_loss_skips_the_batch(toy_config, monkeypatch, caplog) -> None:
    _nan_on(monkeypatch, {3, 4})
    result = train(toy_config("train.max_steps=8", "train.eval_every=0"), show_progress=False)
    assert result.steps == 8
    assert caplog.text.count("batch skipped") == 2
    weights = load_checkpoint(result.last_checkpoint)["model"]
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_nan_loss_in_a_row_stops_the_run(toy_config, monkeypatch) -> None:
    _nan_on(monkeypatch, None)
    with pytest.raises(TrainingError, match="3 updates in a row had a NaN/inf loss"):
        train(toy_config("train.max_bad_steps=3"), show_progress=False)


def test_best_checkpoint_is_the_best_evaluation(toy_config) -> None:
    result = train(toy_config("train.eval_every=8"), show_progress=False)
    evaluations = [r for r in records(result.output_dir) if "dev_loss" in r]
    assert [r["step"] for r in evaluations] == [8, 16, 24, 32, 40]
    best = max(evaluations, key=lambda r: (r["dev_rouge-l_char"], -r["step"]))
    saved = load_checkpoint(result.best_checkpoint)
    assert saved["progress"]["best_step"] == best["step"] == result.best_step
    assert "optimizer" not in saved  # best.pt is for prediction: weights, config, vocabularies
    assert saved["progress"]["best_score"] == pytest.approx(best["dev_rouge-l_char"])
    assert sorted(p.name for p in result.output_dir.glob("step_*.pt")) == ["step_40.pt"]  # keep_last: 1


def test_early_stopping_after_patience(toy_config) -> None:
    """With a learning rate of 0 nothing improves after the first evaluation."""
    result = train(
        toy_config("train.optimizer.lr=0", "train.scheduler.type=constant", "train.eval_every=5", "train.patience=2"),
        show_progress=False,
    )
    assert result.stopped_early and result.steps == 15 and result.best_step == 5


def test_a_missing_dev_set_is_an_error_at_start(toy_config) -> None:
    with pytest.raises(ConfigError, match="train.patience needs a dev set"):
        Trainer(toy_config("data.dev=null", "train.patience=2"), show_progress=False)
    with pytest.raises(ConfigError, match="set train.max_steps, train.max_epochs or train.max_minutes"):
        Trainer(toy_config("train.max_steps=0"), show_progress=False)


def test_max_epochs_and_accumulation(toy_config) -> None:
    result = train(toy_config("train.max_steps=0", "train.max_epochs=2", "train.accumulate=3"), show_progress=False)
    assert result.steps == 8  # 10 batches an epoch, 3 per update: 4 updates an epoch
    assert load_checkpoint(result.last_checkpoint)["progress"]["epoch"] == 2


def test_time_budget_stops_the_run(toy_config) -> None:
    result = train(toy_config("train.max_steps=0", "train.max_minutes=0.02", "train.eval_every=0"), show_progress=False)
    assert 0 < result.steps < 10_000  # about 1.2 s of updates, then the final evaluation and save
    assert load_checkpoint(result.last_checkpoint)["progress"]["step"] == result.steps


def test_an_epoch_bounded_run_shows_its_total_and_logs_each_line_once(toy_config, tmp_path, capsys) -> None:
    from s2s.cli import main

    cfg = toy_config()
    out = tmp_path / "cli"
    args = [f"data.train={cfg.data.train}", f"data.dev={cfg.data.dev}", f"data.cache_dir={cfg.data.cache_dir}"]
    limits = [
        "train.max_steps=0",
        "train.max_epochs=2",
        "train.batch_size=32",
        "train.accumulate=3",
        "train.log_every=2",
        "train.eval_every=4",
    ]
    assert (
        main(["train", "configs/toy.yaml", *args, *limits, "train.scheduler.type=constant", f"train.output_dir={out}"])
        == 0
    )
    err = capsys.readouterr().err
    assert "8/8 [" in err  # 4 updates an epoch (see above); was "8step [..., ?step/s]"
    assert "dev loss: " in err and "decoding: " in err  # the evaluation's bars
    for step in (4, 8):
        assert err.count(f"step {step} | dev loss") == 1  # was printed twice to a pipe or a file
    assert re.search(r"step 8 \| dev loss .* \| evaluated in \d+\.\d s", err)
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"done: 8 steps in \d+\.\d s \| best: ROUGE-L [\d.]+ \(char\) at step \d \| {out / 'best.pt'}", last
    )
    log = (out / "train.log").read_text(encoding="utf-8")
    assert [int(step) for step in re.findall(r"INFO step (\d+) \| epoch \d \| loss [\d.]+ ppl", log)] == [2, 4, 6, 8]


def test_the_expected_steps_come_from_the_first_limit_met() -> None:
    from s2s.config import TrainConfig
    from s2s.runlog import duration, expected_steps

    start, later = Progress(), Progress(step=10, seconds=6.0)
    assert expected_steps(TrainConfig(max_steps=100), start, per_epoch=7) == 100
    assert expected_steps(TrainConfig(max_epochs=3), start, per_epoch=7) == 21
    assert expected_steps(TrainConfig(max_steps=15, max_epochs=3), start, per_epoch=7) == 15
    assert expected_steps(TrainConfig(max_minutes=1), start, per_epoch=7) is None  # no pace yet
    assert expected_steps(TrainConfig(max_minutes=1), later, per_epoch=7) == 100  # 10 steps in 6 s of 60
    assert expected_steps(TrainConfig(max_epochs=30, max_minutes=1), later, per_epoch=7) == 100
    assert (duration(42.04), duration(3723)) == ("42.0 s", "1:02:03")


def test_lr_zero_with_the_cosine_schedule_trains(toy_config, tmp_path, capsys) -> None:
    """Was a ZeroDivisionError traceback from optim.py."""
    from s2s.cli import main

    cfg = toy_config()
    out = tmp_path / "lr0"
    args = [f"data.train={cfg.data.train}", f"data.dev={cfg.data.dev}", f"data.cache_dir={cfg.data.cache_dir}"]
    run = ["train.max_steps=4", "train.eval_every=0", "train.log_every=1", f"train.output_dir={out}"]
    assert main(["train", "configs/toy.yaml", *args, *run, "train.optimizer.lr=0", "train.scheduler.type=cosine"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert [r["lr"] for r in records(out) if "loss" in r] == [0.0] * 4


def test_a_time_bounded_run_estimates_its_total(toy_config, capsys) -> None:
    train(toy_config("train.max_steps=0", "train.max_minutes=0.01", "train.eval_every=0"), show_progress=True)
    assert re.search(r"\d+/\d+ \[", capsys.readouterr().err)


def test_tensorboard_has_the_scalars_and_the_heatmap(toy_config) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(
        toy_config("model.decoder.type=pointer_generator", "model.decoder.coverage=true"), show_progress=False
    )
    events = EventAccumulator(str(result.output_dir / "tensorboard")).Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in (
        "train/loss",
        "train/lr",
        "train/grad_norm",
        "train/tokens_per_sec",
        "train/coverage_loss",
        "dev/loss",
        "dev/ppl",
        "dev/rouge-1-char",
        "dev/rouge-2-word",
        "dev/rouge-l-char",
    ):
        assert tag in scalars
    assert "dev/attention" in events.Tags()["images"]
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(events.Images("dev/attention")[-1].encoded_image_string)).convert("RGB")
    inked = {(x, y) for x in range(image.width) for y in range(image.height) if len(set(image.getpixel((x, y)))) == 1}
    dark = {(x, y) for x, y in inked if image.getpixel((x, y))[0] < 100}  # text: grey, never a viridis colour
    assert image.height >= 64 and image.width >= 64  # was one or two stripes, 25 to 48 pixels high
    assert any(x < 16 for x, _ in dark)  # the output words on the left
    assert any(y > image.height - 16 for _, y in dark)  # the colour scale's labels at the bottom
    copy_column = {image.getpixel((image.width - 16, y)) for y in range(image.height)}
    assert len(copy_column - {(255, 255, 255)}) > 1  # the pointer-generator's copy column
    assert len(events.Scalars("train/loss")) == 40


def _s2s(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "s2s", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def test_sigint_to_a_real_training_process_saves_and_exits_130(toy_config, tmp_path) -> None:
    cfg = toy_config()
    args = [
        "train",
        "configs/toy.yaml",
        f"data.train={cfg.data.train}",
        f"data.dev={cfg.data.dev}",
        f"data.cache_dir={cfg.data.cache_dir}",
        f"train.output_dir={tmp_path / 'cli'}",
        "train.max_steps=100000",
        "train.log_every=1",
        "train.eval_every=0",
    ]
    process = _s2s(*args)
    metrics = tmp_path / "cli" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted at step" in stderr and "train.resume=auto" in stderr
    ckpt = load_checkpoint(tmp_path / "cli" / "last.pt")
    assert ckpt["progress"]["step"] >= 1
    assert "Traceback" not in stderr


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_two_process_gloo_run(toy_config, tmp_path) -> None:
    """torchrun with 2 CPU processes: each trains on its shard, only the first one writes."""
    cfg = toy_config()
    out = tmp_path / "ddp"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "s2s",
            "train",
            "configs/toy.yaml",
            f"data.train={cfg.data.train}",
            f"data.dev={cfg.data.dev}",
            f"data.cache_dir={cfg.data.cache_dir}",
            f"train.output_dir={out}",
            "train.max_steps=10",
            "train.eval_every=5",
            "train.log_every=1",
            "train.threads=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert [r["step"] for r in records(out) if "loss" in r] == list(range(1, 11))  # one writer
    assert load_checkpoint(out / "last.pt")["progress"]["step"] == 10
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "last.pt", "step_10.pt"]
