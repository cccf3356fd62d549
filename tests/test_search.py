"""Search on untrained models: the properties that hold whatever the weights."""

from __future__ import annotations

import pytest
import torch

from s2s import search as search_module
from s2s.batching import Batch
from s2s.config import PredictConfig
from s2s.decoders import DecoderState, Memory
from s2s.model import Step
from s2s.search import block_repeated_ngrams, search
from s2s.vocabulary import BOS_ID, EOS_ID, PAD_ID

from test_model import make_batch, model_for


def sub_batch(batch: Batch, i: int) -> Batch:
    """Example i of ``batch`` alone, without padding."""
    n = int(batch.src_lengths[i])
    return Batch(
        batch.src[i : i + 1, :n],
        batch.src_lengths[i : i + 1],
        batch.src_mask[i : i + 1, :n],
        batch.src_ext[i : i + 1, :n],
        batch.oovs[i : i + 1],
        [0],
    )


@pytest.fixture(params=["attention", "pointer_generator"])
def model(request):
    return model_for(decoder__type=request.param, seed=3)


def test_beam_of_one_equals_greedy(model) -> None:
    batch = make_batch([9, 5, 2, 7], [1] * 4, n_oov=2)
    greedy = search(model, batch, PredictConfig(search="greedy", max_length=12))
    beam = search(model, batch, PredictConfig(search="beam", beam_size=1, max_length=12))
    for g, b in zip(greedy, beam):
        assert g[0].tokens == b[0].tokens
        assert g[0].log_prob == pytest.approx(b[0].log_prob, abs=1e-4)


@pytest.mark.parametrize(
    "options",
    [
        dict(beam_size=4, n_best=2),
        dict(beam_size=3, alpha=1.0, min_length=2),
        dict(beam_size=4, beta=0.5, no_repeat_ngram_size=2),
        dict(beam_size=3, max_length_ratio=1.0),
    ],
)
def test_batched_beam_equals_per_sentence_beam(model, options) -> None:
    batch = make_batch([9, 5, 2, 7], [1] * 4, n_oov=2)
    cfg = PredictConfig(search="beam", max_length=10, **options)
    batched = search(model, batch, cfg, return_attention=True)
    for i in range(batch.size):
        alone = search(model, sub_batch(batch, i), cfg, return_attention=True)[0]
        assert [h.tokens for h in batched[i]] == [h.tokens for h in alone]
        for b, a in zip(batched[i], alone):
            assert b.score == pytest.approx(a.score, abs=1e-4)
            torch.testing.assert_close(b.attention[:, : a.attention.size(1)], a.attention, atol=1e-4, rtol=0)


def test_hypotheses_are_sorted_and_scored_consistently(model) -> None:
    batch = make_batch([9, 5], [1, 1], n_oov=1)
    for alpha in (0.0, 0.8):
        cfg = PredictConfig(search="beam", beam_size=5, n_best=5, max_length=8, alpha=alpha)
        for hyps in search(model, batch, cfg):
            assert len(hyps) == 5
            scores = [h.score for h in hyps]
            assert scores == sorted(scores, reverse=True)
            for h in hyps:
                length_penalty = ((5 + len(h.tokens)) / 6) ** alpha
                assert h.score == pytest.approx(h.log_prob / length_penalty, abs=1e-4)


def test_no_special_tokens_and_lengths_respected(model) -> None:
    batch = make_batch([9, 5, 2], [1] * 3, n_oov=2)
    for searcher in ("greedy", "beam"):
        cfg = PredictConfig(search=searcher, max_length=7, min_length=7)
        for hyps in search(model, batch, cfg):
            assert len(hyps[0].tokens) == 7  # min = max: exactly 7 tokens, no early </s>
            assert not {PAD_ID, BOS_ID, EOS_ID} & set(hyps[0].tokens)
        cfg = PredictConfig(search=searcher, max_length=20, max_length_ratio=1.0)
        for hyps, n in zip(search(model, batch, cfg), batch.src_lengths.tolist()):
            assert len(hyps[0].tokens) <= n


def test_p_gen_only_from_a_model_that_copies(model) -> None:
    """Attention and p_gen come with every hypothesis of either search; p_gen only where the model copies."""
    batch = make_batch([9, 5, 2], [1] * 3, n_oov=2)
    for searcher in ("greedy", "beam"):
        for hyps in search(model, batch, PredictConfig(search=searcher, max_length=6), return_attention=True):
            assert hyps[0].attention.shape == (len(hyps[0].tokens), batch.src.size(1))
            assert (hyps[0].p_gen is not None) == model.copies, searcher
            if model.copies:
                assert hyps[0].p_gen.shape == (len(hyps[0].tokens),)


