"""Optimizers and learning-rate schedules, built by name (``train.optimizer``, ``train.scheduler``).

Every schedule is a torch scheduler; the LambdaLR ones multiply optimizer.lr by a factor of
the number of updates done. All but ``plateau`` step after every optimizer update;
``plateau`` steps after every evaluation, on the validation metric.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from s2s.config import OptimizerConfig, SchedulerConfig
from s2s.errors import ConfigError
from s2s.registry import Registry

OPTIMIZERS: Registry[Callable[..., Optimizer]] = Registry("optimizer")
SCHEDULERS: Registry[Callable[..., LRScheduler | ReduceLROnPlateau]] = Registry("scheduler")

Params = Iterable[torch.nn.Parameter]


@OPTIMIZERS.register("adam")
def adam(cfg: OptimizerConfig, params: Params) -> Optimizer:
    return _fused(torch.optim.Adam, params, lr=cfg.lr, betas=_betas(cfg), eps=cfg.eps, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("adamw")
def adamw(cfg: OptimizerConfig, params: Params) -> Optimizer:
    return _fused(torch.optim.AdamW, params, lr=cfg.lr, betas=_betas(cfg), eps=cfg.eps, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("sgd")
def sgd(cfg: OptimizerConfig, params: Params) -> Optimizer:
    return _fused(torch.optim.SGD, params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("adagrad")
def adagrad(cfg: OptimizerConfig, params: Params) -> Optimizer:
    """Adagrad with an initial accumulator of 0.1, as See et al. (2017) train the pointer-generator."""
    return _fused(
        torch.optim.Adagrad, params, lr=cfg.lr, initial_accumulator_value=cfg.initial_accumulator_value,
        eps=cfg.eps, weight_decay=cfg.weight_decay,
    )


def _fused(optimizer: type[Optimizer], params: Params, **options: object) -> Optimizer:
    """The optimizer's fused implementation (one kernel per step for all parameters) where this
    PyTorch has one for these devices (CPU since 2.4), else its default."""
    params = list(params)
    try:
        return optimizer(params, fused=True, **options)
    except (RuntimeError, TypeError):
        return optimizer(params, **options)


def _betas(cfg: OptimizerConfig) -> tuple[float, float]:
    if len(cfg.betas) != 2:
        raise ConfigError(f"train.optimizer.betas: expected two numbers, got {cfg.betas}")
    return cfg.betas[0], cfg.betas[1]


def is_per_evaluation(scheduler: object) -> bool:
    """Whether the schedule steps on the validation metric (after evaluations)."""
    return isinstance(scheduler, ReduceLROnPlateau)


def _warmup(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


@SCHEDULERS.register("constant")
def constant(cfg: SchedulerConfig, optimizer: Optimizer, **_: object) -> LambdaLR:
    """optimizer.lr throughout (after a linear warm-up, if warmup_steps is set)."""
    return LambdaLR(optimizer, lambda step: _warmup(step, cfg.warmup_steps))


@SCHEDULERS.register("step")
def step_decay(cfg: SchedulerConfig, optimizer: Optimizer, **_: object) -> LambdaLR:
    """x gamma every step_size updates."""
    return LambdaLR(optimizer, lambda step: cfg.gamma ** (step // cfg.step_size))


@SCHEDULERS.register("noam")
def noam(cfg: SchedulerConfig, optimizer: Optimizer, **_: object) -> LambdaLR:
    """Linear warm-up to optimizer.lr at warmup_steps, then decay as 1/sqrt(step) (Vaswani et al.)."""
    if cfg.warmup_steps < 1:
        raise ConfigError("train.scheduler.warmup_steps: noam needs a warm-up of at least 1 step")
    warmup = cfg.warmup_steps
    return LambdaLR(optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1))))


@SCHEDULERS.register("cosine")
def cosine(cfg: SchedulerConfig, optimizer: Optimizer, *, max_steps: int = 0, **_: object) -> LambdaLR:
    """Linear warm-up, then a half cosine from optimizer.lr down to min_lr at train.max_steps."""
    if max_steps < 1:
        raise ConfigError("train.scheduler: cosine needs train.max_steps (the step it decays to)")
    floor = cfg.min_lr / optimizer.defaults["lr"]

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return _warmup(step, cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


@SCHEDULERS.register("plateau")
def plateau(cfg: SchedulerConfig, optimizer: Optimizer, *, mode: str = "max", **_: object) -> ReduceLROnPlateau:
    """x factor after `patience` evaluations without improvement of train.keep_best_by."""
    return ReduceLROnPlateau(optimizer, mode=mode, factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr)
