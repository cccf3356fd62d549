"""Chinese ROUGE and decoding quality guards, computed on raw text.

Scoring never goes through a model vocabulary (where unknown words collapse to ``<unk>``
and would match each other): tokens are compared as strings. Two segmentation levels:

- ``word``: jieba words of the raw text (default mode, default dictionary);
- ``char``: every non-whitespace character (ASCII words are not grouped).

At both levels whitespace tokens are dropped, punctuation is kept and nothing is lowercased.
ROUGE-1/2 count clipped n-gram overlaps, ROUGE-L uses the longest common subsequence; P, R
and F1 (beta = 1) are computed per example, as ``rouge-score`` does, and a corpus score is
the average of the per-example scores. An empty prediction or reference scores 0.

Minimum Bayes risk selection (:func:`mbr_select`) picks, among candidate outputs of one input,
the one with the highest expected ROUGE-L F1 against the other candidates.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from s2s.errors import ConfigError
from s2s.registry import METRICS

Tokens = Sequence[str]
Score = dict[str, float]  # {"p": precision, "r": recall, "f": F1}, fractions in [0, 1]
RougeScores = dict[str, Score]  # {"rouge-1": Score, "rouge-2": Score, "rouge-l": Score}

ROUGE_NAMES = ("rouge-1", "rouge-2", "rouge-l")
UNK = "<unk>"


@functools.cache
def _jieba() -> Any:
    """A private jieba tokenizer with the default dictionary, loaded once and silenced.

    Private so that user dictionaries added to jieba's global tokenizer elsewhere never
    change how a score is computed.
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def words(text: str) -> list[str]:
    """Jieba words of ``text`` (default mode), whitespace tokens dropped."""
    return [w for w in _jieba().lcut(text) if w.strip()]


def chars(text: str) -> str:
    """Every non-whitespace character of ``text``, as one string (a sequence of characters)."""
    return "".join(text.split())


SEGMENTERS: dict[str, Callable[[str], Tokens]] = {"word": words, "char": chars}


def segment(texts: Sequence[str], level: str) -> list[Tokens]:
    """Token sequences of ``texts`` at ``level`` (``word`` or ``char``)."""
    if level not in SEGMENTERS:
        raise ConfigError(f"unknown ROUGE level {level!r} (choices: {', '.join(SEGMENTERS)})")
    split = SEGMENTERS[level]
    return [split(text) for text in texts]


def _ngrams(tokens: Tokens, n: int) -> Counter:
    return Counter(zip(*(tokens[i:] for i in range(n))))


def _prf(hits: int, n_pred: int, n_ref: int) -> Score:
    p = hits / n_pred if n_pred else 0.0
    r = hits / n_ref if n_ref else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"p": p, "r": r, "f": f}


def _position_masks(tokens: Tokens) -> dict[str, int]:
    """Token -> bit mask of its positions in ``tokens`` (bit j set: ``tokens[j]`` is it)."""
    masks: dict[str, int] = {}
    for j, token in enumerate(tokens):
        masks[token] = masks.get(token, 0) | 1 << j
    return masks


def _lcs_with_masks(a: Tokens, masks: Mapping[str, int], length: int) -> int:
    """LCS length of ``a`` and the ``length`` tokens whose :func:`_position_masks` are ``masks``."""
    full = (1 << length) - 1
    v = full
    for token in a:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return length - v.bit_count()


def lcs_length(a: Tokens, b: Tokens) -> int:
    """Length of the longest common subsequence of ``a`` and ``b``.

    Bit-parallel (Hyyrö 2004): the positions of the longer sequence are the bits of one
    Python int, so the loop runs once per token of the shorter one.
    """
    if len(a) > len(b):
        a, b = b, a
    return _lcs_with_masks(a, _position_masks(b), len(b))


def rouge_l_scorer(reference: Tokens) -> Callable[[Tokens], float]:
    """ROUGE-L F1 against one segmented reference, for many candidates (its position masks are
    built once): ``score = rouge_l_scorer(ref); score(candidate)``. Oracles call it thousands of times."""
    masks, length = _position_masks(reference), len(reference)

    def f1(candidate: Tokens) -> float:
        return _prf(_lcs_with_masks(candidate, masks, length), len(candidate), length)["f"]

    return f1