def test_ngram_blocking_blocks(model) -> None:
    batch = make_batch([9, 5, 2], [1] * 3, n_oov=2)
    for searcher in ("greedy", "beam"):
        free = search(model, batch, PredictConfig(search=searcher, max_length=15, min_length=15))
        assert any(_has_repeat(h[0].tokens, 2) for h in free)  # the untrained model repeats itself
        blocked = search(
            model, batch, PredictConfig(search=searcher, max_length=15, min_length=15, no_repeat_ngram_size=2)
        )
        assert not any(_has_repeat(h[0].tokens, 2) for h in blocked)


def _has_repeat(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def test_block_repeated_ngrams_unit() -> None:
    log_probs = torch.zeros(2, 6)
    history = torch.tensor([[4, 5, 4, 1], [1, 2, 3, 4]])
    out = block_repeated_ngrams(log_probs.clone(), history[:, :3], 2)  # row 0 ends in 4; "4 5" seen
    assert out[0, 5] == float("-inf") and torch.isfinite(out[0, :5]).all()
    assert torch.isfinite(out[1]).all()
    out = block_repeated_ngrams(log_probs.clone(), history, 1)  # no token twice
    assert torch.isinf(out[0, [1, 4, 5]]).all() and torch.isinf(out[1, 1:5]).all()


class ScriptedModel:
    """A stand-in for a model whose next-token distribution depends on the previous token only.

    After <s>: </s> 0.5, token 4 0.45. After 4: 4 again 0.9, </s> 0.05. So "</s>" right away
    is the best unnormalised hypothesis, and a long run of 4s the best under a length penalty.
    """

    tgt_vocab_size, copies = 8, False

    def __init__(self) -> None:
        table = torch.full((8, 8), 0.05 / 5)
        table[BOS_ID, [EOS_ID, 4]] = torch.tensor([0.5, 0.45])
        table[4, [4, EOS_ID]] = torch.tensor([0.9, 0.05])
        table[[0, 1, 3, 5, 6, 7]] = 1 / 8
        self.log_table = (table / table.sum(-1, keepdim=True)).log()

    def encode(self, batch, coverage=False):
        rows, src_len = batch.src.shape
        memory = Memory(
            torch.zeros(rows, src_len, 1), torch.zeros(rows, src_len, 1), batch.src_mask, batch.src_ext, batch.max_oovs
        )
        return memory, DecoderState(torch.zeros(1, rows, 1), None, None)

    def decode_step(self, prev_tokens, memory, state):
        attention = memory.mask.float() / memory.mask.sum(-1, keepdim=True)
        return Step(self.log_table[prev_tokens].clone(), attention, None, state)


def test_stopping_is_exact_under_length_penalty() -> None:
    """The beam must not stop when its best hypothesis ends: under a length penalty a longer
    one can still win. Stopping early gives the same result as never stopping."""
    batch = make_batch([3, 2], [1, 1])
    cfg = PredictConfig(search="beam", beam_size=2, max_length=12)
    assert [h[0].tokens for h in search(ScriptedModel(), batch, cfg)] == [[], []]
    cfg.alpha = 2.0
    assert [h[0].tokens for h in search(ScriptedModel(), batch, cfg)] == [[4] * 12] * 2


def test_stopping_matches_exhaustive_search(model, monkeypatch) -> None:
    batch = make_batch([9, 5, 2, 7], [1] * 4, n_oov=2)
    cfg = PredictConfig(search="beam", beam_size=4, n_best=2, max_length=12, alpha=2.0)
    early = search(model, batch, cfg)
    never = float("-inf")
    monkeypatch.setattr(
        search_module._Finished, "worst", lambda self, sentence: torch.full_like(sentence, never, dtype=torch.float)
    )
    exhaustive = search(model, batch, cfg)
    for e, x in zip(early, exhaustive):
        assert [h.tokens for h in e] == [h.tokens for h in x]


def test_finished_sentences_leave_the_batch(model) -> None:
    batch = make_batch([9, 2], [1, 1])
    rows = []
    original = model.decode_step

    def recording(tokens, memory, state):
        rows.append(tokens.size(0))
        return original(tokens, memory, state)

    model.decode_step = recording
    search(model, batch, PredictConfig(search="beam", beam_size=3, max_length=8, max_length_ratio=1.0))
    assert rows[0] == 6 and rows[-1] == 3  # the 2-token sentence finished; only one stays
