"""Ensembles: the members' mean probabilities at every step, through the search unchanged."""

from __future__ import annotations

import math

import pytest
import torch
from test_average import ROOT, TOKENS, tiny_checkpoint
from test_transformer import model_for as transformer_for

from s2s.cli import main
from s2s.config import PredictConfig
from s2s.ensemble import Ensemble
from s2s.predict import Summarizer, predict_file
from s2s.search import search

from test_model import make_batch, model_for


@pytest.mark.parametrize("decoder", ["attention", "pointer_generator"])
@pytest.mark.parametrize("searcher", ["greedy", "beam"])
def test_an_ensemble_of_one_model_decodes_exactly_as_the_model(decoder, searcher) -> None:
    model = model_for(decoder__type=decoder, seed=3)
    batch = make_batch([7, 5, 3], [1, 1, 1], n_oov=2 if decoder == "pointer_generator" else 0)
    cfg = PredictConfig(search=searcher, beam_size=3, n_best=2 if searcher == "beam" else 1, max_length=8)
    ours, theirs = search(Ensemble([model]), batch, cfg, return_attention=True), search(model, batch, cfg, True)
    assert [[h.tokens for h in hyps] for hyps in ours] == [[h.tokens for h in hyps] for hyps in theirs]
    assert [[h.score for h in hyps] for hyps in ours] == [[h.score for h in hyps] for hyps in theirs]
    for mine, its in zip(ours, theirs):
        assert all(torch.equal(a.attention, b.attention) for a, b in zip(mine, its))


@torch.no_grad()
def test_members_probabilities_are_averaged_over_extended_ids() -> None:
    copying, plain = model_for(decoder__type="pointer_generator", seed=1), model_for(seed=2)
    batch = make_batch([6, 4], [1, 1], n_oov=3)
    ensemble = Ensemble([copying, plain])
    memory, state = ensemble.encode(batch)
    prev = torch.tensor([2, 2])
    step = ensemble.decode_step(prev, memory, state)
    a = copying.decode_step(prev, *copying.encode(batch)).log_probs.exp()  # (2, vocab + 3)
    b = plain.decode_step(prev, *plain.encode(batch)).log_probs.exp()  # (2, vocab): the extended ids get 0
    expected = (a + torch.nn.functional.pad(b, (0, 3))) / 2
    torch.testing.assert_close(step.log_probs.exp(), expected)
    torch.testing.assert_close(step.log_probs.exp().sum(-1), torch.ones(2), atol=1e-5, rtol=0)
    assert ensemble.copies and step.p_gen is not None and step.log_probs.shape == (2, plain.tgt_vocab_size + 3)
    # a copied word (extended id) fed back in goes to every member as <unk>: no error, same shapes
    again = ensemble.decode_step(torch.tensor([plain.tgt_vocab_size + 1, 5]), memory, step.state)
    assert again.log_probs.shape == step.log_probs.shape
    assert math.isclose(float(again.attention.sum(-1)[0]), 1.0, rel_tol=1e-5)


def test_an_ensemble_of_two_families_runs_the_beam_search() -> None:
    members = [model_for(seed=1), transformer_for(seed=2, copy=True, coverage=True)]
    batch = make_batch([7, 5, 3], [1, 1, 1], n_oov=2)
    cfg = PredictConfig(search="beam", beam_size=3, n_best=3, max_length=6, beta=0.2)
    hypotheses = search(Ensemble(members, coverage=[False, True]), batch, cfg, return_attention=True, coverage=True)
    assert [len(hyps) for hyps in hypotheses] == [3, 3, 3]
    assert all(h.p_gen is not None and h.attention.shape[1] == 7 for hyps in hypotheses for h in hyps)


def test_predict_with_two_copies_of_a_checkpoint_predicts_as_the_checkpoint(tmp_path) -> None:
    tiny_checkpoint(tmp_path / "a.pt", 0, "predict.search=beam")
    path = tmp_path / "input.txt"
    path.write_text("1 2 3\n4 5 6 7 8\n9\n", encoding="utf-8")
    predict_file(tmp_path / "a.pt", path, tmp_path / "one.txt")
    assert predict_file([tmp_path / "a.pt", tmp_path / "a.pt"], path, tmp_path / "two.txt") == 3
    assert (tmp_path / "two.txt").read_text() == (tmp_path / "one.txt").read_text()
    assert isinstance(Summarizer.load([tmp_path / "a.pt", tmp_path / "a.pt"], "cpu").model, Ensemble)


def test_members_with_other_vocabularies_are_refused(tmp_path, capsys) -> None:
    tiny_checkpoint(tmp_path / "a.pt", 0)
    tiny_checkpoint(tmp_path / "b.pt", 1, tokens=[*TOKENS[:-1], "other"])
    (tmp_path / "input.txt").write_text("1 2\n", encoding="utf-8")
    args = ["predict", "--checkpoint", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--input"]
    assert main([*args, str(tmp_path / "input.txt")]) == 2
    err = capsys.readouterr().err
    assert "b.pt has another source vocabulary than" in err and "must share their vocabularies" in err


def test_runs_of_other_seeds_share_a_split_by_data_split_seed(tmp_path) -> None:
    """Ensemble members differ in train.seed but must share their rows (and so vocabularies)."""
    from s2s.config import load_config
    from s2s.prepare import prepare

    train = tmp_path / "train.tsv"
    train.write_text("".join(f"w{i} x{i % 7}\tw{i}\n" for i in range(50)), encoding="utf-8")
    common = [f"data.train={train}", "data.dev_split=0.2", "data.test_split=0.2", f"data.cache_dir={tmp_path}"]

    def prepared(*overrides: str):
        cfg = load_config(ROOT / "configs" / "toy.yaml", [*common, *overrides])
        return prepare(cfg, progress=False)

    a, b = prepared("train.seed=1", "data.split_seed=5"), prepared("train.seed=2", "data.split_seed=5")
    assert a.dev.ids == b.dev.ids and a.test_split.ids == b.test_split.ids
    assert a.src_vocab.tokens == b.src_vocab.tokens
    assert prepared("train.seed=1").dev.ids != prepared("train.seed=2").dev.ids  # without it: the seed's split
