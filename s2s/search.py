"""Search: greedy, sampling and batched beam search over a model's ``decode_step``.

Beam search runs every sentence x beam of a batch as one batch of rows (row = sentence * K +
beam). Each step, per sentence, the 2K best (beam, token) continuations are ranked: those
ending in </s> among the first K, or stopped by the length limit, enter the sentence's
finished buffer, and the K best others stay alive. All bookkeeping is tensor operations on the
model's device; the loop reads one small vector back per step, to let finished sentences leave
the batch (every step on the CPU, where the read is free, every few steps on a GPU).

A sentence is done when its n_best finished hypotheses are all at least as good as the best
any alive hypothesis could still become. Under a length penalty that bound is the alive score
divided by the penalty at the maximum length (scores only fall, and the penalty grows), so the
search does not stop just because the best hypothesis ended.

Scores: sum of token log-probabilities / lp(length) - beta * cp(coverage), where
lp = ((5 + length) / 6) ** alpha (Wu et al. 2016) and cp = sum_i max(coverage_i - 1, 0), the
attention a source word received beyond 1 (OpenNMT-py's `summary` penalty).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from torch import Tensor
from tqdm import tqdm

from s2s.batching import Batch, EncodedExample, example_lengths, plan_batches
from s2s.config import PredictConfig
from s2s.errors import ConfigError
from s2s.model import Seq2SeqModel
from s2s.options import NonNegativeInt, OptionError, PositiveFloat, PositiveInt, Range
from s2s.registry import SEARCHERS
from s2s.segments import ScoredSegment
from s2s.shortlist import shortlisted_search
from s2s.vocabulary import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Hypothesis:
    tokens: list[int]  # extended target ids, without </s>
    score: float  # what hypotheses are ranked by (penalties included)
    log_prob: float  # sum of the tokens' log-probabilities (</s> included when it ended one)
    attention: Tensor | None = None  # (len(tokens), src_len), when asked for
    p_gen: Tensor | None = None  # (len(tokens),) pointer-generator: P(generate)
    segments: list[ScoredSegment] | None = None  # a selecting family: every source segment, scored


def search(
    model: Seq2SeqModel, batch: Batch, cfg: PredictConfig, return_attention: bool = False, coverage: bool = False
) -> list[list[Hypothesis]]:
    """The n-best hypotheses of every sentence of ``batch``, best first, in batch order.
    ``coverage``: decode with the model's coverage on (as it was at the end of training)."""
    searcher = SEARCHERS.get(cfg.search)
    with torch.no_grad():
        if cfg.shortlist:
            return shortlisted_search(searcher, model, batch, cfg, return_attention=return_attention, coverage=coverage)
        return searcher(model, batch, cfg, return_attention=return_attention, coverage=coverage)


def search_examples(
    model: Seq2SeqModel,
    examples: Sequence[EncodedExample],
    cfg: PredictConfig,
    *,
    device: torch.device,
    return_attention: bool = False,
    coverage: bool = False,
    progress: bool = False,
) -> list[list[Hypothesis]]:
    """``search`` over encoded examples, batched by length (``cfg.batch_size`` sentences), the
    results in the examples' order: the one decode loop of dev-set evaluation and prediction."""
    src_lengths, tgt_lengths = example_lengths(examples)
    results: list[list[Hypothesis]] = [[] for _ in examples]
    plan = plan_batches(src_lengths, tgt_lengths, batch_size=cfg.batch_size)
    for indices in tqdm(plan, desc="decoding", unit="batch", disable=not progress, dynamic_ncols=True, leave=False):
        batch = model.collate(examples, indices).to(device)
        for index, hypotheses in zip(batch.indices, search(model, batch, cfg, return_attention, coverage)):
            results[index] = hypotheses
    return results


@dataclass
class SelectOptions(PredictConfig):
    """``predict.*`` of the ``select`` searcher: ``max_length`` is the summary's budget in tokens."""

    max_segments: PositiveInt = 1  # segments in a summary at most
    min_score: Annotated[float, Range(0, 1)] = 0.0  # a segment beyond the best needs at least this probability