def example_rouge(prediction: Tokens, reference: Tokens) -> RougeScores:
    """ROUGE-1, ROUGE-2 and ROUGE-L of one segmented prediction against its reference."""
    scores = {}
    for n in (1, 2):
        pred, ref = _ngrams(prediction, n), _ngrams(reference, n)
        hits = sum((pred & ref).values())
        scores[f"rouge-{n}"] = _prf(hits, sum(pred.values()), sum(ref.values()))
    scores["rouge-l"] = _prf(lcs_length(prediction, reference), len(prediction), len(reference))
    return scores


def example_rouges(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> list[RougeScores]:
    """:func:`example_rouge` of each segmented prediction against its reference."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    return [example_rouge(prediction, reference) for prediction, reference in zip(predictions, references)]


def mean_rouge(examples: Sequence[RougeScores]) -> RougeScores:
    """The average over examples of the per-example P, R and F1 (zeros when there are none)."""
    totals = {name: {"p": 0.0, "r": 0.0, "f": 0.0} for name in ROUGE_NAMES}
    for scores in examples:
        for name, score in scores.items():
            for key, value in score.items():
                totals[name][key] += value
    count = max(len(examples), 1)
    return {name: {k: v / count for k, v in score.items()} for name, score in totals.items()}


def corpus_rouge(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> RougeScores:
    """:func:`mean_rouge` of segmented predictions against their references."""
    return mean_rouge(example_rouges(predictions, references))


def rouge(predictions: Sequence[str], references: Sequence[str], level: str = "char") -> RougeScores:
    """ROUGE-1/2/L of raw-text ``predictions`` against ``references`` at ``level``."""
    return corpus_rouge(segment(predictions, level), segment(references, level))


def repeated_ngram_rate(outputs: Sequence[Tokens], n: int = 3) -> float:
    """Pooled share of n-grams that repeat an earlier n-gram of the same output.

    Sum over outputs of (n-grams - distinct n-grams), divided by the sum of n-grams;
    outputs shorter than ``n`` tokens add nothing; 0 when no output has an n-gram.
    """
    total = repeated = 0
    for tokens in outputs:
        grams = _ngrams(tokens, n)
        count = sum(grams.values())
        total += count
        repeated += count - len(grams)
    return repeated / total if total else 0.0


def guards(predictions: Sequence[str], segmented: Mapping[str, Sequence[Tokens]]) -> dict[str, Any]:
    """Counts of the classic decoding failures in raw-text ``predictions``.

    ``empty``: outputs with no non-whitespace character; ``unk_outputs``: outputs containing
    the literal ``<unk>``; ``unk_tokens``: its occurrences in all outputs;
    ``repeated_trigrams``: per level in ``segmented`` (level -> the segmented predictions),
    the :func:`repeated_ngram_rate` with n = 3.
    """
    return {
        "empty": sum(1 for text in predictions if not text.strip()),
        "unk_outputs": sum(1 for text in predictions if UNK in text),
        "unk_tokens": sum(text.count(UNK) for text in predictions),
        "repeated_trigrams": {lvl: repeated_ngram_rate(outs) for lvl, outs in segmented.items()},
    }


def segment_levels(texts: Sequence[str], levels: Sequence[str]) -> dict[str, list[Tokens]]:
    """``{level: segment(texts, level)}`` for each of ``levels``."""
    return {level: segment(texts, level) for level in levels}


def score_examples(
    predictions: Sequence[str], references: Mapping[str, Sequence[Tokens]]
) -> tuple[dict[str, Any], dict[str, list[RougeScores]]]:
    """:func:`score` against references already segmented (``{level: segmented references}``).

    Also returns, per level, the per-example scores the averages come from (for resampling).
    Each prediction is segmented once per level and shared by ROUGE and the guards.
    """
    segmented = segment_levels(predictions, list(references))
    examples = {level: example_rouges(segmented[level], refs) for level, refs in references.items()}
    result: dict[str, Any] = {"count": len(predictions)}
    result.update((level, mean_rouge(scores)) for level, scores in examples.items())
    result["guards"] = guards(predictions, segmented)
    return result, examples


def score(
    predictions: Sequence[str], references: Sequence[str], levels: Sequence[str] = ("word", "char")
) -> dict[str, Any]:
    """Everything ``s2s evaluate`` reports: ``{"count", <level>: RougeScores..., "guards"}``.

    Each text is segmented once per level and shared by ROUGE and the guards.
    """
    return score_examples(predictions, segment_levels(references, levels))[0]


def mbr_utilities(
    candidates: Sequence[str], level: str = "char", weights: Sequence[float] | None = None
) -> list[float]:
    """Expected ROUGE-L F1 of each candidate against the other candidates, at ``level``.

    The other candidates stand in for the unknown reference: the utility of candidate i is
    ``sum(w[j] * F1(i, j) for j != i) / sum(w[j] for j != i)``, with uniform weights unless
    ``weights`` (non-negative, e.g. model probabilities) are given. "Other" is by position, so
    a duplicate of a candidate counts as agreeing with it fully. A candidate whose others weigh
    nothing (a single candidate, say) has utility 0. Each candidate is segmented once, and each
    pair scored once: 32 candidates of 60 characters take a few milliseconds.

    Leaving a candidate's own weight out means that with two candidates the weights change
    nothing (F1 is symmetric): both utilities are F1(0, 1).
    """
    if not candidates:
        raise ValueError("MBR needs at least one candidate")
    if weights is None:
        weights = [1.0] * len(candidates)
    elif len(weights) != len(candidates):
        raise ValueError(f"{len(weights)} weights for {len(candidates)} candidates")
    elif not all(0 <= w < math.inf for w in weights):
        raise ValueError(f"weights must be finite and non-negative, got {list(weights)}")
    tokens = segment(candidates, level)
    masks = [_position_masks(t) for t in tokens]
    gains: list[list[float]] = [[] for _ in candidates]  # w[j] * F1(i, j), per candidate i
    for i, j in itertools.combinations(range(len(tokens)), 2):
        short, longer = (i, j) if len(tokens[i]) <= len(tokens[j]) else (j, i)
        lcs = _lcs_with_masks(tokens[short], masks[longer], len(tokens[longer]))
        f1 = _prf(lcs, len(tokens[i]), len(tokens[j]))["f"]
        gains[i].append(weights[j] * f1)
        gains[j].append(weights[i] * f1)
    utilities = []
    for i, gain in enumerate(gains):  # fsum: equal terms give equal utilities, whatever the order
        others = math.fsum(w for j, w in enumerate(weights) if j != i)
        utilities.append(math.fsum(gain) / others if others > 0 else 0.0)
    return utilities


def mbr_rerank(
    candidates: Sequence[str], level: str = "char", weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """``(index, expected utility)`` of every candidate, best first (:func:`mbr_utilities`).

    Sorting is stable: of candidates with equal utility, the earlier comes first.
    """
    utilities = mbr_utilities(candidates, level, weights)
    return sorted(enumerate(utilities), key=lambda item: -item[1])


def mbr_select(candidates: Sequence[str], level: str = "char", weights: Sequence[float] | None = None) -> int:
    """Index of the minimum Bayes risk candidate: the highest :func:`mbr_utilities` (earliest on ties).

    ``candidates`` are the outputs for one input (an n-best list or samples), raw text;
    one candidate is returned as it is (index 0).
    """
    return mbr_rerank(candidates, level, weights)[0][0]


@dataclass(frozen=True)
class Metric:
    """A dev-set score that picks the best checkpoint (``train.keep_best_by``) and drives ``plateau``."""

    name: str
    lower_is_better: bool
    read: Callable[[Mapping[str, Any]], float]  # the score from a validation result (``loss``, ``scores``)
    description: str

    def better(self, score: float, best: float | None) -> bool:
        """Whether ``score`` beats ``best`` (anything beats None)."""
        if best is None:
            return True
        return score < best if self.lower_is_better else score > best

    def format(self, score: float) -> str:
        """``rouge-l`` 0.2871 -> "ROUGE-L 28.71 (char)"; ``loss`` 3.2 -> "loss 3.200"."""
        return f"{self.name} {score:.3f}" if self.lower_is_better else f"{self.name.upper()} {100 * score:.2f} (char)"


def _register(metric: Metric) -> None:
    METRICS.register(metric.name)(metric)


for _name in ROUGE_NAMES:
    _register(
        Metric(
            _name,
            False,
            lambda result, name=_name: result["scores"]["char"][name]["f"],
            f"{_name.upper()} F1 of greedy dev decodes, on characters",
        )
    )
_register(Metric("loss", True, lambda result: result["loss"], "dev loss per target token (teacher forcing)"))
_register(Metric("ppl", True, lambda result: result["ppl"], "dev perplexity (teacher forcing)"))
