"""Fast inference: int8 (s2s.quantize) and the vocabulary shortlist (s2s.shortlist) against fp32."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_transformer import model_for as transformer_model_for

from s2s.config import PredictConfig, from_dict, override
from s2s.errors import ConfigError
from s2s.model import build_model
from s2s.predict import Summarizer, predict_file
from s2s.quantize import is_quantized, quantize_model
from s2s.search import search
from s2s.shortlist import Shortlist

from conftest import train_toy_model
from test_model import V_SRC, V_TGT, make_batch
from test_model import model_for as rnn_model_for

MODELS = {
    "rnn": lambda: rnn_model_for(),
    "rnn_pgn": lambda: rnn_model_for(decoder__type="pointer_generator"),
    "rnn_pgn_coverage": lambda: rnn_model_for(decoder__type="pointer_generator", decoder__coverage=True),
    "transformer": lambda: transformer_model_for(),
    "transformer_copy": lambda: transformer_model_for(copy=True),
}


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    """A pointer-generator trained to copy rare 'names' its target vocabulary lacks: wide margins."""
    return train_toy_model(
        tmp_path_factory.mktemp("copy"),
        "copy_names",
        "model.decoder.type=pointer_generator",
        "vocab.target_size=10",
        "vocab.source_size=20",
        "train.max_steps=500",
    )


def _hypotheses(model, batch, **options):
    found = search(model, batch, PredictConfig(max_length=8, **options), coverage=True)
    return [[(h.tokens, h.score) for h in hyps] for hyps in found]


@pytest.mark.parametrize("family", list(MODELS))
@pytest.mark.parametrize("searcher", ["beam", "greedy"])
def test_a_shortlist_covering_the_vocabulary_gives_exactly_the_full_search(family: str, searcher: str) -> None:
    model, batch = MODELS[family](), make_batch([7, 5, 3], [2, 2, 2], n_oov=2)
    full = _hypotheses(model, batch, search=searcher, n_best=1)
    assert _hypotheses(model, batch, search=searcher, n_best=1, shortlist=V_TGT) == full
    int8 = quantize_model(model, "int8", torch.device("cpu"))
    assert _hypotheses(int8, batch, search=searcher, shortlist=V_TGT) == _hypotheses(int8, batch, search=searcher)


def test_the_shortlist_holds_the_frequent_words_the_sources_words_and_the_copied_ones() -> None:
    batch = make_batch([6, 3], [2, 2], n_oov=2)
    shortlist = Shortlist.of_batch(batch, 6, V_TGT)
    in_vocab = batch.src_ext[batch.src_mask & (batch.src_ext < V_TGT)]
    assert set(shortlist.ids.tolist()) == set(range(6)) | set(in_vocab.tolist())
    assert shortlist.ids.tolist() == sorted(shortlist.ids.tolist())  # the specials keep their ids
    # every source token, copied ones included, has a shortlist id that names it back
    real = batch.src_ext[batch.src_mask]
    assert torch.equal(shortlist.extended[shortlist.to_shortlist(real)], real)
    assert shortlist.extended[-2:].tolist() == [V_TGT, V_TGT + 1]


def test_int8_and_a_small_shortlist_give_the_fp32_outputs_of_a_trained_model(copy_run) -> None:
    """The copied names are out of the 10-word target vocabulary: reachable only through the copy ids."""
    summarizer = Summarizer.load(copy_run.result.best_checkpoint)
    int8 = Summarizer.load(copy_run.result.best_checkpoint, quantize="int8")
    assert is_quantized(int8.model.decoder.output) and not is_quantized(summarizer.model.decoder.output)
    sources = [source for source, _ in copy_run.pairs()[:80]]
    for search_name in ("beam", "greedy"):
        fp32 = [s.tokens for s in summarizer.decode(sources, summarizer.options(search=search_name))]
        assert sum(out == ref for out, (_, ref) in zip(fp32, copy_run.pairs())) >= 70  # it learned the task
        for which, shortlist in ((summarizer, 0), (summarizer, 4), (int8, 0), (int8, 4)):
            options = which.options(search=search_name, shortlist=shortlist)
            assert [s.tokens for s in which.decode(sources, options)] == fp32, (search_name, shortlist)


def test_predict_quantize_int8_writes_the_fp32_predictions(copy_run, tmp_path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("".join(" ".join(s) + "\n" for s, _ in copy_run.pairs()[:20]), encoding="utf-8")
    ckpt = copy_run.result.best_checkpoint
    predict_file(ckpt, source, tmp_path / "fp32.txt")
    predict_file(ckpt, source, tmp_path / "int8.txt", quantize="int8", overrides=["predict.shortlist=4"])
    assert (tmp_path / "int8.txt").read_text() == (tmp_path / "fp32.txt").read_text()


def test_int8_is_refused_off_the_cpu_and_for_an_unknown_mode() -> None:
    model = rnn_model_for()
    with pytest.raises(ConfigError, match=r"--quantize int8: dynamic int8 runs on the CPU only, not on cuda"):
        quantize_model(model, "int8", torch.device("cuda"))
    with pytest.raises(ConfigError, match=r"--quantize int4: unknown quantization \(choices: fp32, int8\)"):
        quantize_model(model, "int4", torch.device("cpu"))
    assert quantize_model(model, "fp32", torch.device("cpu")) is model


def test_a_shortlist_is_refused_for_a_model_without_a_target_vocabulary() -> None:
    cfg = override(from_dict({}), "model.type=extractive", "predict.search=select")
    model = build_model(cfg.model, [str(i) for i in range(V_SRC)], [str(i) for i in range(V_TGT)]).eval()
    batch = make_batch([5], [2])
    options = dataclasses.replace(cfg.predict, shortlist=100)
    with pytest.raises(ConfigError, match=r"predict.shortlist: this model picks source segments .* no target voc"):
        search(model, batch, options)


def test_int8_quantizes_the_linear_layers_but_those_kernels_read() -> None:
    model = quantize_model(rnn_model_for(decoder__coverage=True), "int8", torch.device("cpu"))
    attention = model.decoder.attention
    assert is_quantized(model.decoder.output) and is_quantized(model.decoder.combine)
    assert type(attention.energy) is torch.nn.Linear and type(attention.coverage_layer) is torch.nn.Linear