@SEARCHERS.register("select", options=SelectOptions)
def select_segments(
    model: Seq2SeqModel, batch: Batch, cfg: SelectOptions, return_attention: bool = False, coverage: bool = False
) -> list[list[Hypothesis]]:
    """The best source segments within max_length tokens, in source order (model.type: extractive)."""
    if model.writes_tokens:
        raise ConfigError(
            "predict.search: select picks source segments, for a model that scores them (model.type: extractive); "
            "this model writes its summaries token by token: use greedy or beam"
        )
    return model.summarize(batch, cfg, return_attention=return_attention)


def max_lengths(batch: Batch, cfg: PredictConfig) -> Tensor:
    """(batch,) output length limit of each sentence: max_length, and ratio x its source."""
    limits = torch.full_like(batch.src_lengths, cfg.max_length)
    if cfg.max_length_ratio > 0:
        by_source = torch.ceil(batch.src_lengths * cfg.max_length_ratio).long()
        limits = torch.minimum(limits, by_source.clamp(min=max(cfg.min_length, 1)))
    return limits


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    return ((5.0 + lengths.float()) / 6.0) ** alpha


def coverage_penalty(coverage: Tensor) -> Tensor:
    """(..., src_len) attention received so far -> (...,) attention beyond 1 per source word."""
    return (coverage - 1.0).clamp(min=0.0).sum(-1)


def block_repeated_ngrams(log_probs: Tensor, history: Tensor, n: int) -> Tensor:
    """In place: forbid tokens that would repeat an n-gram of ``history`` (rows, t) in its row."""
    if n <= 0 or history.size(1) < n:
        return log_probs
    ngrams = history.unfold(1, n, 1)  # (rows, t - n + 1, n)
    prefix = history[:, history.size(1) - n + 1 :]  # (rows, n - 1): the n-gram being continued
    repeats = (ngrams[:, :, :-1] == prefix.unsqueeze(1)).all(-1)  # (rows, t - n + 1)
    vocab = log_probs.size(-1)
    banned = ngrams[:, :, -1].masked_fill(~repeats, vocab)  # non-repeats point at a spare column
    mask = torch.zeros(log_probs.size(0), vocab + 1, dtype=torch.bool, device=log_probs.device)
    mask.scatter_(1, banned, True)
    return log_probs.masked_fill_(mask[:, :vocab], float("-inf"))


def _constrain(log_probs: Tensor, history: Tensor, step: int, cfg: PredictConfig) -> Tensor:
    """In place: never <pad> or <s>; no </s> before min_length; no repeated n-grams."""
    log_probs[:, [PAD_ID, BOS_ID]] = float("-inf")
    if step < cfg.min_length:
        log_probs[:, EOS_ID] = float("-inf")
    return block_repeated_ngrams(log_probs, history, cfg.no_repeat_ngram_size)


@SEARCHERS.register("greedy", options=PredictConfig)
def greedy_search(
    model: Seq2SeqModel, batch: Batch, cfg: PredictConfig, return_attention: bool = False, coverage: bool = False
) -> list[list[Hypothesis]]:
    """The most probable token at every step, for every sentence at once."""
    return _token_by_token(model, batch, cfg, lambda log_probs: log_probs.argmax(dim=-1), 1, return_attention, coverage)


@dataclass
class SampleOptions(PredictConfig):
    """Sampling (``predict.search: sample``): ``n_best`` outputs per sentence, each token drawn from
    the model's distribution (after the constraints: min_length, no_repeat_ngram_size) at a temperature."""

    temperature: PositiveFloat = 1.0  # the distribution's log-probabilities divided by it: < 1 sharper, > 1 flatter
    seed: NonNegativeInt = 0  # the same seed, inputs and batch_size give the same samples

    def validate(self, root: Any) -> None:  # n_best is the number of samples: no beam bounds it
        if self.min_length > self.max_length:
            raise OptionError("min_length", f"{self.min_length} is more than max_length {self.max_length}")


