"""Segments: the units an extractive summarizer picks, found in a source's token stream.

    spans = split_segments(tokens, SegmentOptions(unit="turns"))
    [(start, end, speaker), ...]        # tokens[start:end] is a segment's text

Two kinds of unit:

- ``sentences``: a token made only of ``sentence_ends`` characters (。！？；!?; by default) ends a
  sentence and belongs to it, as does a ``.`` before a token that starts with a non-ASCII
  character (CSL writes Chinese with half-width periods: ``问题 . 为了``); adding ``，,`` makes
  the units clauses;
- ``turns``: the ``turn_separator`` token (AutoMaster's ``|``) separates dialogue turns and
  belongs to neither. A turn that starts with one of ``speakers`` (``技师说：``, ``车主说：``,
  however the tokenizer cut it) has that speaker, a feature the model reads; the prefix is not
  part of the turn's text. Turns without a prefix (the question) have speaker 0.

Boundaries are found on tokens rather than on the raw text so that the same segments come out
wherever a source does (training, ``s2s predict``, ``Summarizer``, the server), from any reader.
Tokenizers drop whitespace, so a newline inside a field ends nothing here (the ``--baseline
oracle`` of raw rows does split sentences on newlines). A source with no boundary is one
segment; segments left without tokens (``||``, a bare prefix) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from s2s.options import PositiveInt


@dataclass
class SegmentOptions:
    """How a source is cut into segments (``model.segments``)."""

    unit: Literal["sentences", "turns"] = "sentences"  # what a segment is: a sentence, or a dialogue turn
    sentence_ends: str = "。！？；!?;"  # sentences: characters that end one (add ，, for clauses)
    turn_separator: str = "|"  # turns: the token between two turns (part of neither)
    speakers: list[str] = field(default_factory=lambda: ["技师说：", "车主说："])  # turns: speaker prefixes
    max_segments: PositiveInt = 64  # segments of a source the model reads; later ones are never picked
    max_tokens: PositiveInt = 80  # tokens of a segment the model reads (a picked segment is output whole)


class Segment(NamedTuple):
    start: int  # first token of the segment's text
    end: int  # one past its last token
    speaker: int  # 1 + index into SegmentOptions.speakers; 0: none


class ScoredSegment(NamedTuple):
    """A segment as a selecting model saw it: where, how likely it belongs in the summary, picked or not."""

    start: int
    end: int
    score: float  # the model's probability that the segment belongs in the summary
    picked: bool


def split_segments(tokens: Sequence[str], options: SegmentOptions) -> list[Segment]:
    """The segments of ``tokens`` (at least one where there is a token; at most ``max_segments``)."""
    if options.unit == "turns":
        found = _turns(tokens, options)
    else:
        found = _sentences(tokens, set(options.sentence_ends))
    if not found and tokens:  # e.g. only a speaker prefix: the tokens as they are
        found = [Segment(0, len(tokens), 0)]
    return found[: options.max_segments]


def _sentences(tokens: Sequence[str], ends: set[str]) -> list[Segment]:
    found, start = [], 0
    for i, token in enumerate(tokens):
        closes = all(c in ends for c in token) or (
            token == "." and i + 1 < len(tokens) and not tokens[i + 1][:1].isascii()
        )
        if closes:
            found.append(Segment(start, i + 1, 0))
            start = i + 1
    if start < len(tokens):
        found.append(Segment(start, len(tokens), 0))
    return found


def _turns(tokens: Sequence[str], options: SegmentOptions) -> list[Segment]:
    found, start = [], 0
    for i in range(len(tokens) + 1):
        if i == len(tokens) or tokens[i] == options.turn_separator:
            speaker, text_start = _speaker(tokens, start, i, options.speakers)
            if text_start < i:
                found.append(Segment(text_start, i, speaker))
            start = i + 1
    return found


def _speaker(tokens: Sequence[str], start: int, end: int, speakers: Sequence[str]) -> tuple[int, int]:
    """(speaker, first token after its prefix) of the turn ``tokens[start:end]``: a prefix matches
    when the turn's first tokens join into exactly it."""
    for number, prefix in enumerate(speakers, start=1):
        joined, i = "", start
        while i < end and len(joined) < len(prefix):
            joined += tokens[i]
            i += 1
        if joined == prefix:
            return number, i
    return 0, start


def pick_segments(
    scores: Sequence[float], lengths: Sequence[int], *, max_segments: int, min_score: float, budget: int
) -> list[tuple[int, int]]:
    """The segments of a summary: ``(index, tokens taken)`` in source order.

    By score, best first, a segment is taken when it fits what is left of ``budget`` tokens,
    until ``max_segments`` are taken or the next best scores below ``min_score`` (the best one is
    always a candidate). Where not even one fits, the best segment is cut to the budget (the
    documented fallback for a budget below the shortest segment).
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    taken: list[tuple[int, int]] = []
    used = 0
    for i in order:
        if len(taken) == max_segments or (taken and scores[i] < min_score):
            break
        if used + lengths[i] <= budget:
            taken.append((i, lengths[i]))
            used += lengths[i]
    if not taken and order:
        taken = [(order[0], min(lengths[order[0]], budget))]
    return sorted(taken)
