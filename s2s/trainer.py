"""Training: a config in, a self-contained checkpoint out.

    result = train(load_config("configs/quickstart.yaml"))

The loop: each update takes ``train.accumulate`` batches of the epoch's plan (a function of
the seed and the epoch alone), backpropagates the token-normalised loss, clips, steps. Every
``train.eval_every`` updates it evaluates on the dev set (loss, perplexity, ROUGE of greedy
decodes) and writes ``last.pt`` and ``step_N.pt`` (and ``best.pt`` on improvement).

Resume (``train.resume=auto`` or a path) restores the model, optimizer, scheduler, progress
(step, epoch, batches done in the epoch, best score, patience) and every random state, so the
run continues exactly where it stopped. SIGINT/SIGTERM finish the current update, save
``last.pt`` and raise ``TrainingInterrupted``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import Tensor
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from s2s import metrics
from s2s.batching import Batch, collate, encode_corpus, example_lengths, plan_batches
from s2s.checkpoint import (
    checkpoint_config, find_resume_checkpoint, load_checkpoint, prune_step_checkpoints, save_checkpoint,
)
from s2s.config import Config, from_dict, save_config, to_dict, validate
from s2s.errors import ConfigError, S2SError
from s2s.attention import ATTENTIONS
from s2s.decoders import DECODERS
from s2s.encoders import ENCODERS
from s2s.model import build_model
from s2s.optim import OPTIMIZERS, SCHEDULERS, is_per_evaluation
from s2s.plotting import attention_image
from s2s.prepare import prepare, write_dev_split
from s2s.runtime import tune_cpu
from s2s.search import SEARCHERS, search
from s2s.tokenizers import TOKENIZERS, build_tokenizer
from s2s.vocabulary import Vocabulary

log = logging.getLogger(__name__)

# Keys whose new value wins over the checkpoint's on resume; model, vocab and tokenizer must not change.
RESUMABLE_KEYS = {
    "train.max_steps", "train.max_epochs", "train.max_minutes", "train.eval_every", "train.patience", "train.log_every",
    "train.keep_last", "train.device", "train.threads", "train.eval_batch_size", "train.resume",
    "train.overwrite", "train.output_dir", "data.num_workers", "data.cache_dir",
}
FIXED_SECTIONS = ("model.", "vocab.", "tokenizer.")
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")


class TrainingError(S2SError):
    """Training cannot go on (e.g. the loss stayed NaN)."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived; ``checkpoint`` holds the state to resume from."""

    def __init__(self, signal_number: int, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted at step {step}")
        self.signal_number, self.step, self.checkpoint = signal_number, step, checkpoint


@dataclass
class Progress:
    step: int = 0  # updates done
    epoch: int = 0  # the current epoch (0-based)
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    best_score: float | None = None  # by train.keep_best_by
    best_step: int = 0
    bad_evals: int = 0  # evaluations since the best one (early stopping)
    coverage_on: bool = False
    seconds: float = 0.0  # training time so far, resumed runs included (train.max_minutes)


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
    """Train the model ``cfg`` describes; see the module docstring."""
    return Trainer(cfg, show_progress=show_progress).run()


class Trainer:
    def __init__(self, cfg: Config, *, show_progress: bool = True) -> None:
        self.world = _World.start(cfg.train.device)
        cfg, resume_from = _resolve_resume(cfg)
        validate(cfg)
        _check_training_plan(cfg)
        self.cfg, self.tcfg = cfg, cfg.train
        self.out = Path(cfg.train.output_dir)
        self.show_progress = show_progress and self.world.is_main
        if self.tcfg.threads:
            torch.set_num_threads(self.tcfg.threads)
        tune_cpu()
        _seed_everything(self.tcfg.seed)
        self.device = self.world.device
        self.amp_dtype = _amp_dtype(self.tcfg.amp, self.device)
        ckpt = resume_from[1] if resume_from else None
        self._log_file = self._start_run_directory(resumed=ckpt is not None) if self.world.is_main else None

        with self.world.main_first():  # the main process tokenizes; the others read its cache
            data = prepare(cfg, progress=self.show_progress)
        self.src_vocab, self.tgt_vocab = _vocabularies(ckpt, cfg) if ckpt else (data.src_vocab, data.tgt_vocab)
        self.tokenizer = build_tokenizer(cfg.tokenizer)
        self.train_examples = encode_corpus(data.train, self.src_vocab, self.tgt_vocab)
        self.dev_corpus = data.dev
        self.dev_examples = encode_corpus(data.dev, self.src_vocab, self.tgt_vocab) if data.dev else None

        self.net = build_model(cfg.model, self.src_vocab.tokens, self.tgt_vocab.tokens).to(self.device)
        self.model = self.world.wrap(self.net, find_unused=cfg.model.decoder.coverage)
        self.optimizer = OPTIMIZERS.build(self.tcfg.optimizer, params=[p for p in self.net.parameters() if p.requires_grad])
        self.scheduler = SCHEDULERS.build(
            self.tcfg.scheduler, optimizer=self.optimizer, max_steps=self.tcfg.max_steps,
            mode="min" if self.tcfg.keep_best_by in ("loss", "ppl") else "max",
        )
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.progress = Progress(coverage_on=self.net.decoder.coverage_on)
        self.bad_steps = 0
        self._signal: int | None = None

        if self.world.is_main:
            self._save_vocabularies()
            if dev_split := write_dev_split(cfg, data, self.out):
                log.info("dev split written to %s", dev_split)
        if ckpt:
            self._restore(ckpt)
            log.info("resumed from step %d (%s)", self.progress.step, resume_from[0])
        self.writer = _tensorboard(self.out / "tensorboard") if self.world.is_main else None
        n_params = sum(p.numel() for p in self.net.parameters())
        log.info("model: %.2fM parameters; %d training examples; device %s%s", n_params / 1e6,
                 len(self.train_examples), self.device, f" x {self.world.size}" if self.world.size > 1 else "")

    # ----------------------------------------------------------------------------------------
    # The loop
    # ----------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        progress, stopped_early, evaluated_at = self.progress, False, self.progress.step
        started = time.perf_counter() - progress.seconds  # train.max_minutes: time across resumes
        window = _Window()
        bar = tqdm(total=self.tcfg.max_steps or None, initial=progress.step, unit="step",
                   disable=not self.show_progress, dynamic_ncols=True)
        try:
            with self._signal_handlers(), logging_redirect_tqdm():
                while not self._done() and not stopped_early:
                    plan = self._epoch_plan(progress.epoch)
                    while progress.batch_in_epoch < len(plan) and not self._done() and not stopped_early:
                        group = plan[progress.batch_in_epoch : progress.batch_in_epoch + self.tcfg.accumulate]
                        window.add(*self._update([collate(self.train_examples, idx) for idx in group]))
                        progress.batch_in_epoch += len(group)
                        progress.step += 1
                        progress.seconds = time.perf_counter() - started
                        bar.update(1)
                        if progress.step % self.tcfg.log_every == 0:
                            self._log_training(window.flush(), bar)
                        if self._interrupted():
                            raise TrainingInterrupted(self._signal, progress.step, self._save_last())
                        if self.tcfg.eval_every and progress.step % self.tcfg.eval_every == 0:
                            stopped_early, evaluated_at = self._evaluate_and_save(), progress.step
                    if progress.batch_in_epoch >= len(plan):
                        progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
                if evaluated_at != progress.step:
                    stopped_early = self._evaluate_and_save()
        finally:
            bar.close()
            self._close()
        return self._finish(stopped_early)

    def _done(self) -> bool:
        t, p = self.tcfg, self.progress
        out_of_time = t.max_minutes and p.seconds >= 60 * t.max_minutes
        return bool((t.max_steps and p.step >= t.max_steps) or (t.max_epochs and p.epoch >= t.max_epochs) or out_of_time)

    def _epoch_plan(self, epoch: int) -> list[list[int]]:
        """This process's batches for ``epoch``: the same plan everywhere, a shard per process."""
        src_lengths, tgt_lengths = example_lengths(self.train_examples)
        plan = plan_batches(src_lengths, tgt_lengths, batch_size=self.tcfg.batch_size,
                            batch_tokens=self.tcfg.batch_tokens, shuffle=True, seed=self.tcfg.seed, epoch=epoch)
        usable = len(plan) - len(plan) % self.world.size  # every process takes as many steps
        if usable == 0:
            raise ConfigError(f"{self.cfg.data.train}: {len(plan)} batches, too few for {self.world.size} processes")
        return plan[self.world.rank : usable : self.world.size]

    def _update(self, batches: list[Batch]) -> tuple[float, float, int, float]:
        """One optimizer update over ``batches``; returns (summed NLL, summed coverage loss,
        target tokens, gradient norm)."""
        self.model.train()
        coverage_on = self.cfg.model.decoder.coverage and self.progress.step >= self.cfg.model.decoder.coverage_from_step
        self.net.set_coverage(coverage_on)
        self.progress.coverage_on = coverage_on
        n_tokens = sum(int(b.tgt_mask.sum()) for b in batches)  # CPU tensors: no device sync
        nll_sum = torch.zeros((), device=self.device)
        coverage_sum = torch.zeros((), device=self.device)
        for i, batch in enumerate(batches):
            sync = i == len(batches) - 1
            with self.world.no_sync(self.model, skip=not sync), self._autocast():
                out = self.model(self._to_device(batch), label_smoothing=self.tcfg.label_smoothing)
                nll = out.token_loss.sum()
                loss = nll / n_tokens
                if out.coverage_loss is not None:
                    coverage = out.coverage_loss.sum()
                    loss = loss + self.cfg.model.decoder.coverage_weight * coverage / n_tokens
                    coverage_sum += coverage.detach().float()
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
        log.warning("step %d: loss %s, gradient not finite: batch skipped (%d in a row)",
                    self.progress.step + 1, nll, self.bad_steps)
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
        bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.2e}", tok_s=f"{stats['tokens_per_sec']:.0f}")
        if not self.world.is_main:
            return
        self._append_metrics(stats)
        for name in ("loss", "coverage_loss", "lr", "grad_norm", "tokens_per_sec"):
            if name in stats:
                self.writer.add_scalar(f"train/{name}", stats[name], self.progress.step)

    def _append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _evaluate_and_save(self) -> bool:
        """Evaluate (main process), save checkpoints, step `plateau`; True to stop early."""
        stop, score = False, None
        if self.world.is_main:
            if self.dev_examples is not None:
                result = self._validate()
                score = _score_of(result, self.tcfg.keep_best_by)
                improved = self.progress.best_score is None or _better(score, self.progress.best_score, self.tcfg.keep_best_by)
                if improved:
                    self.progress.best_score, self.progress.best_step, self.progress.bad_evals = score, self.progress.step, 0
                else:
                    self.progress.bad_evals += 1
                stop = bool(self.tcfg.patience) and self.progress.bad_evals >= self.tcfg.patience
                self._report(result, improved, stop)
            else:
                improved = True  # without a dev set the latest model is the one to keep
                self.progress.best_step = self.progress.step
            self._save(best=improved)
        stop, score = self.world.broadcast((stop, score))
        if is_per_evaluation(self.scheduler) and score is not None:
            self.scheduler.step(score)
        return stop

    def _validate(self) -> dict[str, Any]:
        """Dev loss and perplexity (teacher forcing), ROUGE of greedy decodes, one heatmap."""
        self.net.eval()
        examples, corpus = self.dev_examples, self.dev_corpus
        src_lengths, tgt_lengths = example_lengths(examples)
        greedy = dataclasses.replace(self.cfg.predict, search="greedy")
        predictions: list[str] = [""] * len(examples)
        nll, tokens = 0.0, 0
        with torch.no_grad():
            for indices in plan_batches(src_lengths, tgt_lengths, batch_size=self.tcfg.eval_batch_size):
                batch = self._to_device(collate(examples, indices))
                with self._autocast():
                    nll += float(self.net(batch).token_loss.sum())
                    hypotheses = search(self.net, batch, greedy)
                tokens += int(batch.tgt_mask.sum())
                for row, (index, hyps) in enumerate(zip(batch.indices, hypotheses)):
                    predictions[index] = self.tokenizer.detokenize(self.tgt_vocab.decode(hyps[0].tokens, batch.oovs[row]))
            first = self._to_device(collate(examples, [0]))
            shown = search(self.net, first, greedy, return_attention=True)[0][0]
        references = [self.tokenizer.detokenize(t) for t in corpus.targets]
        loss = nll / max(tokens, 1)
        return {
            "loss": loss, "ppl": math.exp(min(loss, 50.0)),
            "scores": metrics.score(predictions, references, levels=("word", "char")),
            "example": (shown, predictions[0], references[0]),
        }

    def _report(self, result: dict[str, Any], improved: bool, stop: bool) -> None:
        step, scores = self.progress.step, result["scores"]
        record = {"step": step, "dev_loss": result["loss"], "dev_ppl": result["ppl"]}
        for level in ("word", "char"):
            for name, prf in scores[level].items():
                record[f"dev_{name}_{level}"] = prf["f"]
                self.writer.add_scalar(f"dev/{name}-{level}", 100 * prf["f"], step)
        self.writer.add_scalar("dev/loss", result["loss"], step)
        self.writer.add_scalar("dev/ppl", result["ppl"], step)
        record["dev_repeated_trigrams"] = scores["guards"]["repeated_trigrams"]["word"]
        self._append_metrics(record)
        hypothesis, prediction, reference = result["example"]
        if hypothesis.attention is not None and hypothesis.attention.numel():
            self.writer.add_image("dev/attention", attention_image(hypothesis.attention, hypothesis.p_gen), step)
        self.writer.add_text("dev/example", f"prediction: {prediction}  \nreference: {reference}", step)
        char = scores["char"]
        best = f"best {_format_score(self.progress.best_score, self.tcfg.keep_best_by)} @ {self.progress.best_step}"
        log.info(
            "step %d | dev loss %.3f ppl %.1f | ROUGE-1/2/L %.1f/%.1f/%.1f (char) | %s%s%s",
            step, result["loss"], result["ppl"], 100 * char["rouge-1"]["f"], 100 * char["rouge-2"]["f"],
            100 * char["rouge-l"]["f"], best, " | new best" if improved else "",
            f" | no improvement in {self.progress.bad_evals} evaluations: stopping" if stop else "",
        )

    def _payload(self, full: bool) -> dict[str, Any]:
        payload = {
            "config": to_dict(self.cfg),
            "src_vocab": self.src_vocab.tokens,
            "tgt_vocab": self.tgt_vocab.tokens,
            "model": self.net.state_dict(),
            "progress": dataclasses.asdict(self.progress),
        }
        if full:
            payload |= {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "rng": {
                    "python": random.getstate(),
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                },
            }
        return payload

    def _save(self, best: bool) -> None:
        full = self._payload(full=True)
        step_path = self.out / f"step_{self.progress.step}.pt"
        if self.tcfg.keep_last:
            save_checkpoint(full, step_path)
            prune_step_checkpoints(self.out, self.tcfg.keep_last)
        save_checkpoint(full, self.out / "last.pt")
        if best:
            save_checkpoint(self._payload(full=False), self.out / "best.pt")

    def _save_last(self) -> Path | None:
        if not self.world.is_main:
            return None
        save_checkpoint(self._payload(full=True), self.out / "last.pt")
        return self.out / "last.pt"

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.progress = Progress(**ckpt["progress"])
        self.net.set_coverage(self.progress.coverage_on)
        if self.world.is_main:
            _drop_metrics_after(self.out / "metrics.jsonl", self.progress.step)
        random.setstate(ckpt["rng"]["python"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if torch.cuda.is_available() and ckpt["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])

    def _start_run_directory(self, resumed: bool) -> logging.Handler:
        """Clear a replaced run (new runs), write the resolved config, log to train.log."""
        self.out.mkdir(parents=True, exist_ok=True)
        if not resumed:
            for name in RUN_FILES:
                (self.out / name).unlink(missing_ok=True)
            for path in self.out.glob("step_*.pt"):
                path.unlink()
            shutil.rmtree(self.out / "tensorboard", ignore_errors=True)
        save_config(self.cfg, self.out / "config.yaml")
        handler = logging.FileHandler(self.out / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        package_log = logging.getLogger("s2s")
        package_log.addHandler(handler)
        package_log.setLevel(logging.INFO)
        return handler

    def _save_vocabularies(self) -> None:
        if self.src_vocab is self.tgt_vocab:
            self.src_vocab.save(self.out / "vocab.txt")
        else:
            self.src_vocab.save(self.out / "src_vocab.txt")
            self.tgt_vocab.save(self.out / "tgt_vocab.txt")

    def _close(self) -> None:
        if self.writer:
            self.writer.close()
        if self._log_file:
            logging.getLogger("s2s").removeHandler(self._log_file)
            self._log_file.close()

    def _finish(self, stopped_early: bool) -> TrainResult:
        best, last = self.out / "best.pt", self.out / "last.pt"
        if self.world.is_main:
            score = self.progress.best_score
            what = f"{_format_score(score, self.tcfg.keep_best_by)} at step {self.progress.best_step}" if score is not None \
                else f"the model at step {self.progress.best_step}; no dev set"
            log.info("done: %d steps%s", self.progress.step, " (stopped early)" if stopped_early else "")
            log.info("best checkpoint: %s (%s)", best, what)
            log.info("last checkpoint: %s | logs: %s, %s", last, self.out / "train.log", self.out / "metrics.jsonl")
            log.info("TensorBoard: tensorboard --logdir %s", self.out / "tensorboard")
        self.world.stop()
        return TrainResult(self.out, best, last, self.progress.step, self.progress.best_score,
                           self.progress.best_step, stopped_early)

    # ----------------------------------------------------------------------------------------
    # Signals
    # ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        """SIGINT/SIGTERM set a flag; the loop saves and stops after the current update."""

        def request_stop(signal_number: int, frame: object) -> None:
            if self._signal is not None:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self._signal = signal_number
            log.warning("%s received: finishing the current step, then saving", signal.Signals(signal_number).name)

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _interrupted(self) -> bool:
        """Whether a signal arrived here (or, in a distributed run, in any process)."""
        return self.world.any(self._signal is not None)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class _Window:
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
        stats = {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "grad_norm": sum(self.norms) / max(len(self.norms), 1),
                 "tokens_per_sec": self.tokens / max(elapsed, 1e-9)}
        if self.coverage:
            stats["coverage_loss"] = self.coverage / max(self.tokens, 1)
        self.__init__()
        return stats


def _vocabularies(ckpt: dict[str, Any], cfg: Config) -> tuple[Vocabulary, Vocabulary]:
    """A checkpoint's vocabularies (one object when shared)."""
    src = Vocabulary(ckpt["src_vocab"])
    return (src, src) if cfg.vocab.shared else (src, Vocabulary(ckpt["tgt_vocab"]))


def _drop_metrics_after(path: Path, step: int) -> None:
    """Forget what a crashed run logged after the checkpoint it resumes from."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if json.loads(line)["step"] <= step), encoding="utf-8")


def _score_of(result: dict[str, Any], key: str) -> float:
    if key in ("loss", "ppl"):
        return result[key]
    return result["scores"]["char"][key]["f"]


def _format_score(score: float, key: str) -> str:
    """``rouge-l`` 0.2871 -> "ROUGE-L 28.71 (char)"; ``loss`` 3.2 -> "loss 3.200"."""
    if key in ("loss", "ppl"):
        return f"{key} {score:.3f}"
    return f"{key.upper()} {100 * score:.2f} (char)"


def _better(score: float, best: float, key: str) -> bool:
    return score < best if key in ("loss", "ppl") else score > best


def _check_training_plan(cfg: Config) -> None:
    """Errors that would otherwise surface only after the data is read, or hours of training."""
    for registry, name in ((TOKENIZERS, cfg.tokenizer.type), (ENCODERS, cfg.model.encoder.type),
                           (ATTENTIONS, cfg.model.attention.type), (DECODERS, cfg.model.decoder.type),
                           (OPTIMIZERS, cfg.train.optimizer.type), (SCHEDULERS, cfg.train.scheduler.type),
                           (SEARCHERS, cfg.predict.search)):
        registry.get(name)  # an unknown name lists the choices
    t = cfg.train
    if not t.max_steps and not t.max_epochs and not t.max_minutes:
        raise ConfigError("train: set train.max_steps, train.max_epochs or train.max_minutes (all are 0)")
    has_dev = bool(cfg.data.dev) or cfg.data.dev_split > 0
    if not has_dev:
        needs = [k for k, v in (("train.patience", t.patience), ("train.scheduler.type: plateau", t.scheduler.type == "plateau")) if v]
        if needs:
            raise ConfigError(f"{', '.join(needs)} needs a dev set: set data.dev or data.dev_split")


def _resolve_resume(cfg: Config) -> tuple[Config, tuple[Path, dict] | None]:
    """The config to run and the checkpoint to resume from (None for a new run)."""
    out = Path(cfg.train.output_dir)
    if not cfg.train.resume:
        holds_run = any((out / name).exists() for name in RUN_FILES) or any(out.glob("step_*.pt"))
        if holds_run and not cfg.train.overwrite:
            raise ConfigError(
                f"train.output_dir {out} holds another run: resume it with train.resume=auto, "
                f"replace it with train.overwrite=true, or choose another train.output_dir"
            )
        return cfg, None
    if cfg.train.resume == "auto":
        found = find_resume_checkpoint(out)
        if found is None:
            log.info("train.resume=auto: no checkpoint in %s, starting a new run", out)
            return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=None, overwrite=True)), None
    else:
        found = (Path(cfg.train.resume), load_checkpoint(cfg.train.resume))
    return _resume_config(checkpoint_config(found[1], found[0]), cfg), found


def _resume_config(saved: Config, given: Config) -> Config:
    """The checkpoint's config, with the given values of ``RESUMABLE_KEYS`` and ``predict.*``."""
    saved_flat, given_flat = _flatten(to_dict(saved)), _flatten(to_dict(given))
    changed = sorted(k for k, v in given_flat.items() if saved_flat.get(k) != v)
    shape = [k for k in changed if k.startswith(FIXED_SECTIONS)]
    if shape:
        diffs = "; ".join(f"{k}: {saved_flat.get(k)!r} -> {given_flat[k]!r}" for k in shape[:4])
        raise ConfigError(f"train.resume: the model cannot change on resume ({diffs}); start a new run in another train.output_dir")
    kept = [k for k in changed if k not in RESUMABLE_KEYS and not k.startswith("predict.")]
    if kept:
        log.warning("resuming with the checkpoint's values of %s (they cannot change on resume)", ", ".join(kept))
    merged = {k: given_flat[k] if k in changed and k not in kept else v for k, v in saved_flat.items()}
    return from_dict(_unflatten(merged), source="resumed config")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


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


@dataclass
class _World:
    """The processes of a (possibly distributed) run; one process is the plain case."""

    rank: int
    size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device_choice: str) -> _World:
        """Join the process group when started by torchrun (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPUs."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
        if device_choice == "cuda" and not torch.cuda.is_available():
            raise ConfigError("train.device: cuda, but no CUDA device is available (use auto or cpu)")
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
        if size > 1 and not dist.is_initialized():
            if use_cuda:
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if use_cuda else "gloo")
        if rank != 0:
            logging.getLogger("s2s").setLevel(logging.WARNING)
        return cls(rank, size, device)

    def wrap(self, model: torch.nn.Module, find_unused: bool) -> torch.nn.Module:
        if self.size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)

    def no_sync(self, model: torch.nn.Module, skip: bool) -> contextlib.AbstractContextManager:
        """Skip the gradient all-reduce for all but the last batch of an update."""
        return model.no_sync() if skip and self.size > 1 else contextlib.nullcontext()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block in the main process first, then in the others."""
        if self.size > 1 and not self.is_main:
            dist.barrier()
        yield
        if self.size > 1 and self.is_main:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        if self.size == 1:
            return flag
        value = torch.tensor(float(flag), device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value)

    def broadcast(self, obj: Any) -> Any:
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def stop(self) -> None:
        if self.size > 1 and dist.is_initialized():
            dist.destroy_process_group()