@SEARCHERS.register("sample", options=SampleOptions)
def sample_search(
    model: Seq2SeqModel, batch: Batch, cfg: SampleOptions, return_attention: bool = False, coverage: bool = False
) -> list[list[Hypothesis]]:
    """``n_best`` samples of every sentence (no beam bounds it), each token drawn from the model's
    distribution at ``temperature``; all sentences x samples in one batch, most probable first."""
    generator = torch.Generator(batch.src.device)
    generator.manual_seed(hash((cfg.seed, *batch.indices)) % 2**63)  # by the batch's sentences: repeatable

    def draw(log_probs: Tensor) -> Tensor:  # (rows, vocab) -> (rows,)
        probs = torch.softmax(log_probs / cfg.temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    return _token_by_token(model, batch, cfg, draw, cfg.n_best, return_attention, coverage)


def _token_by_token(
    model: Seq2SeqModel,
    batch: Batch,
    cfg: PredictConfig,
    pick: Callable[[Tensor], Tensor],
    copies: int,
    return_attention: bool,
    coverage: bool,
) -> list[list[Hypothesis]]:
    """``copies`` outputs of every sentence, one row each, each token chosen by ``pick``: (rows, vocab)
    constrained log-probabilities -> (rows,) tokens. Per sentence, the most probable first."""
    memory, state = model.encode(batch, coverage=coverage)
    limits = max_lengths(batch, cfg)
    device = batch.src.device
    if copies > 1:  # row = sentence * copies + copy
        to_rows = torch.arange(batch.size, device=device).repeat_interleave(copies)
        memory, state, limits = memory.index_select(to_rows), state.index_select(to_rows), limits[to_rows]
    rows = batch.size * copies
    tokens = torch.full((rows,), BOS_ID, dtype=torch.long, device=device)
    history = torch.empty(rows, 0, dtype=torch.long, device=device)  # (rows, t)
    log_prob = torch.zeros(rows, device=device)
    lengths = limits.to(device).clone()  # shortened where </s> comes first
    alive = torch.ones(rows, dtype=torch.bool, device=device)
    attention, p_gen = [], []
    for t in range(int(limits.max())):
        step = model.decode_step(tokens, memory, state)
        state = step.state
        log_probs = _constrain(step.log_probs, history, t, cfg)  # (rows, vocab)
        tokens = pick(log_probs)
        chosen = log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)  # (rows,)
        log_prob += torch.where(alive, chosen, 0.0)
        ended = alive & (tokens == EOS_ID)
        lengths = torch.where(ended, torch.full_like(lengths, t), lengths)
        alive &= ~ended
        tokens = tokens.masked_fill(~alive, PAD_ID)
        history = torch.cat([history, tokens.unsqueeze(1)], dim=1)
        attention.append(step.attention)
        if step.p_gen is not None:
            p_gen.append(step.p_gen)
        if _should_check(t, device) and not bool(alive.any()):
            break
    attention_all = torch.stack(attention, 1) if return_attention else None  # (rows, t, src_len)
    p_gen_all = torch.stack(p_gen, 1) if p_gen and return_attention else None
    outputs = [
        Hypothesis(
            tokens=history[i, : lengths[i]].tolist(),
            score=float(log_prob[i]),
            log_prob=float(log_prob[i]),
            attention=attention_all[i, : lengths[i]].cpu() if attention_all is not None else None,
            p_gen=p_gen_all[i, : lengths[i]].cpu() if p_gen_all is not None else None,
        )
        for i in range(rows)
    ]
    return [sorted(outputs[i : i + copies], key=lambda h: -h.score) for i in range(0, rows, copies)]


def _should_check(step: int, device: torch.device) -> bool:
    """Whether to read the finished flags back this step: always on the CPU, where it is free."""
    return device.type == "cpu" or step % 4 == 3


