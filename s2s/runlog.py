"""What a training run shows as it goes: the progress bar's total, the statistics of the updates
since the last log line, and the lines it logs (to the console and ``train.log``)."""

from __future__ import annotations

import logging
import math
import sys
import time

from s2s.checkpoint import Progress
from s2s.config import TrainConfig


def expected_steps(train: TrainConfig, progress: Progress, per_epoch: int) -> int | None:
    """The updates the run will have taken when it stops, as far as its limits tell (the bar's
    total): ``train.max_steps``, ``train.max_epochs`` x ``per_epoch`` updates, the time budget at
    the pace so far; the first of them to be met. None when there is no limit to tell by yet."""
    limits = [train.max_steps] if train.max_steps else []
    if train.max_epochs:
        limits.append(train.max_epochs * per_epoch)
    if train.max_minutes and progress.step and progress.seconds > 0:
        limits.append(max(progress.step, round(progress.step * 60 * train.max_minutes / progress.seconds)))
    return min(limits) if limits else None


class Window:
    """Training statistics since the last log line."""

    def __init__(self) -> None:
        self.nll, self.coverage, self.tokens, self.norms, self.start = 0.0, 0.0, 0, [], time.perf_counter()

    def add(self, nll: float, coverage: float, tokens: int, grad_norm: float) -> None:
        self.nll += nll
        self.coverage += coverage
        self.tokens += tokens
        self.norms.append(grad_norm)

    def flush(self) -> dict[str, float]:
        """Per-token loss (and coverage loss, when there is one), mean gradient norm, tokens/s."""
        elapsed = time.perf_counter() - self.start
        loss = self.nll / max(self.tokens, 1)
        stats = {
            "loss": loss,
            "ppl": math.exp(min(loss, 50.0)),
            "grad_norm": sum(self.norms) / max(len(self.norms), 1),
            "tokens_per_sec": self.tokens / max(elapsed, 1e-9),
        }
        if self.coverage:
            stats["coverage_loss"] = self.coverage / max(self.tokens, 1)
        self.__init__()
        return stats


def training_line(stats: dict[str, float]) -> str:
    """``step 50 | epoch 1 | loss 3.163 ppl 23.65 | lr 1.00e-02 | 34963 tokens/s`` (epochs from 1)."""
    return (
        f"step {stats['step']:.0f} | epoch {stats['epoch'] + 1:.0f} | loss {stats['loss']:.3f} ppl {stats['ppl']:.2f} "
        f"| lr {stats['lr']:.2e} | {stats['tokens_per_sec']:.0f} tokens/s"
    )


def console_loggers() -> list[logging.Logger]:
    """The s2s logger when it writes to the console: its lines then go through tqdm, above the
    bar, and nowhere else (tqdm's default, the root logger, printed each line a second time)."""
    package = logging.getLogger("s2s")
    console = any(getattr(h, "stream", None) in (sys.stdout, sys.stderr) for h in package.handlers)
    return [package] if console else []


def duration(seconds: float) -> str:
    """``42.0 s`` or ``1:02:03``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
