"""Optimizers and learning-rate schedules, built by name (``train.optimizer``, ``train.scheduler``).

Every schedule is a torch scheduler; the LambdaLR ones multiply optimizer.lr by a factor of
the number of updates done. All but ``plateau`` step after every optimizer update;
``plateau`` steps after every evaluation, on the validation metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from s2s.errors import ConfigError
from s2s.options import NonNegativeFloat, NonNegativeInt, OptionError, PartOptions, PositiveFloat, PositiveInt
from s2s.registry import OPTIMIZERS, SCHEDULERS

Params = Iterable[torch.nn.Parameter]


@dataclass
class OptimizerOptions(PartOptions):
    lr: NonNegativeFloat = 1e-3  # the learning rate (schedules scale it)
    weight_decay: NonNegativeFloat = 0.0  # L2 penalty (adamw: decoupled weight decay)


@dataclass
class AdamOptions(OptimizerOptions):
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # decay rates of the moment estimates
    eps: PositiveFloat = 1e-8  # added to the denominator

    def validate(self, root: Any) -> None:
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise OptionError("betas", f"expected two numbers in [0, 1), got {self.betas}")


@dataclass
class SGDOptions(OptimizerOptions):
    momentum: NonNegativeFloat = 0.0  # 0: plain SGD


@dataclass
class AdagradOptions(OptimizerOptions):
    eps: PositiveFloat = 1e-8  # added to the denominator
    initial_accumulator_value: NonNegativeFloat = 0.1  # See et al. 2017 use 0.1


@OPTIMIZERS.register("adam", options=AdamOptions)
def adam(cfg: AdamOptions, params: Params) -> Optimizer:
    """Adam (Kingma and Ba 2015)."""
    return _fused(
        torch.optim.Adam, params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
    )


@OPTIMIZERS.register("adamw", options=AdamOptions)
def adamw(cfg: AdamOptions, params: Params) -> Optimizer:
    """Adam with decoupled weight decay (Loshchilov and Hutter 2019)."""
    return _fused(
        torch.optim.AdamW, params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
    )


@OPTIMIZERS.register("sgd", options=SGDOptions)
def sgd(cfg: SGDOptions, params: Params) -> Optimizer:
    """Stochastic gradient descent, with momentum if set."""
    return _fused(torch.optim.SGD, params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("adagrad", options=AdagradOptions)
def adagrad(cfg: AdagradOptions, params: Params) -> Optimizer:
    """Adagrad with an initial accumulator of 0.1, as See et al. (2017) train the pointer-generator."""
    return _fused(
        torch.optim.Adagrad,
        params,
        lr=cfg.lr,
        initial_accumulator_value=cfg.initial_accumulator_value,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )


def _fused(optimizer: type[Optimizer], params: Params, **options: object) -> Optimizer:
    """The optimizer's fused implementation (one kernel per step for all parameters) where this
    PyTorch has one for these devices (CPU since 2.4), else its default."""
    params = list(params)
    try:
        return optimizer(params, fused=True, **options)
    except (RuntimeError, TypeError):
        return optimizer(params, **options)


def is_per_evaluation(scheduler: object) -> bool:
    """Whether the schedule steps on the validation metric (after evaluations)."""
    return isinstance(scheduler, ReduceLROnPlateau)


@dataclass
class WarmupOptions(PartOptions):
    warmup_steps: NonNegativeInt = 0  # linear warm-up from 0 to optimizer.lr over these steps


@dataclass
class StepDecayOptions(PartOptions):
    step_size: PositiveInt = 1000  # decay every step_size steps
    gamma: PositiveFloat = 0.5  # decay factor


@dataclass
class NoamOptions(PartOptions):
    warmup_steps: PositiveInt = 4000  # the peak: linear warm-up to optimizer.lr, then 1/sqrt decay


@dataclass
class CosineOptions(WarmupOptions):
    min_lr: NonNegativeFloat = 0.0  # the learning rate reached at train.max_steps


@dataclass
class PlateauOptions(PartOptions):
    factor: PositiveFloat = 0.5  # decay factor
    patience: NonNegativeInt = 2  # evaluations without improvement before decaying
    min_lr: NonNegativeFloat = 0.0  # never below this


def _warmup(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


@SCHEDULERS.register("constant", options=WarmupOptions)
def constant(cfg: WarmupOptions, optimizer: Optimizer, **_: object) -> LambdaLR:
    """optimizer.lr throughout (after a linear warm-up, if warmup_steps is set)."""
    return LambdaLR(optimizer, lambda step: _warmup(step, cfg.warmup_steps))


@SCHEDULERS.register("step", options=StepDecayOptions)
def step_decay(cfg: StepDecayOptions, optimizer: Optimizer, **_: object) -> LambdaLR:
    """x gamma every step_size updates."""
    return LambdaLR(optimizer, lambda step: cfg.gamma ** (step // cfg.step_size))


@SCHEDULERS.register("noam", options=NoamOptions)
def noam(cfg: NoamOptions, optimizer: Optimizer, **_: object) -> LambdaLR:
    """Linear warm-up to optimizer.lr at warmup_steps, then decay as 1/sqrt(step) (Vaswani et al.)."""
    warmup = cfg.warmup_steps
    return LambdaLR(optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1))))


@SCHEDULERS.register("cosine", options=CosineOptions)
def cosine(cfg: CosineOptions, optimizer: Optimizer, *, max_steps: int = 0, **_: object) -> LambdaLR:
    """Linear warm-up, then a half cosine from optimizer.lr down to min_lr at train.max_steps."""
    if max_steps < 1:
        raise ConfigError("train.scheduler: cosine needs train.max_steps (the step it decays to)")
    lr = optimizer.defaults["lr"]
    floor = cfg.min_lr / lr if lr > 0 else 0.0  # lr 0 stays 0

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return _warmup(step, cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


@SCHEDULERS.register("plateau", options=PlateauOptions)
def plateau(cfg: PlateauOptions, optimizer: Optimizer, *, mode: str = "max", **_: object) -> ReduceLROnPlateau:
    """x factor after `patience` evaluations without improvement of train.keep_best_by."""
    return ReduceLROnPlateau(optimizer, mode=mode, factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr)
