"""Batching: encoding, length-bucketed plans, padded tensors and masks."""

from __future__ import annotations

import random

import pytest
import torch

from s2s.batching import Batch, collate, encode_corpus, example_lengths, plan_batches
from s2s.corpus import TokenizedCorpus
from s2s.vocabulary import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabulary

SRC_VOCAB = Vocabulary(["车", "重", "换", "泵"])  # ids 4..7
TGT_VOCAB = Vocabulary(["换", "泵"])  # ids 4, 5; size 6


def corpus(with_targets: bool = True) -> TokenizedCorpus:
    return TokenizedCorpus(
        name="t",
        ids=["a", "b", "c"],
        sources=[["车", "重", "助力", "助力"], ["换", "泵"], []],
        targets=[["换", "助力", "x"], ["泵"], ["换"]] if with_targets else None,
    )


def test_encode_corpus_ids_and_extended_ids() -> None:
    a, b, c = encode_corpus(corpus(), SRC_VOCAB, TGT_VOCAB)
    assert list(a.src) == [4, 5, UNK_ID, UNK_ID]
    assert list(a.src_ext) == [6, 7, 8, 8] and a.oovs == ["车", "重", "助力"]  # target-vocab OOVs
    assert list(a.tgt) == [4, UNK_ID, UNK_ID]
    assert list(a.tgt_ext) == [4, 8, UNK_ID]  # 助力 is copied from the source; x is not there
    assert list(c.src) == [UNK_ID] and list(c.src_ext) == [UNK_ID]  # empty source: one <unk>
    assert encode_corpus(corpus(False), SRC_VOCAB, TGT_VOCAB)[0].tgt is None


def test_collate_shapes_masks_and_alignment() -> None:
    encoded = encode_corpus(corpus(), SRC_VOCAB, TGT_VOCAB)
    batch = collate(encoded, [1, 0])
    assert batch.indices == [1, 0] and batch.size == 2 and batch.max_oovs == 3
    assert batch.src.shape == batch.src_mask.shape == batch.src_ext.shape == (2, 4)
    assert batch.src.dtype == torch.int64 and batch.src_mask.dtype == torch.bool
    assert batch.src_lengths.tolist() == [2, 4] and batch.src_lengths.dtype == torch.int64
    assert batch.src.tolist() == [[6, 7, PAD_ID, PAD_ID], [4, 5, UNK_ID, UNK_ID]]
    assert batch.src_mask.tolist() == [[True, True, False, False], [True] * 4]
    assert batch.src_ext.tolist() == [[4, 5, 0, 0], [6, 7, 8, 8]]
    assert batch.tgt_in.tolist() == [[BOS_ID, 5, 0, 0], [BOS_ID, 4, UNK_ID, UNK_ID]]
    assert batch.tgt_out.tolist() == [[5, EOS_ID, 0, 0], [4, UNK_ID, UNK_ID, EOS_ID]]
    assert batch.tgt_out_ext.tolist() == [[5, EOS_ID, 0, 0], [4, 8, UNK_ID, EOS_ID]]
    assert batch.tgt_mask.tolist() == [[True, True, False, False], [True] * 4]
    shifted = batch.tgt_mask[:, 1:]  # teacher forcing: input step t+1 is output step t
    assert torch.equal(batch.tgt_in[:, 1:] * shifted, batch.tgt_out[:, :-1] * shifted)


def test_collate_without_targets_and_moving() -> None:
    encoded = encode_corpus(corpus(False), SRC_VOCAB, TGT_VOCAB)
    batch = collate(encoded, [2])
    assert batch.tgt_in is None and batch.tgt_mask is None and batch.src.tolist() == [[UNK_ID]]
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.src, batch.src)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs a CUDA device")
def test_pin_memory_and_non_blocking_copy() -> None:
    batch = collate(encode_corpus(corpus(), SRC_VOCAB, TGT_VOCAB), [0, 1]).pin_memory()
    assert batch.src.is_pinned() and batch.tgt_out_ext.is_pinned() and batch.oovs[0] == ["车", "重", "助力"]
    moved = batch.to("cuda", non_blocking=True)
    assert moved.src.is_cuda and not moved.src_lengths.is_cuda
    assert torch.equal(moved.tgt_out.cpu(), batch.tgt_out)


def lengths(n: int = 500, seed: int = 0) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    return [rng.randint(1, 300) for _ in range(n)], [rng.randint(2, 60) for _ in range(n)]


def test_plan_by_count_covers_every_example_once() -> None:
    src, tgt = lengths()
    plan = plan_batches(src, tgt, batch_size=32, shuffle=True, seed=1, epoch=0)
    assert sorted(i for b in plan for i in b) == list(range(500))
    assert sorted(map(len, plan)) == [20] + [32] * 15


@pytest.mark.parametrize("shuffle", [True, False])
def test_token_budget_respected(shuffle: bool) -> None:
    src, tgt = lengths()
    src[7] = 5000  # longer than the budget alone: a batch of its own
    plan = plan_batches(src, tgt, batch_size=1, batch_tokens=2000, shuffle=shuffle, seed=3)
    assert sorted(i for b in plan for i in b) == list(range(500))
    assert [7] in plan
    for b in plan:
        if b != [7]:
            assert len(b) * (max(src[i] for i in b) + max(tgt[i] for i in b)) <= 2000


def test_buckets_keep_padding_small() -> None:
    src, tgt = lengths(2000)
    plan = plan_batches(src, tgt, batch_size=16, shuffle=True, seed=0, epoch=0)
    padded = sum(len(b) * max(src[i] for i in b) for b in plan)
    assert sum(src) / padded > 0.9


def test_plans_are_deterministic_per_seed_and_epoch() -> None:
    src, tgt = lengths()

    def plan(seed: int, epoch: int) -> list[list[int]]:
        return plan_batches(src, tgt, batch_size=16, batch_tokens=3000, shuffle=True, seed=seed, epoch=epoch)

    assert plan(5, 2) == plan(5, 2)
    assert plan(5, 2) != plan(5, 3) and plan(5, 2) != plan(6, 2)
    assert {tuple(sorted(b)) for b in plan(5, 2)} != {tuple(sorted(b)) for b in plan(5, 3)}  # new buckets


def test_unshuffled_plan_is_sorted_longest_first() -> None:
    src, tgt = lengths(100)
    plan = plan_batches(src, None, batch_size=10)
    flat = [i for b in plan for i in b]
    assert [src[i] for i in flat] == sorted(src, reverse=True)
    assert plan == plan_batches(src, None, batch_size=10, seed=9, epoch=4)


def test_example_lengths_match_tensor_widths() -> None:
    encoded = encode_corpus(corpus(), SRC_VOCAB, TGT_VOCAB)
    src, tgt = example_lengths(encoded)
    assert (src, tgt) == ([4, 2, 1], [4, 2, 2])
    batch = collate(encoded, [0, 1, 2])
    assert batch.src.shape[1] == max(src) and batch.tgt_in.shape[1] == max(tgt)
    assert example_lengths(encode_corpus(corpus(False), SRC_VOCAB, TGT_VOCAB))[1] is None