@SEARCHERS.register("beam", options=PredictConfig)
def beam_search(
    model: Seq2SeqModel, batch: Batch, cfg: PredictConfig, return_attention: bool = False, coverage: bool = False
) -> list[list[Hypothesis]]:
    """Batched beam search: every sentence x beam in one batch, with length and coverage penalties."""
    K, n_best, device = cfg.beam_size, cfg.n_best, batch.src.device
    memory, state = model.encode(batch, coverage=coverage)
    to_rows = torch.arange(batch.size, device=device).repeat_interleave(K)
    memory, state = memory.index_select(to_rows), state.index_select(to_rows)
    limits = max_lengths(batch, cfg).to(device)  # (batch,)
    max_steps = int(limits.max())
    finished = _Finished(
        batch.size,
        n_best,
        max_steps,
        memory.mask.size(1),
        device,
        return_attention,
        with_p_gen=return_attention and model.copies,
    )

    sentence = torch.arange(batch.size, device=device)  # original index of each alive sentence
    scores = torch.full((batch.size, K), float("-inf"), device=device)  # (sentences, K) log-probs
    scores[:, 0] = 0.0  # at first only one hypothesis per sentence
    tokens = torch.full((batch.size * K,), BOS_ID, dtype=torch.long, device=device)
    trace = _Trace(batch.size * K, memory.mask.size(1), device, return_attention)
    coverage = memory.mask.new_zeros(memory.mask.shape, dtype=torch.float) if cfg.beta > 0 else None

    for t in range(max_steps):
        step = model.decode_step(tokens, memory, state)
        log_probs = _constrain(step.log_probs, trace.tokens, t, cfg)  # (rows, vocab)
        n, vocab = scores.size(0), log_probs.size(-1)
        candidates = (scores.view(-1, 1) + log_probs).view(n, K * vocab)
        top_scores, top_index = candidates.topk(2 * K, dim=-1)  # (n, 2K)
        token = top_index % vocab
        parent_row = torch.div(top_index, vocab, rounding_mode="floor") + K * torch.arange(n, device=device).unsqueeze(
            1
        )
        history = trace.extend(parent_row, token, step)  # the 2K candidates' histories
        if coverage is not None:
            coverage = coverage + step.attention  # (rows, src_len), this step included

        # finished: </s> among the K best, or any of the K best when the length limit is reached
        is_eos = token == EOS_ID
        at_limit = (t + 1 >= limits[sentence]).unsqueeze(1)  # (n, 1)
        top_k = torch.arange(2 * K, device=device) < K
        ending = top_k & (is_eos | at_limit)
        length = t + 1 - is_eos.long()  # </s> is not part of the output
        final = top_scores / length_penalty(length, cfg.alpha)
        if coverage is not None:
            final = final - cfg.beta * coverage_penalty(coverage[parent_row])
        finished.add(sentence, final.masked_fill(~ending, float("-inf")), top_scores, length, history)

        # alive: the K best that did not end
        scores, keep = top_scores.masked_fill(is_eos, float("-inf")).topk(K, dim=-1)  # (n, K)
        rows = parent_row.gather(1, keep).view(-1)  # (n * K,) parent row of each new hypothesis
        tokens = token.gather(1, keep).view(-1)
        trace.select(history, keep)
        state = step.state.index_select(rows)
        if coverage is not None:
            coverage = coverage.index_select(0, rows)

        best_possible = scores[:, 0] / length_penalty(limits[sentence], cfg.alpha) if cfg.alpha > 0 else scores[:, 0]
        done = at_limit.squeeze(1) | (finished.worst(sentence) >= best_possible)  # (n,)
        if t + 1 == max_steps or not _should_check(t, device):
            continue
        still = (~done).nonzero().squeeze(1)  # the loop's one read back to the host
        if still.numel() == 0:
            break
        if still.numel() < n:  # finished sentences leave the batch
            keep_rows = (still.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1)
            sentence, scores, tokens = sentence[still], scores[still], tokens[keep_rows]
            memory, state = memory.index_select(keep_rows), state.index_select(keep_rows)
            trace.keep_rows(keep_rows)
            if coverage is not None:
                coverage = coverage.index_select(0, keep_rows)
    return finished.hypotheses()


