"""Scheduled sampling (Bengio et al. 2015): how often training feeds the decoder its own prediction.

    probability = SAMPLING.build(cfg.train.scheduled_sampling)   # a function of the update
    out = model(batch, sampling=probability(step))

Teacher forcing feeds the decoder the gold previous token; at test time it reads its own. With
probability p, per target token, the training input is the model's own prediction (its argmax,
as greedy search feeds it) of that token instead. ``train.scheduled_sampling.type`` names how p
grows with the optimizer update i, from ``start`` towards ``end`` (Bengio et al.'s epsilon, the
probability of the gold token, is 1 - p):

    none             p = 0: plain teacher forcing (the default)
    linear           p = start + (end - start) min(i / steps, 1)
    exponential      p = end - (end - start) k^i                     (0 < k < 1)
    inverse_sigmoid  p = start + (end - start) (1 - k / (k + exp(i / k)))   (k >= 1)

The coin for each token comes from torch's seeded random generator, which resume restores, so a
resumed run draws what the uninterrupted one would have. How the model mixes its predictions in
(the RNN decoder step by step, the Transformer in two passes) is the model's: see ``s2s.model``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from s2s.options import OptionError, PartOptions, PositiveFloat, PositiveInt, Range
from s2s.registry import SAMPLING

Probability = Annotated[float, Range(0, 1)]
Schedule = Callable[[int], float]  # optimizer update -> P(feed the model's own prediction)


@dataclass
class RangeOptions(PartOptions):
    start: Probability = 0.0  # P(the model's own token) at the first update
    end: Probability = 0.25  # the probability it grows towards (1: the model's own tokens only)


@dataclass
class LinearOptions(RangeOptions):
    steps: PositiveInt = 10000  # updates from start to end


@dataclass
class ExponentialOptions(RangeOptions):
    k: PositiveFloat = 0.9995  # the gap to end shrinks by k every update (below 1)

    def validate(self, root: Any) -> None:
        if self.k >= 1:
            raise OptionError("k", f"must be below 1 (the gap to end shrinks by k each update), got {self.k}")


@dataclass
class InverseSigmoidOptions(RangeOptions):
    k: PositiveFloat = 1000.0  # p is halfway at update k ln k (k = 1000: 6,908); at least 1

    def validate(self, root: Any) -> None:
        if self.k < 1:
            raise OptionError("k", f"must be at least 1, got {self.k}")


@SAMPLING.register("none")
def none(options: PartOptions) -> Schedule:
    """Teacher forcing only: the decoder always reads the gold previous token."""
    return lambda step: 0.0


@SAMPLING.register("linear", options=LinearOptions)
def linear(options: LinearOptions) -> Schedule:
    """From start to end in a straight line over `steps` updates, then end."""
    return lambda step: options.start + (options.end - options.start) * min(step / options.steps, 1.0)


@SAMPLING.register("exponential", options=ExponentialOptions)
def exponential(options: ExponentialOptions) -> Schedule:
    """From start towards end, the gap shrinking by a factor k each update."""
    return lambda step: options.end - (options.end - options.start) * options.k**step


@SAMPLING.register("inverse_sigmoid", options=InverseSigmoidOptions)
def inverse_sigmoid(options: InverseSigmoidOptions) -> Schedule:
    """From start towards end along an inverse sigmoid: slow, then fast, then slow (Bengio et al.)."""

    def probability(step: int) -> float:
        gold = options.k / (options.k + math.exp(min(step / options.k, 700.0)))  # exp overflows past ~709
        return options.start + (options.end - options.start) * (1.0 - gold)

    return probability
