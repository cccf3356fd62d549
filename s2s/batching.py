"""Batches: padded, batch-first tensors plus bool masks (True = real token).

    encoded = encode_corpus(corpus, src_vocab, tgt_vocab)
    src_lengths, tgt_lengths = example_lengths(encoded)
    for indices in plan_batches(src_lengths, tgt_lengths, batch_size=32, batch_tokens=0,
                                shuffle=True, seed=42, epoch=epoch):
        batch = collate(encoded, indices)

A plan is a list of batches of dataset positions: a pure function of the lengths, the batch
settings and (with ``shuffle``) of ``(seed, epoch)``, so a resumed run re-plans its epoch and
skips the batches it has done.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from s2s.vocabulary import BOS_ID, EOS_ID, PAD_ID, UNK, Vocabulary

if TYPE_CHECKING:
    from s2s.corpus import TokenizedCorpus

BUCKET_BATCHES = 20  # with shuffle: batches' worth of examples sorted together by length


@dataclass
class Batch:
    """One batch of encoded examples, padded with id 0 (``<pad>``).

    ``*_ext`` tensors use the source-extended target vocabulary of the pointer-generator:
    a source word outside the target vocabulary gets id ``len(tgt_vocab) + k``, where k is
    its position in ``oovs[i]`` (one id per distinct word, per example).
    """

    src: Tensor  # (batch, src_len) source-vocabulary ids
    src_lengths: Tensor  # (batch,) int64, on the CPU (pack_padded_sequence wants it there)
    src_mask: Tensor  # (batch, src_len) bool
    src_ext: Tensor  # (batch, src_len) source tokens as extended target-vocabulary ids
    oovs: list[list[str]]  # per example: the source words behind extended ids V, V+1, ...
    indices: list[int]  # position of each example in its dataset (to restore input order)
    tgt_in: Tensor | None = None  # (batch, tgt_len) <s> y1 .. yn   (OOV -> <unk>)
    tgt_out: Tensor | None = None  # (batch, tgt_len) y1 .. yn </s> (OOV -> <unk>)
    tgt_out_ext: Tensor | None = None  # (batch, tgt_len) tgt_out in extended ids
    tgt_mask: Tensor | None = None  # (batch, tgt_len) bool

    @property
    def size(self) -> int:
        return self.src.size(0)

    @property
    def max_oovs(self) -> int:
        """Extended ids needed beyond the target vocabulary in this batch."""
        return max((len(o) for o in self.oovs), default=0)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor but ``src_lengths`` on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking), keep=("src_lengths",))

    def pin_memory(self) -> Batch:
        """A copy with every tensor in pinned memory (for ``non_blocking`` copies to a GPU)."""
        return self._map(Tensor.pin_memory)

    def _map(self, fn: Callable[[Tensor], Tensor], keep: tuple[str, ...] = ()) -> Batch:
        """A copy with ``fn`` applied to every tensor field not named in ``keep``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return type(self)(  # a family's subclass keeps its fields
            **{
                name: fn(value) if isinstance(value, Tensor) and name not in keep else value
                for name, value in values.items()
            }
        )


# ---------------------------------------------------------------------------------------------
# Encoding: token lists → compact id arrays
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class EncodedExample:
    """One example as int32 id arrays (``tgt*`` None without a target)."""

    src: array  # source-vocabulary ids
    src_ext: array  # source tokens as extended target-vocabulary ids
    oovs: list[str]  # the source words behind extended ids len(tgt_vocab), +1, ...
    tgt: array | None = None  # target-vocabulary ids, OOV -> <unk>
    tgt_ext: array | None = None  # target ids with OOVs copied from the source extended


def encode_corpus(corpus: TokenizedCorpus, src_vocab: Vocabulary, tgt_vocab: Vocabulary) -> list[EncodedExample]:
    """Encode every row of ``corpus``. An empty source becomes one ``<unk>`` (an encoder needs
    at least one step)."""
    targets = corpus.targets if corpus.targets is not None else [None] * len(corpus)
    encoded = []
    for source, target in zip(corpus.sources, targets):
        source = source or [UNK]
        src_ext, oovs = tgt_vocab.encode_extended(source)
        example = EncodedExample(array("i", src_vocab.encode(source)), array("i", src_ext), oovs)
        if target is not None:
            example.tgt = array("i", tgt_vocab.encode(target))
            example.tgt_ext = array("i", tgt_vocab.encode_with_oovs(target, oovs))
        encoded.append(example)
    return encoded


def example_lengths(examples: Sequence[EncodedExample]) -> tuple[list[int], list[int] | None]:
    """Lengths as the batch tensors will have them: sources, targets + 1 (``<s>``/``</s>``);
    target lengths None when the examples have no targets."""
    src_lengths = [len(e.src) for e in examples]
    if not examples or examples[0].tgt is None:
        return src_lengths, None
    return src_lengths, [len(e.tgt) + 1 for e in examples]


# ---------------------------------------------------------------------------------------------
# Planning: which examples go together, in which order
# ---------------------------------------------------------------------------------------------


