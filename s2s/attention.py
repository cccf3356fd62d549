"""Attention: score every source position against a query, mask padding, average the keys.

All attentions share one interface. ``precompute(keys)`` runs once per source (the part of the
score that depends on the keys alone); its result is passed back in at every step, so nothing
is kept on the module between calls:

    proj_keys = attention.precompute(keys)                      # once per batch
    context, weights = attention(query, keys, proj_keys, mask)  # every step

Queries come as (batch, n_queries, query_size): the step-by-step decoder passes one query,
the decoder's fast path all target positions at once. Scores:

- ``bahdanau`` (additive, Bahdanau et al. 2015): v^T tanh(W_q q + W_k k [+ w_c coverage])
- ``luong_concat`` (Luong et al. 2015): v^T tanh(W [q; k]), the same additive form
- ``luong_general``: q^T W k
- ``luong_dot``: q^T k (query and key sizes must match)

Coverage (See et al. 2017) adds w_c * coverage_i, the attention a source position has already
received, inside the additive score; it needs an additive attention and one query at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s.errors import ConfigError
from s2s.kernels import additive_scores
from s2s.options import NonNegativeInt, PartOptions
from s2s.registry import ATTENTIONS


class Attention(nn.Module):
    """Base class: subclasses define ``precompute`` and ``score``."""

    parallel: bool  # cheap to score many queries at once (lets the decoder use its fast path)

    def precompute(self, keys: Tensor) -> Tensor:
        """keys (batch, src_len, key_size) -> what ``score`` needs of them, reused every step."""
        raise NotImplementedError

    def score(self, query: Tensor, proj_keys: Tensor, coverage: Tensor | None) -> Tensor:
        """query (batch, n_queries, query_size) -> scores (batch, n_queries, src_len)."""
        raise NotImplementedError

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        proj_keys: Tensor,
        mask: Tensor,
        coverage: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """query (batch, n_queries, query_size); keys (batch, src_len, key_size);
        mask (batch, src_len), True at real tokens; coverage (batch, src_len) or None.

        Returns the context (batch, n_queries, key_size) and the weights
        (batch, n_queries, src_len), which are exactly 0 at padding.
        """
        scores = self.score(query, proj_keys, coverage)  # (batch, n_queries, src_len)
        scores = scores.masked_fill(~mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)  # (batch, n_queries, key_size)
        return context, weights


@dataclass
class AdditiveAttentionOptions(PartOptions):
    hidden_size: NonNegativeInt = 0  # the inner size of the score; 0: the decoder's hidden size


@ATTENTIONS.register("bahdanau", options=AdditiveAttentionOptions)
@ATTENTIONS.register("luong_concat", options=AdditiveAttentionOptions)
class AdditiveAttention(Attention):
    """v^T tanh(W_q q + W_k k [+ w_c coverage]); Luong's `concat` is this same score.

    Computed as 2 v^T sigmoid(2x): since tanh(x) = 2 sigmoid(2x) - 1, this differs from
    v^T tanh(x) by sum(v), the same for every source position, which the softmax ignores. The
    weights are exactly those of the tanh form, and sigmoid is several times faster than tanh
    on CPUs. ``precompute`` returns 2 W_k k, so the doubling costs nothing per step.
    """

    parallel = False  # scoring T queries at once needs a (batch, T, src_len, hidden) tensor

    def __init__(
        self, cfg: AdditiveAttentionOptions, *, query_size: int, key_size: int, coverage: bool = False
    ) -> None:
        super().__init__()
        hidden = cfg.hidden_size or query_size
        self.key_layer = nn.Linear(key_size, hidden, bias=False)
        self.query_layer = nn.Linear(query_size, hidden)
        self.coverage_layer = nn.Linear(1, hidden, bias=False) if coverage else None
        self.energy = nn.Linear(hidden, 1, bias=False)

    def precompute(self, keys: Tensor) -> Tensor:
        return 2 * self.key_layer(keys)  # (batch, src_len, hidden)

    def score(self, query: Tensor, proj_keys: Tensor, coverage: Tensor | None) -> Tensor:
        """2 v^T sigmoid(2 W_q q + 2 W_k k [+ 2 w_c coverage]), for every query and source position:
        (batch, n_queries, src_len). ``kernels.additive_scores`` makes the (batch, n_queries,
        src_len, hidden) features a block of rows at a time when decoding."""
        coverage_weight = 2 * self.coverage_layer.weight.view(-1) if self.coverage_layer is not None else None
        query2 = 2 * self.query_layer(query)  # (batch, n_queries, hidden)
        return 2 * additive_scores(query2, proj_keys, self.energy.weight, coverage, coverage_weight)


class MultiplicativeAttention(Attention):
    """q^T k after an optional projection of the keys; all queries in one batched matmul."""

    parallel = True

    def __init__(self, key_projection: nn.Module, coverage: bool) -> None:
        super().__init__()
        if coverage:
            raise ConfigError(
                "model.decoder.coverage needs an additive attention (model.attention.type: bahdanau or luong_concat)"
            )
        self.key_projection = key_projection

    def precompute(self, keys: Tensor) -> Tensor:
        return self.key_projection(keys)  # (batch, src_len, query_size)

    def score(self, query: Tensor, proj_keys: Tensor, coverage: Tensor | None) -> Tensor:
        return torch.bmm(query, proj_keys.transpose(1, 2))  # (batch, n_queries, src_len)


@ATTENTIONS.register("luong_general")
class GeneralAttention(MultiplicativeAttention):
    """q^T W k."""

    def __init__(self, cfg: PartOptions, *, query_size: int, key_size: int, coverage: bool = False) -> None:
        super().__init__(nn.Linear(key_size, query_size, bias=False), coverage)


@ATTENTIONS.register("luong_dot")
class DotAttention(MultiplicativeAttention):
    """q^T k: no parameters; query and key sizes must match."""

    def __init__(self, cfg: PartOptions, *, query_size: int, key_size: int, coverage: bool = False) -> None:
        if query_size != key_size:
            raise ConfigError(
                f"model.attention: luong_dot needs model.decoder.hidden_size == the encoder's "
                f"output size ({key_size}), got {query_size}; use luong_general"
            )
        super().__init__(nn.Identity(), coverage)
