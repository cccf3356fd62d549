"""Chinese ROUGE and decoding quality guards, computed on raw text.

Scoring never goes through a model vocabulary (where unknown words collapse to ``<unk>``
and would match each other): tokens are compared as strings. Two segmentation levels:

- ``word``: jieba words of the raw text (default mode, default dictionary);
- ``char``: every non-whitespace character (ASCII words are not grouped).

At both levels whitespace tokens are dropped, punctuation is kept and nothing is lowercased.
ROUGE-1/2 count clipped n-gram overlaps, ROUGE-L uses the longest common subsequence; P, R
and F1 (beta = 1) are computed per example, as ``rouge-score`` does, and a corpus score is
the average of the per-example scores. An empty prediction or reference scores 0.
"""
from __future__ import annotations

import functools
import logging
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


def lcs_length(a: Tokens, b: Tokens) -> int:
    """Length of the longest common subsequence of ``a`` and ``b``.

    Bit-parallel (Hyyrö 2004): the positions of the longer sequence are the bits of one
    Python int, so the loop runs once per token of the shorter one.
    """
    if len(a) > len(b):
        a, b = b, a
    matches: dict[str, int] = {}  # token -> bit mask of its positions in b
    for j, token in enumerate(b):
        matches[token] = matches.get(token, 0) | 1 << j
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        u = v & matches.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def example_rouge(prediction: Tokens, reference: Tokens) -> RougeScores:
    """ROUGE-1, ROUGE-2 and ROUGE-L of one segmented prediction against its reference."""
    scores = {}
    for n in (1, 2):
        pred, ref = _ngrams(prediction, n), _ngrams(reference, n)
        hits = sum((pred & ref).values())
        scores[f"rouge-{n}"] = _prf(hits, sum(pred.values()), sum(ref.values()))
    scores["rouge-l"] = _prf(lcs_length(prediction, reference), len(prediction), len(reference))
    return scores


def corpus_rouge(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> RougeScores:
    """The average over examples of the per-example P, R and F1 (zeros when there are none)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    totals = {name: {"p": 0.0, "r": 0.0, "f": 0.0} for name in ROUGE_NAMES}
    for prediction, reference in zip(predictions, references):
        for name, score in example_rouge(prediction, reference).items():
            for key, value in score.items():
                totals[name][key] += value
    count = max(len(predictions), 1)
    return {name: {k: v / count for k, v in score.items()} for name, score in totals.items()}


def rouge(
    predictions: Sequence[str], references: Sequence[str], level: str = "char"
) -> RougeScores:
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


def guards(
    predictions: Sequence[str], segmented: Mapping[str, Sequence[Tokens]]
) -> dict[str, Any]:
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


def score(
    predictions: Sequence[str], references: Sequence[str], levels: Sequence[str] = ("word", "char")
) -> dict[str, Any]:
    """Everything ``s2s evaluate`` reports: ``{"count", <level>: RougeScores..., "guards"}``.

    Each text is segmented once per level and shared by ROUGE and the guards.
    """
    result: dict[str, Any] = {"count": len(predictions)}
    segmented = {}
    for level in levels:
        segmented[level] = segment(predictions, level)
        result[level] = corpus_rouge(segmented[level], segment(references, level))
    result["guards"] = guards(predictions, segmented)
    return result


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
    _register(Metric(_name, False, lambda result, name=_name: result["scores"]["char"][name]["f"],
                     f"{_name.upper()} F1 of greedy dev decodes, on characters"))
_register(Metric("loss", True, lambda result: result["loss"], "dev loss per target token (teacher forcing)"))
_register(Metric("ppl", True, lambda result: result["ppl"], "dev perplexity (teacher forcing)"))