def plan_batches(
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int] | None = None,
    *,
    batch_size: int,
    batch_tokens: int = 0,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
) -> list[list[int]]:
    """Batches of example positions, of similar lengths so that padding stays small.

    ``batch_tokens`` > 0: as many examples as fit ``n * (max src + max tgt length)`` <= the
    budget (one example at least); otherwise ``batch_size`` examples. With ``shuffle`` the
    examples are shuffled, sorted by length within buckets of ``BUCKET_BATCHES`` batches, and
    the batches shuffled, all from ``(seed, epoch)`` alone. Without it, every example is
    sorted longest first (ties by position): deterministic, for evaluation and prediction.
    """
    n = len(src_lengths)
    tgt_lengths = tgt_lengths if tgt_lengths is not None else [0] * n
    if len(tgt_lengths) != n:
        raise ValueError(f"{n} source lengths but {len(tgt_lengths)} target lengths")
    if batch_size < 1 and batch_tokens < 1:
        raise ValueError("batch_size or batch_tokens must be at least 1")

    def by_length(indices: list[int]) -> list[int]:
        return sorted(indices, key=lambda i: (-src_lengths[i], -tgt_lengths[i], i))

    if not shuffle:
        return _cut(by_length(list(range(n))), src_lengths, tgt_lengths, batch_size, batch_tokens)
    rng = random.Random(f"s2s-plan:{seed}:{epoch}")
    order = list(range(n))
    rng.shuffle(order)
    if batch_tokens > 0:
        mean = (sum(src_lengths) + sum(tgt_lengths)) / max(n, 1)
        bucket = BUCKET_BATCHES * max(1, int(batch_tokens // max(mean, 1)))
    else:
        bucket = BUCKET_BATCHES * batch_size
    batches = []
    for start in range(0, n, bucket):
        chunk = by_length(order[start : start + bucket])
        batches.extend(_cut(chunk, src_lengths, tgt_lengths, batch_size, batch_tokens))
    rng.shuffle(batches)
    return batches


def _cut(
    order: list[int],
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int],
    batch_size: int,
    batch_tokens: int,
) -> list[list[int]]:
    """Split ``order`` into consecutive batches by count or by padded-token budget."""
    if batch_tokens <= 0:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    batch: list[int] = []
    max_src = max_tgt = 0
    for i in order:
        new_src, new_tgt = max(max_src, src_lengths[i]), max(max_tgt, tgt_lengths[i])
        if batch and (len(batch) + 1) * (new_src + new_tgt) > batch_tokens:
            batches.append(batch)
            batch, new_src, new_tgt = [], src_lengths[i], tgt_lengths[i]
        batch.append(i)
        max_src, max_tgt = new_src, new_tgt
    if batch:
        batches.append(batch)
    return batches


# ---------------------------------------------------------------------------------------------
# Collating: padded tensors
# ---------------------------------------------------------------------------------------------


def collate(examples: Sequence[EncodedExample], indices: Sequence[int]) -> Batch:
    """The batch of ``examples[i] for i in indices`` (a batch of a plan); targets are included
    when every one of them has one."""
    chosen = [examples[i] for i in indices]
    src_lengths = torch.tensor([len(e.src) for e in chosen], dtype=torch.int64)  # (batch,)
    src_mask = _mask(src_lengths)  # (batch, src_len)
    batch = Batch(
        src=_pad([e.src for e in chosen], src_mask),
        src_lengths=src_lengths,
        src_mask=src_mask,
        src_ext=_pad([e.src_ext for e in chosen], src_mask),
        oovs=[e.oovs for e in chosen],
        indices=list(indices),
    )
    if chosen and all(e.tgt is not None for e in chosen):
        tgt_mask = _mask(torch.tensor([len(e.tgt) + 1 for e in chosen]))  # (batch, tgt_len)
        batch.tgt_in = _pad([array("i", [BOS_ID]) + e.tgt for e in chosen], tgt_mask)
        batch.tgt_out = _pad([e.tgt + array("i", [EOS_ID]) for e in chosen], tgt_mask)
        batch.tgt_out_ext = _pad([e.tgt_ext + array("i", [EOS_ID]) for e in chosen], tgt_mask)
        batch.tgt_mask = tgt_mask
    return batch


def _mask(lengths: Tensor) -> Tensor:
    """(batch,) lengths → (batch, max_len) bool, True at real tokens."""
    width = int(lengths.max()) if len(lengths) else 0
    return torch.arange(width) < lengths.unsqueeze(1)


def _pad(rows: list[array], mask: Tensor) -> Tensor:
    """Rows of ids → (batch, len) int64 padded with ``PAD_ID``: one copy of all ids, placed by
    ``mask`` (row-major order matches the rows end to end)."""
    flat = array("i")
    for row in rows:
        flat.extend(row)
    padded = torch.full(mask.shape, PAD_ID, dtype=torch.int64)
    if len(flat):
        padded[mask] = torch.frombuffer(flat, dtype=torch.int32).long()
    return padded
