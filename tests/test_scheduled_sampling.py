"""Scheduled sampling: the schedules, how each model family mixes its own predictions in, learning."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from test_learning import exact_match
from test_transformer import model_for as transformer_for

from s2s.config import Config, override
from s2s.errors import ConfigError
from s2s.model import as_input
from s2s.registry import SAMPLING

from test_model import V_TGT, make_batch
from test_model import model_for as rnn_for


def schedule(*options: str):
    cfg = override(Config(), *(f"train.scheduled_sampling.{option}" for option in options))
    return SAMPLING.build(cfg.train.scheduled_sampling)


def test_the_schedules() -> None:
    assert schedule("type=none")(0) == schedule("type=none")(10**6) == 0.0  # the default: teacher forcing
    assert Config().train.scheduled_sampling.type == "none"
    linear = schedule("type=linear", "start=0.1", "end=0.5", "steps=100")
    assert [linear(i) for i in (0, 50, 100, 10**6)] == pytest.approx([0.1, 0.3, 0.5, 0.5])
    exponential = schedule("type=exponential", "end=0.5", "k=0.9")
    assert [exponential(i) for i in (0, 1, 10**6)] == pytest.approx([0.0, 0.05, 0.5])
    inverse = schedule("type=inverse_sigmoid", "end=1", "k=10")
    values = [inverse(i) for i in range(0, 200, 5)]
    assert values == sorted(values) and inverse(0) == pytest.approx(1 / 11)
    assert inverse(round(10 * math.log(10))) == pytest.approx(0.5, abs=0.01) and inverse(10**9) == 1.0
    with pytest.raises(ConfigError, match="train.scheduled_sampling.k: must be below 1"):
        schedule("type=exponential", "k=1")
    with pytest.raises(ConfigError, match="train.scheduled_sampling.k: must be at least 1"):
        schedule("type=inverse_sigmoid", "k=0.5")
    with pytest.raises(ConfigError, match="train.scheduled_sampling.end"):
        schedule("type=linear", "end=1.5")
    with pytest.raises(ConfigError, match="unknown sampling 'cosine'"):
        schedule("type=cosine")


def greedy_nll(model, batch, target: torch.Tensor, coverage: bool) -> torch.Tensor:
    """(batch, tgt_len) NLL of ``target`` when every input after <s> is the model's previous argmax."""
    memory, state = model.encode(batch, coverage=coverage)
    tokens, losses = batch.tgt_in[:, 0], []
    for t in range(target.size(1)):
        step = model.decode_step(tokens, memory, state)
        state, tokens = step.state, step.log_probs.argmax(-1)
        losses.append(-step.log_probs.gather(1, target[:, t : t + 1]))
    return torch.cat(losses, 1) * batch.tgt_mask


@pytest.mark.parametrize("decoder", ["attention", "pointer_generator"])
def test_rnn_with_probability_one_reads_its_own_greedy_outputs(decoder: str) -> None:
    coverage = decoder == "pointer_generator"
    model = rnn_for(decoder__type=decoder, decoder__coverage=coverage)
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=2 if model.copies else 0)
    target = batch.tgt_out_ext if model.copies else batch.tgt_out
    with torch.no_grad():
        sampled = model(batch, coverage=coverage, sampling=1.0).token_loss
        torch.testing.assert_close(sampled, greedy_nll(model, batch, target, coverage))
        assert not torch.allclose(sampled, model(batch, coverage=coverage).token_loss)


@pytest.mark.parametrize("changes", [{}, {"attention__type": "luong_dot", "decoder__input_feeding": False}])
def test_rnn_sampled_path_without_a_draw_is_the_plain_path(changes: dict) -> None:
    """p tiny: the sampled path runs, no coin lands; both paths (step, fast) give the same losses."""
    model = rnn_for(decoder__type="pointer_generator", **changes)
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=2)
    with torch.no_grad():
        torch.testing.assert_close(model(batch, sampling=1e-12).token_loss, model(batch).token_loss)


@pytest.mark.parametrize("variant", [{}, {"copy": True}, {"copy": True, "coverage": True}])
def test_transformer_second_pass_reads_the_first_pass_predictions(variant: dict) -> None:
    """p = 1: the inputs are <s> and the argmax of each position given the gold tokens before it."""
    model, coverage = transformer_for(**variant), variant.get("coverage", False)
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=2)
    with torch.no_grad():
        memory, state = model.encode(batch, coverage=coverage)
        predicted = []
        for t in range(batch.tgt_in.size(1)):  # the cache makes each step see the gold prefix
            step = model.decode_step(batch.tgt_in[:, t], memory, state)
            state = step.state
            predicted.append(step.log_probs.argmax(-1))
        own_inputs = torch.stack([batch.tgt_in[:, 0], *predicted[:-1]], 1)  # (batch, tgt_len)
        own_batch = dataclasses.replace(batch, tgt_in=as_input(own_inputs, V_TGT))
        expected = model(own_batch, coverage=coverage).token_loss
        torch.testing.assert_close(model(batch, coverage=coverage, sampling=1.0).token_loss, expected)
        plain = model(batch, coverage=coverage).token_loss
        assert not torch.allclose(plain, expected)
        torch.testing.assert_close(model(batch, coverage=coverage, sampling=1e-12).token_loss, plain)


@pytest.mark.parametrize("family", ["rnn", "transformer"])
def test_the_draws_come_from_the_seeded_generator(family: str) -> None:
    model = rnn_for() if family == "rnn" else transformer_for()
    batch = make_batch([9, 8, 8, 7], [8, 8, 7, 6], seed=3)
    losses = []
    with torch.no_grad():
        for seed in (1, 1, 2):
            torch.manual_seed(seed)
            losses.append(model(batch, sampling=0.5).token_loss)
        plain = model(batch).token_loss
    assert torch.equal(losses[0], losses[1]) and not torch.equal(losses[0], losses[2])
    assert not torch.allclose(losses[0], plain)


TRANSFORMER = ("model.type=transformer", "model.d_model=32", "model.heads=4", "model.ff_size=64", "model.dropout=0")


@pytest.mark.parametrize("family,threshold", [((), 0.9), (TRANSFORMER, 0.6)], ids=["rnn", "transformer"])
def test_learns_to_reverse_with_scheduled_sampling(train_toy, family: tuple[str, ...], threshold: float) -> None:
    """Half the decoder's inputs its own predictions by step 250, and it still learns the task
    (exact match of an untrained model: about 0; the Transformer without sampling: 0.885 here)."""
    sampling = ("type=linear", "end=0.5", "steps=250")
    run = train_toy("reverse", *family, *(f"train.scheduled_sampling.{s}" for s in sampling), "train.max_steps=400")
    assert exact_match(run) >= threshold
    logged = [r["sampling"] for r in map(json.loads, open(run.result.output_dir / "metrics.jsonl")) if "loss" in r]
    assert logged[0] == pytest.approx(0.5 * 49 / 250) and logged[-1] == 0.5  # the update at step 50 had p(49)
