"""The sampling searcher: n samples per sentence in one batch, seeded, greedy in the cold limit."""

from __future__ import annotations

import pytest

from s2s.config import PredictConfig, from_dict
from s2s.errors import ConfigError
from s2s.search import SampleOptions, search

from test_model import make_batch, model_for


@pytest.fixture(params=["attention", "pointer_generator"])
def model(request):
    return model_for(decoder__type=request.param, seed=3)


def tokens(hypotheses) -> list[list[list[int]]]:
    return [[h.tokens for h in hyps] for hyps in hypotheses]


def test_samples_are_seeded_and_sorted(model) -> None:
    batch = make_batch([7, 5, 3], [1, 1, 1], n_oov=2)
    cfg = SampleOptions(search="sample", n_best=6, max_length=8, seed=1)
    first = search(model, batch, cfg)
    assert [len(hyps) for hyps in first] == [6, 6, 6]
    assert all(hyps[i].score >= hyps[i + 1].score for hyps in first for i in range(5))
    assert tokens(search(model, batch, cfg)) == tokens(first)  # the same seed: the same samples
    assert tokens(search(model, batch, SampleOptions(search="sample", n_best=6, max_length=8, seed=2))) != tokens(first)
    assert len({tuple(h.tokens) for h in first[0]}) > 1  # an untrained model at temperature 1 varies


def test_a_cold_sample_is_the_greedy_output(model) -> None:
    batch = make_batch([7, 5, 3], [1, 1, 1], n_oov=2)
    greedy = search(model, batch, PredictConfig(search="greedy", max_length=8))
    cold = search(model, batch, SampleOptions(search="sample", n_best=3, max_length=8, temperature=1e-4))
    assert tokens(cold) == [[hyps[0].tokens] * 3 for hyps in greedy]
    assert [hyps[0].score for hyps in cold] == pytest.approx([hyps[0].score for hyps in greedy])


def test_sample_options_come_from_the_config() -> None:
    cfg = from_dict({"predict": {"search": "sample", "n_best": 16, "temperature": 0.7}})
    assert isinstance(cfg.predict, SampleOptions) and cfg.predict.n_best == 16 and cfg.predict.temperature == 0.7
    with pytest.raises(ConfigError, match="predict.temperature"):
        from_dict({"predict": {"search": "sample", "temperature": 0}})
    with pytest.raises(ConfigError, match="predict.temperature"):
        from_dict({"predict": {"search": "beam", "temperature": 0.7}})  # an option of sampling only
