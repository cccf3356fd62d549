"""Learning is tested by learning: tiny models must really fit synthetic tasks.

Each run trains configs/toy.yaml for a few hundred steps on 3,000 synthetic pairs (seconds on
two CPU cores) and is scored on 200 held-out sources it never saw. The thresholds are far
above what an untrained or broken model reaches (exact match of random outputs: ~0).
"""

from __future__ import annotations

import json

import pytest
import torch

from s2s.predict import Summarizer

from conftest import ToyRun


def exact_match(run: ToyRun, search: str = "greedy") -> float:
    summarizer = Summarizer.load(run.result.best_checkpoint)
    pairs = run.pairs()
    outputs = summarizer.decode([s for s, _ in pairs], summarizer.options(search=search))
    return sum(o.tokens == t for o, (_, t) in zip(outputs, pairs)) / len(pairs)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_reverse_with_each_cell_in_encoder_and_decoder(train_toy, cell: str) -> None:
    """The lecture's three cells, each as encoder and decoder (toy.yaml's decoder is a GRU)."""
    run = train_toy("reverse", f"model.encoder.type={cell}", f"model.decoder.rnn={cell}")
    assert exact_match(run) >= 0.9


def dev_loss(run: ToyRun) -> float:
    """The last evaluation's dev loss."""
    records = [json.loads(line) for line in open(run.result.output_dir / "metrics.jsonl", encoding="utf-8")]
    return [r["dev_loss"] for r in records if "dev_loss" in r][-1]


def test_residual_deep_lstm_learns_faster_than_the_plain_one(train_toy) -> None:
    """GNMT's point: a 4-layer LSTM encoder and decoder on reverse at 15-25 tokens, the same 150
    steps; the plain stack has barely moved (dev loss 2.98 measured, 3.0 = uniform over the 20
    digits), the residual one is well on its way (0.99)."""
    deep = (
        "model.encoder.type=lstm",
        "model.decoder.rnn=lstm",
        "model.encoder.num_layers=4",
        "model.decoder.num_layers=4",
        "model.attention.type=luong_general",
        "model.decoder.input_feeding=false",
        "train.max_steps=150",
        "train.eval_every=150",
    )
    residual = ("model.encoder.residual=true", "model.decoder.residual=true")
    plain = dev_loss(train_toy("reverse", *deep, lengths=(15, 25), name="plain"))
    with_residual = dev_loss(train_toy("reverse", *deep, *residual, lengths=(15, 25), name="residual"))
    assert with_residual < 0.6 * plain, (with_residual, plain)


@pytest.mark.parametrize(
    "attention,extra",
    [
        ("luong_dot", ()),
        ("luong_general", ("model.decoder.input_feeding=false",)),  # the decoder's fast path
        ("luong_concat", ()),
    ],
)
def test_reverse_with_each_attention(train_toy, attention: str, extra: tuple[str, ...]) -> None:
    run = train_toy("reverse", f"model.attention.type={attention}", *extra)  # bahdanau: the test above
    assert exact_match(run) >= 0.9


def test_copy(train_toy) -> None:
    run = train_toy("copy", "model.decoder.rnn=lstm", "model.encoder.type=lstm")
    assert exact_match(run) >= 0.9


def test_sort(train_toy) -> None:
    run = train_toy("sort", "train.max_steps=600", vocab=10)
    assert exact_match(run) >= 0.9


def token_accuracy(run: ToyRun) -> tuple[float, float]:
    """(position-wise token accuracy, fraction of target tokens in the target vocabulary)."""
    summarizer = Summarizer.load(run.result.best_checkpoint)
    pairs = run.pairs()
    outputs = summarizer.decode([s for s, _ in pairs], summarizer.options(search="greedy"))
    total = sum(len(t) for _, t in pairs)
    hits = sum(a == b for o, (_, t) in zip(outputs, pairs) for a, b in zip(o.tokens, t))
    in_vocab = sum(w in summarizer.tgt_vocab for _, t in pairs for w in t)
    return hits / total, in_vocab / total


COPY_NAMES = ("vocab.target_size=10", "vocab.source_size=20")  # names are OOV on both sides


def test_pointer_generator_copies_words_outside_the_vocabulary(train_toy) -> None:
    copying = train_toy("copy_names", "model.decoder.type=pointer_generator", *COPY_NAMES, name="pgn")
    accuracy, in_vocab = token_accuracy(copying)
    assert in_vocab < 0.05
    assert accuracy >= 0.9
    plain = train_toy("copy_names", "model.decoder.type=attention", *COPY_NAMES, name="plain")
    plain_accuracy, _ = token_accuracy(plain)
    assert plain_accuracy <= in_vocab


@pytest.mark.parametrize("start", [0, 150])
def test_coverage_loss_falls_and_stays_finite(train_toy, start: int) -> None:
    run = train_toy(
        "copy_names",
        "model.decoder.type=pointer_generator",
        "model.decoder.coverage=true",
        f"model.decoder.coverage_from_step={start}",
        "train.max_steps=400",
        "train.log_every=25",
        *COPY_NAMES,
    )
    records = [json.loads(line) for line in open(run.result.output_dir / "metrics.jsonl", encoding="utf-8")]
    steps = [r for r in records if "loss" in r]
    assert all(r["loss"] == r["loss"] and r["loss"] < float("inf") for r in steps)  # no NaN/inf
    coverage = [r["coverage_loss"] for r in steps if "coverage_loss" in r]
    assert all(r["step"] > start for r in steps if "coverage_loss" in r)  # off until its step
    assert len(coverage) >= 8 and coverage[-1] < 0.6 * coverage[0]
    accuracy, _ = token_accuracy(run)
    assert accuracy >= 0.9


TRANSFORMER = {"config": "toy_transformer.yaml"}


@pytest.mark.parametrize("task,vocab,steps", [("reverse", 20, 500), ("copy", 20, 500), ("sort", 10, 600)])
def test_transformer_fits_each_task(train_toy, task: str, vocab: int, steps: int) -> None:
    run = train_toy(task, f"train.max_steps={steps}", vocab=vocab, **TRANSFORMER)
    assert exact_match(run) >= 0.9


def test_transformer_pointer_generator_copies_words_outside_the_vocabulary(train_toy) -> None:
    copying = train_toy("copy_names", "model.copy=true", *COPY_NAMES, name="pgn", **TRANSFORMER)
    accuracy, in_vocab = token_accuracy(copying)
    assert in_vocab < 0.05
    assert accuracy >= 0.9
    plain = train_toy("copy_names", *COPY_NAMES, name="plain", **TRANSFORMER)
    plain_accuracy, _ = token_accuracy(plain)
    assert plain_accuracy <= in_vocab


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision needs a CUDA device")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("config", ["toy.yaml", "toy_transformer.yaml"])
def test_each_family_learns_under_mixed_precision_on_cuda(train_toy, amp: str, config: str) -> None:
    run = train_toy("reverse", "train.device=cuda", f"train.amp={amp}", config=config)
    assert exact_match(run) >= 0.9
