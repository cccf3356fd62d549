"""Batches: padded, batch-first tensors plus bool masks (True = real token)."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


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
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor) and f.name != "src_lengths":
                value = value.to(device, non_blocking=non_blocking)
            moved[f.name] = value
        return Batch(**moved)