class _Trace:
    """What alive hypotheses have produced so far: tokens, and attention / p_gen if asked."""

    def __init__(self, rows: int, src_len: int, device: torch.device, with_attention: bool) -> None:
        self.tokens = torch.empty(rows, 0, dtype=torch.long, device=device)  # (rows, t)
        self.attention = torch.empty(rows, 0, src_len, device=device) if with_attention else None
        self.p_gen = torch.empty(rows, 0, device=device) if with_attention else None

    def extend(self, parent_row: Tensor, token: Tensor, step) -> dict[str, Tensor]:
        """Histories of the candidates: parent_row, token (n, 2K) -> each (n, 2K, t + 1, ...)."""
        history = {"tokens": torch.cat([self.tokens[parent_row], token.unsqueeze(-1)], dim=-1)}
        if self.attention is not None:
            attention = torch.cat([self.attention, step.attention.unsqueeze(1)], dim=1)
            history["attention"] = attention[parent_row]
            if step.p_gen is not None:
                history["p_gen"] = torch.cat([self.p_gen, step.p_gen.unsqueeze(1)], dim=1)[parent_row]
        return history

    def select(self, history: dict[str, Tensor], keep: Tensor) -> None:
        """Keep the chosen candidates (keep: (n, K) indices into 2K) as the alive rows."""
        for name, values in history.items():
            index = keep.view(*keep.shape, *([1] * (values.dim() - 2))).expand(-1, -1, *values.shape[2:])
            setattr(self, name, values.gather(1, index).flatten(0, 1))

    def keep_rows(self, rows: Tensor) -> None:
        for name in ("tokens", "attention", "p_gen"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).index_select(0, rows))


class _Finished:
    """Per sentence, the n_best finished hypotheses so far, best first, kept on the device."""

    def __init__(
        self,
        sentences: int,
        n_best: int,
        max_steps: int,
        src_len: int,
        device: torch.device,
        with_attention: bool,
        with_p_gen: bool,
    ) -> None:
        self.n_best, self.max_steps = n_best, max_steps
        self.score = torch.full((sentences, n_best), float("-inf"), device=device)
        self.log_prob = torch.zeros(sentences, n_best, device=device)
        self.length = torch.zeros(sentences, n_best, dtype=torch.long, device=device)
        self.history = {"tokens": torch.zeros(sentences, n_best, max_steps, dtype=torch.long, device=device)}
        if with_attention:
            self.history["attention"] = torch.zeros(sentences, n_best, max_steps, src_len, device=device)
        if with_p_gen:  # only a copying model has a p_gen: the buffer would stay zeros, read as "all copied"
            self.history["p_gen"] = torch.zeros(sentences, n_best, max_steps, device=device)

    def worst(self, sentence: Tensor) -> Tensor:
        """(n,) score of the n-th best finished hypothesis (-inf until there are n_best)."""
        return self.score[sentence, -1]

    def add(
        self, sentence: Tensor, score: Tensor, log_prob: Tensor, length: Tensor, history: dict[str, Tensor]
    ) -> None:
        """Merge candidates (n, 2K) into the buffers of ``sentence``; -inf scores are not added."""
        merged = torch.cat([self.score[sentence], score], dim=1)  # (n, n_best + 2K)
        self.score[sentence], pick = merged.topk(self.n_best, dim=1)
        self.log_prob[sentence] = torch.cat([self.log_prob[sentence], log_prob], 1).gather(1, pick)
        self.length[sentence] = torch.cat([self.length[sentence], length], 1).gather(1, pick)
        for name, values in history.items():
            if name not in self.history:
                continue
            padding = [0, 0] * (values.dim() - 3) + [0, self.max_steps - values.size(2)]
            candidates = torch.nn.functional.pad(values, padding)  # (n, 2K, max_steps, ...)
            pool = torch.cat([self.history[name][sentence], candidates], dim=1)
            index = pick.view(*pick.shape, *([1] * (pool.dim() - 2))).expand(-1, -1, *pool.shape[2:])
            self.history[name][sentence] = pool.gather(1, index)

    def hypotheses(self) -> list[list[Hypothesis]]:
        """Copy the buffers to the host once, as Hypothesis lists in batch order."""
        score, log_prob, length = self.score.tolist(), self.log_prob.tolist(), self.length.tolist()
        tokens = self.history["tokens"].tolist()
        attention = self.history.get("attention")
        p_gen = self.history.get("p_gen")
        out = []
        for i in range(len(score)):
            out.append(
                [
                    Hypothesis(
                        tokens=tokens[i][j][: length[i][j]],
                        score=score[i][j],
                        log_prob=log_prob[i][j],
                        attention=attention[i, j, : length[i][j]].cpu() if attention is not None else None,
                        p_gen=p_gen[i, j, : length[i][j]].cpu() if p_gen is not None else None,
                    )
                    for j in range(self.n_best)
                    if math.isfinite(score[i][j])
                ]
            )
        return out
