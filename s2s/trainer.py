"""Training: a config in, a self-contained checkpoint out.

    result = train(load_config("configs/quickstart.yaml"))

The loop: each update takes ``train.accumulate`` batches of the epoch's plan (a function of the
seed and the epoch alone), backpropagates the token-normalised loss, clips, steps. Every
``train.eval_every`` updates it validates on the dev set (loss, perplexity, ROUGE of greedy
decodes: ``validation``) and writes ``best.pt`` (on improvement), then ``step_N.pt`` and
``last.pt``, which record it. Resuming (``resume``) restores the model, optimizer, scheduler, progress and every
random state, so the run continues exactly where it stopped; several processes are ``distributed``.
SIGINT/SIGTERM finish the current update (and its evaluation), save ``last.pt`` and raise
``TrainingInterrupted`` (``interrupts``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from s2s.assets import pack_assets
from s2s.batching import Batch, example_lengths, plan_batches
from s2s.checkpoint import Checkpoint, Progress, prune_step_checkpoints
from s2s.config import Config, check_training, validate
from s2s.distributed import World
from s2s.errors import ConfigError, S2SError
from s2s.gradflow import log_gradient_flow, require_figures
from s2s.interrupts import StopRequests
from s2s.model import build_model
from s2s.optim import is_per_evaluation
from s2s.prepare import prepare, write_splits
from s2s.registry import METRICS, OPTIMIZERS, SAMPLING, SCHEDULERS
from s2s.resume import capture_training_state, repair_best, resolve_resume, restore_training_state
from s2s.rundir import RunDirectory
from s2s.runlog import Window, console_loggers, duration, expected_steps, training_line
from s2s.runtime import tune_cpu
from s2s.tokenizers import build_tokenizer
from s2s.validation import DevSet, references, report, validate_model
from s2s.vocabulary import Vocabulary

log = logging.getLogger(__name__)


class TrainingError(S2SError):
    """Training cannot go on (e.g. the loss stayed NaN)."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived; ``checkpoint`` holds the state to resume from."""

    def __init__(self, signal_number: int, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted at step {step}")
        self.signal_number, self.step, self.checkpoint = signal_number, step, checkpoint


@dataclass
class TrainResult:
    output_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    steps: int
    best_score: float | None
    best_step: int
    stopped_early: bool


def train(cfg: Config, *, show_progress: bool = True) -> TrainResult:
    """Train the model ``cfg`` describes (see the module docstring). An entry point: it applies
    the process-wide CPU settings (``runtime.tune_cpu``, ``train.threads``)."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tune_cpu()
    return Trainer(cfg, show_progress=show_progress).run()


class Trainer:
    def __init__(self, cfg: Config, *, show_progress: bool = True) -> None:
        self.world = World.start(cfg.train.device)
        cfg, resume_from = resolve_resume(cfg)
        validate(cfg)
        check_training(cfg)
        self.cfg, self.tcfg = cfg, cfg.train
        self.metric = METRICS.get(self.tcfg.keep_best_by)
        self.run_dir = RunDirectory(cfg.train.output_dir)
        self.out = self.run_dir.path
        self.show_progress = show_progress and self.world.is_main
        random.seed(self.tcfg.seed)
        torch.manual_seed(self.tcfg.seed)
        self.device = self.world.device
        self.amp_dtype = _amp_dtype(self.tcfg.amp, self.device)
        ckpt = resume_from[1] if resume_from else None
        if self.world.is_main:
            self.run_dir.start(cfg, resumed=ckpt is not None)

        with self.world.main_first():  # the main process tokenizes; the others read its cache
            data = prepare(cfg, progress=self.show_progress)
        if data.tokenizer_model and self.world.is_main:
            self.run_dir.save_tokenizer_model(cfg, data.tokenizer_model)
        self.assets = pack_assets(cfg)
        self.src_vocab, self.tgt_vocab = _vocabularies(ckpt, cfg) if ckpt else (data.src_vocab, data.tgt_vocab)
        self.tokenizer = build_tokenizer(cfg.tokenizer)
        self.net = build_model(cfg.model, self.src_vocab.tokens, self.tgt_vocab.tokens).to(self.device)
        self.train_examples = self.net.encode_corpus(data.train, self.src_vocab, self.tgt_vocab)
        self.dev = None
        if data.dev:
            examples = self.net.encode_corpus(data.dev, self.src_vocab, self.tgt_vocab)
            self.dev = DevSet(examples, references(data.dev.targets, self.tokenizer))
        self.model = self.world.wrap(self.net, find_unused=self.net.coverage_from_step is not None)
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = OPTIMIZERS.build(self.tcfg.optimizer, params=trainable)
        self.scheduler = SCHEDULERS.build(
            self.tcfg.scheduler,
            optimizer=self.optimizer,
            max_steps=self.tcfg.max_steps,
            mode="min" if self.metric.lower_is_better else "max",
        )
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.sampling = SAMPLING.build(self.tcfg.scheduled_sampling)  # update -> P(the decoder reads its own token)
        self.progress = Progress(coverage_on=self.net.coverage_at(0))
        self.bad_steps = 0
        self.stops = StopRequests(saved_step=ckpt.progress.step if ckpt else None)

        if self.world.is_main:
            self.run_dir.save_vocabularies(self.src_vocab, self.tgt_vocab)
            for name, path in write_splits(cfg, data, self.out).items():
                log.info("%s split written to %s", name, path)
        if ckpt:
            self._restore(ckpt)
            log.info("resumed from step %d (%s)", self.progress.step, resume_from[0])
        self.writer = _tensorboard(self.run_dir.tensorboard) if self.world.is_main else None
        if self.tcfg.log_gradient_flow:
            require_figures()  # the plot extra: missing, say so now, not at the first evaluation
        n_params = sum(p.numel() for p in self.net.parameters())
        log.info(
            "model: %.2fM parameters; %d training examples; device %s%s",
            n_params / 1e6,
            len(self.train_examples),
            self.device,
            f" x {self.world.size}" if self.world.size > 1 else "",
        )

    # ----------------------------------------------------------------------------------------
    # The loop
    # ----------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        progress, evaluated_at = self.progress, self.progress.step
        stopped_early = bool(self.tcfg.patience) and progress.bad_evals >= self.tcfg.patience
        if stopped_early or self._done():
            log.info("the run in %s is finished (step %d): nothing to train", self.out, progress.step)
        started = time.perf_counter() - progress.seconds  # train.max_minutes: time across resumes
        window, per_epoch = Window(), math.ceil(len(self._epoch_plan(0)) / self.tcfg.accumulate)
        bar = tqdm(
            total=expected_steps(self.tcfg, progress, per_epoch),
            initial=progress.step,
            unit="step",
            disable=not self.show_progress,
            dynamic_ncols=True,
        )
        try:
            with self.stops.handled(), logging_redirect_tqdm(console_loggers()):
                while not self._done() and not stopped_early:
                    plan = self._epoch_plan(progress.epoch)
                    while progress.batch_in_epoch < len(plan) and not self._done() and not stopped_early:
                        group = plan[progress.batch_in_epoch : progress.batch_in_epoch + self.tcfg.accumulate]
                        window.add(*self.training_step([self.net.collate(self.train_examples, idx) for idx in group]))
                        progress.batch_in_epoch += len(group)
                        progress.step += 1
                        progress.seconds = time.perf_counter() - started
                        bar.total = expected_steps(self.tcfg, progress, per_epoch)
                        bar.update(1)
                        if progress.step % self.tcfg.log_every == 0:
                            self._log_training(window.flush(), bar)
                        if self.tcfg.eval_every and progress.step % self.tcfg.eval_every == 0:
                            stopped_early, evaluated_at = self.evaluate_and_save(), progress.step
                        if self._interrupted():  # after this step's evaluation: a resume would skip it
                            saved = self._save_last(written=evaluated_at == progress.step)
                            raise TrainingInterrupted(self.stops.received, progress.step, saved)
                    if progress.batch_in_epoch >= len(plan):
                        progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
                if evaluated_at != progress.step:
                    stopped_early = self.evaluate_and_save()
        finally:
            bar.close()
            self._close()
        return self._finish(stopped_early)

    def _done(self) -> bool:
        t, p = self.tcfg, self.progress
        out_of_time = t.max_minutes and p.seconds >= 60 * t.max_minutes
        return bool(
            (t.max_steps and p.step >= t.max_steps) or (t.max_epochs and p.epoch >= t.max_epochs) or out_of_time
        )

    def _epoch_plan(self, epoch: int) -> list[list[int]]:
        """This process's batches for ``epoch``: the same plan everywhere, a shard per process."""
        src_lengths, tgt_lengths = example_lengths(self.train_examples)
        plan = plan_batches(
            src_lengths,
            tgt_lengths,
            batch_size=self.tcfg.batch_size,
            batch_tokens=self.tcfg.batch_tokens,
            shuffle=True,
            seed=self.tcfg.seed,
            epoch=epoch,
        )
        usable = len(plan) - len(plan) % self.world.size  # every process takes as many steps
        if usable == 0:
            raise ConfigError(f"{self.cfg.data.train}: {len(plan)} batches, too few for {self.world.size} processes")
        return plan[self.world.rank : usable : self.world.size]

    def training_step(self, batches: list[Batch]) -> tuple[float, float, int, float]:
        """One optimizer update over ``batches``; returns (summed NLL, summed coverage loss,
        target tokens (the model's ``loss_units``), gradient norm)."""
        self.model.train()
        coverage = self.progress.coverage_on = self.net.coverage_at(self.progress.step)
        sampling, smoothing = self.sampling(self.progress.step), self.tcfg.label_smoothing
        n_tokens = sum(self.net.loss_units(b) for b in batches)  # CPU tensors: no device sync
        nll_sum = torch.zeros((), device=self.device)
        coverage_sum = torch.zeros((), device=self.device)
        for i, batch in enumerate(batches):
            with self.world.no_sync(self.model, skip=i < len(batches) - 1), self._autocast():
                out = self.model(
                    self._to_device(batch), coverage=coverage, label_smoothing=smoothing, sampling=sampling
                )
                nll = out.token_loss.sum()
                loss = nll / n_tokens
                if out.coverage_loss is not None:
                    coverage_loss = out.coverage_loss.sum()
                    loss = loss + self.net.coverage_weight * coverage_loss / n_tokens
                    coverage_sum += coverage_loss.detach().float()
                if out.aux_loss is not None:
                    loss = loss + out.aux_loss / n_tokens
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            nll_sum += nll.detach().float()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        clip = self.tcfg.clip_grad_norm if self.tcfg.clip_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), clip)
        nll, norm = float(nll_sum), float(grad_norm)  # the update's one read back to the host
        if self.scaler:  # fp16: the scaler skips updates whose gradients overflowed, and rescales
            self.scaler.step(self.optimizer)
            self.scaler.update()
            finite = math.isfinite(nll)
        else:
            finite = math.isfinite(nll) and math.isfinite(norm)
            if finite:
                self.optimizer.step()
        if finite and not is_per_evaluation(self.scheduler):
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._count_bad_step(finite, nll)
        return nll, float(coverage_sum), n_tokens, norm

    def _count_bad_step(self, finite: bool, nll: float) -> None:
        """A NaN/inf loss (or gradient) skips the update; max_bad_steps in a row stop the run."""
        if finite:
            self.bad_steps = 0
            return
        self.bad_steps += 1
        log.warning(
            "step %d: loss %s, gradient not finite: batch skipped (%d in a row)",
            self.progress.step + 1,
            nll,
            self.bad_steps,
        )
        if self.bad_steps >= self.tcfg.max_bad_steps:
            raise TrainingError(
                f"{self.bad_steps} updates in a row had a NaN/inf loss or gradient (train.max_bad_steps); "
                f"lower train.optimizer.lr or set train.clip_grad_norm"
            )

    def _to_device(self, batch: Batch) -> Batch:
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    # ----------------------------------------------------------------------------------------
    # Logging, evaluation, checkpoints
    # ----------------------------------------------------------------------------------------

    def _log_training(self, stats: dict[str, float], bar: tqdm) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        stats = {"step": self.progress.step, "epoch": self.progress.epoch, **stats, "lr": lr}
        if self.tcfg.scheduled_sampling.type != "none":
            stats["sampling"] = self.sampling(self.progress.step - 1)  # the last update's
        bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.2e}", tok_s=f"{stats['tokens_per_sec']:.0f}")
        if not self.world.is_main:
            return
        log.info(training_line(stats))
        self.run_dir.append_metrics(stats)
        for name in ("loss", "coverage_loss", "lr", "grad_norm", "tokens_per_sec", "sampling"):
            if name in stats:
                self.writer.add_scalar(f"train/{name}", stats[name], self.progress.step)

    def evaluate_and_save(self) -> bool:
        """Validate (main process), step `plateau`, save checkpoints; True to stop early."""
        stop, score, progress, improved = False, None, self.progress, True
        if self.world.is_main:
            if self.dev is not None:
                result = validate_model(
                    self.net,
                    self.dev,
                    predict=self.cfg.predict,
                    batch_size=self.tcfg.eval_batch_size,
                    tgt_vocab=self.tgt_vocab,
                    tokenizer=self.tokenizer,
                    device=self.device,
                    coverage=progress.coverage_on,
                    autocast=self._autocast,
                    progress=self.show_progress,
                )
                score = self.metric.read(result)
                improved = self.metric.better(score, progress.best_score)
                if improved:
                    progress.best_score, progress.best_step, progress.bad_evals = score, progress.step, 0
                else:
                    progress.bad_evals += 1
                stop = bool(self.tcfg.patience) and progress.bad_evals >= self.tcfg.patience
                stopping = f" | no improvement in {progress.bad_evals} evaluations: stopping" if stop else ""
                report(
                    result,
                    step=progress.step,
                    run_dir=self.run_dir,
                    writer=self.writer,
                    metric=self.metric,
                    best=(progress.best_score, progress.best_step),
                    improved=improved,
                    stopping=stopping,
                )
                if self.tcfg.log_gradient_flow:
                    log_gradient_flow(
                        self.writer,
                        self.net,
                        self.dev.examples,
                        step=progress.step,
                        device=self.device,
                        coverage=progress.coverage_on,
                    )
            else:  # without a dev set the latest model is the one to keep
                progress.best_step = progress.step
        stop, score = self.world.broadcast((stop, score))
        if is_per_evaluation(self.scheduler) and score is not None:
            self.scheduler.step(score)  # before saving: the checkpoint of this step holds it
        if self.world.is_main:
            self._save(best=improved)
        return stop

    def checkpoint(self, *, full: bool) -> Checkpoint:
        """The run's state now: weights and progress, plus (``full``) what resuming needs."""
        training = capture_training_state(self.optimizer, self.scheduler, self.scaler) if full else None
        return Checkpoint(
            self.cfg,
            self.src_vocab.tokens,
            self.tgt_vocab.tokens,
            self.net.state_dict(),
            dataclasses.replace(self.progress),
            training,
            self.assets,
        )

    def _save(self, best: bool) -> None:
        """best.pt first, then the checkpoints that record it: a kill in between leaves a
        resumable state whose best is on disk (the resumed run redoes the newer best)."""
        with self.stops.saving(self.progress.step):
            if best:
                self.checkpoint(full=False).save(self.out / "best.pt")
            full = self.checkpoint(full=True)
            if self.tcfg.keep_last:
                full.save(self.out / f"step_{self.progress.step}.pt")
                prune_step_checkpoints(self.out, self.tcfg.keep_last)
            full.save(self.out / "last.pt")

    def _save_last(self, written: bool = False) -> Path | None:
        """Write last.pt (unless ``written`` at this step already); its path on the main process."""
        if not self.world.is_main:
            return None
        if not written:
            with self.stops.saving(self.progress.step):
                self.checkpoint(full=True).save(self.out / "last.pt")
        return self.out / "last.pt"

    def _restore(self, ckpt: Checkpoint) -> None:
        """Weights, optimizer, scheduler, random states and progress (``resolve_resume`` checked
        that the checkpoint holds them)."""
        self.net.load_state_dict(ckpt.model)
        restore_training_state(ckpt.training, self.optimizer, self.scheduler, self.scaler)
        self.progress = dataclasses.replace(ckpt.progress)
        if self.world.is_main:
            self.run_dir.drop_metrics_after(self.progress.step)
            repair_best(self.out, ckpt)

    def _close(self) -> None:
        if self.writer:
            self.writer.close()
        self.run_dir.close()

    def _finish(self, stopped_early: bool) -> TrainResult:
        best, last = self.out / "best.pt", self.out / "last.pt"
        progress = self.progress
        if self.world.is_main:
            score = progress.best_score
            what = (
                f"{self.metric.format(score)} at step {progress.best_step}"
                if score is not None
                else f"the model at step {progress.best_step}; no dev set"
            )
            log.info("last checkpoint: %s | logs: %s, %s", last, self.run_dir.log_file, self.run_dir.metrics)
            log.info("TensorBoard: tensorboard --logdir %s", self.run_dir.tensorboard)
            log.info(
                "done: %d steps in %s%s | best: %s | %s",
                progress.step,
                duration(progress.seconds),
                " (stopped early)" if stopped_early else "",
                what,
                best,
            )
        self.model = self.net  # DDP's reducer holds work of the process group: let it go first
        self.world.stop()
        return TrainResult(self.out, best, last, progress.step, progress.best_score, progress.best_step, stopped_early)

    # ----------------------------------------------------------------------------------------
    # Signals
    # ----------------------------------------------------------------------------------------

    def _interrupted(self) -> bool:
        """Whether a signal arrived here (or, in a distributed run, in any process)."""
        return self.world.any(self.stops.received is not None)


def _vocabularies(ckpt: Checkpoint, cfg: Config) -> tuple[Vocabulary, Vocabulary]:
    """A checkpoint's vocabularies (one object when shared)."""
    src = Vocabulary(ckpt.src_vocab)
    return (src, src) if cfg.vocab.shared else (src, Vocabulary(ckpt.tgt_vocab))


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "none":
        return None
    if device.type != "cuda":
        log.warning("train.amp=%s needs CUDA; training in fp32 on %s", amp, device)
        return None
    return torch.bfloat16 if amp == "bf16" else torch.float16


def _tensorboard(directory: Path):
    from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only where it is used

    return SummaryWriter(str(directory))
