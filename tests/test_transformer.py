"""The Transformer family (s2s.transformer): incremental decoding, masks, search, copying, errors, learning."""

from __future__ import annotations

import random
from array import array

import pytest
import torch
import torch.nn.functional as F
from test_search import sub_batch

from s2s.batching import Batch, EncodedExample, collate
from s2s.config import PredictConfig
from s2s.errors import ConfigError
from s2s.search import beam_search, greedy_search, search
from s2s.transformer import TransformerModel, TransformerOptions
from s2s.vocabulary import BOS_ID, EOS_ID, PAD_ID, UNK_ID

from test_model import V_SRC, V_TGT, make_batch

VARIANTS = {
    "plain": {},
    "post_norm_learned_positions": {"norm": "post", "positions": "learned", "max_positions": 16},
    "copy": {"copy": True},
    "copy_coverage": {"copy": True, "coverage": True},
}


def model_for(seed: int = 0, src_vocab_size: int = V_SRC, tgt_vocab_size: int = V_TGT, **changes) -> TransformerModel:
    """A tiny model in eval mode; with coverage, its weight w_c is made non-zero (it starts at 0)."""
    torch.manual_seed(seed)
    options = TransformerOptions(d_model=16, heads=2, ff_size=32, encoder_layers=2, decoder_layers=2, **changes)
    model = TransformerModel(options, src_vocab_size, tgt_vocab_size).eval()
    if options.coverage:
        with torch.no_grad():
            model.copy_head.coverage_scale.fill_(-2.0)
    return model


def teacher_forced_batch() -> Batch:
    """Padding on both sides, and a copied out-of-vocabulary word (extended id V_TGT) fed back."""
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=2)
    batch.tgt_out_ext[0, 1], batch.tgt_out[0, 1] = V_TGT, UNK_ID
    batch.tgt_in[:, 1:] = batch.tgt_out[:, :-1]
    return batch


@pytest.mark.parametrize("variant", VARIANTS)
def test_cached_steps_equal_the_full_forward_pass(variant: str) -> None:
    """decode_step with the key/value cache gives, at every position, the full pass's log-probs
    (the whole distribution), attention, p_gen and token losses."""
    model = model_for(**VARIANTS[variant])
    coverage = model.coverage_from_step is not None
    batch = teacher_forced_batch()
    full = model(batch, coverage=coverage)
    memory, state = model.encode(batch, coverage=coverage)
    decoded, _ = model._decode(batch.tgt_in, memory, state, incremental=False)  # no cache read
    target = batch.tgt_out_ext if model.copies else batch.tgt_out
    fed_back = torch.cat([batch.tgt_in[:, :1], batch.tgt_out_ext[:, :-1]], dim=1)  # extended ids
    for t in range(batch.tgt_in.size(1)):
        step = model.decode_step(fed_back[:, t], memory, state)
        state = step.state
        live = batch.tgt_mask[:, t]
        p_gen = decoded.p_gen[:, t] if model.copies else None
        expected = model._log_probs(decoded.hidden[:, t], decoded.attention[:, t], p_gen, memory, None)
        torch.testing.assert_close(step.log_probs[live], expected[live], atol=1e-5, rtol=1e-5)
        nll = -step.log_probs.gather(1, target[:, t : t + 1]).squeeze(1)
        torch.testing.assert_close(nll[live], full.token_loss[live, t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step.attention[live], full.attention[live, t], atol=1e-5, rtol=1e-5)
        if model.copies:
            torch.testing.assert_close(step.p_gen[live], full.p_gen[live, t], atol=1e-5, rtol=1e-5)
        assert state.keys[0].shape == (3, 2, t + 1, 8)  # one cached position more per step


def test_state_and_memory_reorder_by_beam_index() -> None:
    model = model_for(copy=True, coverage=True)
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=1)
    memory, state = model.encode(batch, coverage=True)
    tokens = torch.tensor([5, 6, 7])
    state = model.decode_step(tokens, memory, state).state  # a state with history
    index = torch.tensor([2, 0, 0, 1])
    reordered = model.decode_step(tokens[index], memory.index_select(index), state.index_select(index))
    reference = model.decode_step(tokens, memory, state)
    torch.testing.assert_close(reordered.log_probs, reference.log_probs[index])
    torch.testing.assert_close(reordered.state.coverage, reference.state.coverage[index])
    for reordered_keys, keys in zip(reordered.state.keys, reference.state.keys):
        torch.testing.assert_close(reordered_keys, keys[index])


@pytest.mark.parametrize("variant", ["plain", "copy"])
def test_padding_gets_no_attention_and_changes_nothing(variant: str) -> None:
    model = model_for(**VARIANTS[variant])
    batch = teacher_forced_batch()
    out = model(batch)
    assert out.token_loss.shape == (3, 5) and out.attention.shape == (3, 5, 7)
    assert (out.token_loss[~batch.tgt_mask] == 0).all() and (out.token_loss[batch.tgt_mask] > 0).all()
    assert (out.attention.masked_select(~batch.src_mask[:, None, :].expand_as(out.attention)) == 0).all()
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, 5))
    g = torch.Generator().manual_seed(1)
    for name, mask in (("src", batch.src_mask), ("src_ext", batch.src_mask), ("tgt_in", batch.tgt_mask)):
        ids = getattr(batch, name)
        setattr(batch, name, torch.where(mask, ids, torch.randint(4, V_TGT, ids.shape, generator=g)))
    changed = model(batch)
    torch.testing.assert_close(changed.token_loss, out.token_loss)
    real = batch.tgt_mask.unsqueeze(-1).expand_as(out.attention)
    torch.testing.assert_close(changed.attention[real], out.attention[real])


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_pre_and_post_norm_train(norm: str) -> None:
    model = model_for(norm=norm, copy=True).train()
    assert isinstance(model.encoder.norm, torch.nn.LayerNorm) == (norm == "pre")  # the final LayerNorm
    out = model(teacher_forced_batch(), label_smoothing=0.1)
    out.token_loss.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_label_smoothing_is_pytorch_cross_entropy() -> None:
    model = model_for()
    batch = teacher_forced_batch()
    memory, state = model.encode(batch)
    decoded, _ = model._decode(batch.tgt_in, memory, state, incremental=False)
    logits = model.output(decoded.hidden[batch.tgt_mask])
    expected = F.cross_entropy(logits, batch.tgt_out[batch.tgt_mask], label_smoothing=0.1, reduction="none")
    torch.testing.assert_close(model(batch, label_smoothing=0.1).token_loss[batch.tgt_mask], expected)


@pytest.mark.parametrize("variant", ["plain", "copy"])
@pytest.mark.parametrize(
    "options",
    [
        {"beam_size": 4, "n_best": 2},
        {"beam_size": 3, "alpha": 1.0, "beta": 0.5, "min_length": 2},
    ],
)
def test_batched_beam_equals_per_sentence_beam(variant: str, options: dict) -> None:
    model = model_for(seed=3, **VARIANTS[variant])
    batch = make_batch([9, 5, 2, 7], [1] * 4, n_oov=2)
    cfg = PredictConfig(search="beam", max_length=10, **options)
    with torch.no_grad():
        batched = beam_search(model, batch, cfg, return_attention=True)
        for i in range(batch.size):
            alone = beam_search(model, sub_batch(batch, i), cfg, return_attention=True)[0]
            assert [h.tokens for h in batched[i]] == [h.tokens for h in alone]
            for b, a in zip(batched[i], alone):
                assert b.score == pytest.approx(a.score, abs=1e-4)
                torch.testing.assert_close(b.attention[:, : a.attention.size(1)], a.attention, atol=1e-4, rtol=0)


@pytest.mark.parametrize("variant", ["plain", "copy_coverage"])
def test_greedy_search_equals_beam_of_one(variant: str) -> None:
    model = model_for(seed=3, **VARIANTS[variant])
    batch = make_batch([9, 5, 2, 7], [1] * 4, n_oov=2)
    with torch.no_grad():
        greedy = greedy_search(model, batch, PredictConfig(search="greedy", max_length=12), return_attention=True)
    beam = search(model, batch, PredictConfig(search="beam", beam_size=1, max_length=12))
    for g, b in zip(greedy, beam):
        assert g[0].tokens == b[0].tokens and g[0].log_prob == pytest.approx(b[0].log_prob, abs=1e-4)
        assert not {PAD_ID, BOS_ID, EOS_ID} & set(g[0].tokens)
        assert g[0].attention.shape == (len(g[0].tokens), 9)
        assert (g[0].p_gen is not None) == model.copies


def test_tied_and_shared_embeddings_share_storage() -> None:
    model = model_for(src_vocab_size=V_TGT, share_embeddings=True, tie_output=True)
    assert model.src_embeddings is model.tgt_embeddings
    assert model.output.weight is model.tgt_embeddings.table.weight
    assert model.output.weight.data_ptr() == model.src_embeddings.table.weight.data_ptr()
    separate = model_for()
    assert separate.src_embeddings.table.weight.data_ptr() != separate.tgt_embeddings.table.weight.data_ptr()
    assert separate.output.weight.data_ptr() != separate.tgt_embeddings.table.weight.data_ptr()


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"model.d_model: 30 must be divisible by model.heads \(4\)"):
        TransformerModel(TransformerOptions(d_model=30, heads=4), V_SRC, V_TGT)
    with pytest.raises(ConfigError, match=r"model.share_embeddings needs one vocabulary \(vocab.shared"):
        TransformerModel(TransformerOptions(share_embeddings=True), V_SRC, V_TGT)
    with pytest.raises(ConfigError, match="model.coverage: needs model.copy"):
        TransformerModel(TransformerOptions(coverage=True), V_SRC, V_TGT)


def test_learned_positions_beyond_max_positions() -> None:
    model = model_for(positions="learned", max_positions=6)
    with pytest.raises(ConfigError, match=r"a sequence of 7 tokens is longer than model.max_positions \(6\)"):
        model(make_batch([7, 2], [3, 1]))
    memory, state = model.encode(make_batch([6, 2], [3, 1]))
    for _ in range(6):
        state = model.decode_step(torch.tensor([BOS_ID, BOS_ID]), memory, state).state
    with pytest.raises(ConfigError, match="a sequence of 7 tokens"):
        model.decode_step(torch.tensor([4, 4]), memory, state)


def test_copy_distribution_sums_to_one_and_never_nan() -> None:
    model = model_for(copy=True)
    batch = teacher_forced_batch()
    memory, state = model.encode(batch)
    step = model.decode_step(torch.tensor([BOS_ID] * 3), memory, state)
    assert step.log_probs.shape == (3, V_TGT + 2)
    torch.testing.assert_close(step.log_probs.exp().sum(-1), torch.ones(3), atol=1e-5, rtol=0)
    model.train()
    for bias in (100.0, -100.0):  # p_gen saturated at 1, then at 0: log(0) must not appear
        with torch.no_grad():
            model.copy_head.switch.bias.fill_(bias)
        out = model(batch)
        out.token_loss.sum().backward()
        assert torch.isfinite(out.token_loss).all()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        model.zero_grad()


def test_copied_word_fed_back_becomes_unk() -> None:
    model = model_for(copy=True)
    memory, state = model.encode(make_batch([7, 4, 2], [5, 3, 1], n_oov=2))
    copied = model.decode_step(torch.tensor([V_TGT, V_TGT + 1, 4]), memory, state)
    unk = model.decode_step(torch.tensor([UNK_ID, UNK_ID, 4]), memory, state)
    torch.testing.assert_close(copied.log_probs, unk.log_probs)


def test_coverage_loss_and_switch() -> None:
    batch = teacher_forced_batch()
    model = model_for(copy=True, coverage=True, coverage_from_step=100)
    assert (model.coverage_from_step, model.coverage_weight) == (100, 1.0)
    assert model_for(copy=True).coverage_from_step is None
    assert model(batch).coverage_loss is None
    out = model(batch, coverage=True)
    assert (out.coverage_loss[:, 0] == 0).all()  # nothing covered before the first step
    assert (out.coverage_loss[~batch.tgt_mask] == 0).all()
    assert (out.coverage_loss[:, 1:][batch.tgt_mask[:, 1:]] > 0).all()
    with torch.no_grad():
        model.copy_head.coverage_scale.zero_()  # as at initialisation: switching coverage on changes no output
    torch.testing.assert_close(model(batch, coverage=True).token_loss, model(batch).token_loss)


# ---------------------------------------------------------------------------------------------
# Learning: a minimal training loop on synthetic tasks, decoded with greedy_search
# ---------------------------------------------------------------------------------------------


def example(src: list[int], tgt: list[int], tgt_vocab_size: int) -> EncodedExample:
    """Source ids >= tgt_vocab_size are out of the target vocabulary: extended ids, as in batching."""
    oovs = list(dict.fromkeys(w for w in src if w >= tgt_vocab_size))
    extended = [w if w < tgt_vocab_size else tgt_vocab_size + oovs.index(w) for w in src + tgt]
    return EncodedExample(
        array("i", src),
        array("i", extended[: len(src)]),
        [str(w) for w in oovs],
        array("i", [w if w < tgt_vocab_size else UNK_ID for w in tgt]),
        array("i", extended[len(src) :]),
    )


def train_and_decode(task, copy: bool, steps: int, src_vocab_size: int, tgt_vocab_size: int):
    """Train a d_model 32, 2 + 2 layer model with Adam on random sentences of ``task``; greedy
    outputs and references (extended ids) of 100 held-out sentences."""
    torch.manual_seed(0)
    rng = random.Random(0)

    def batch_of(n: int, rng: random.Random) -> tuple[Batch, list[list[int]]]:
        sources = [[rng.randrange(4, src_vocab_size) for _ in range(rng.randint(3, 8))] for _ in range(n)]
        examples = [example(s, task(s), tgt_vocab_size) for s in sources]
        return collate(examples, range(n)), [list(e.tgt_ext) for e in examples]

    options = TransformerOptions(
        d_model=32,
        heads=4,
        ff_size=64,
        encoder_layers=2,
        decoder_layers=2,
        dropout=0.0,
        attention_dropout=0.0,
        copy=copy,
    )
    model = TransformerModel(options, src_vocab_size, tgt_vocab_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small gains nothing from more, and loses much on busy cores
    try:
        for _ in range(steps):
            batch, _ = batch_of(32, rng)
            loss = model(batch).token_loss.sum() / batch.tgt_mask.sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        batch, references = batch_of(100, random.Random(1))
        with torch.no_grad():
            hypotheses = greedy_search(model, batch, PredictConfig(search="greedy", max_length=12))
    finally:
        torch.set_num_threads(threads)
    return [h[0].tokens for h in hypotheses], references


def exact_match(outputs: list[list[int]], references: list[list[int]]) -> float:
    return sum(o == r for o, r in zip(outputs, references)) / len(references)


def test_learns_to_reverse() -> None:
    outputs, references = train_and_decode(
        lambda s: s[::-1], copy=False, steps=300, src_vocab_size=14, tgt_vocab_size=14
    )
    assert exact_match(outputs, references) >= 0.9


def test_copy_model_reproduces_out_of_vocabulary_words_the_plain_model_cannot() -> None:
    """Copy a sentence of 40 words, 30 of them outside the 10-word target vocabulary."""
    copy, references = train_and_decode(list, copy=True, steps=200, src_vocab_size=44, tgt_vocab_size=14)
    assert sum(any(w >= 14 for w in r) for r in references) > 90  # nearly every sentence has OOV words
    assert exact_match(copy, references) >= 0.9
    assert not any(UNK_ID in tokens for tokens in copy)
    plain, _ = train_and_decode(list, copy=False, steps=200, src_vocab_size=44, tgt_vocab_size=14)
    assert exact_match(plain, references) < 0.1
    assert sum(UNK_ID in tokens for tokens in plain) > 90


def test_the_family_is_a_registered_part_with_its_own_options(tmp_path) -> None:
    """model.type: transformer takes its own options, refuses the RNN family's, checks d_model and heads."""
    from s2s.config import Config, override
    from s2s.model import build_model

    cfg = override(Config(), "model.type=transformer", "model.d_model=16", "model.heads=2", "model.copy=true")
    assert isinstance(cfg.model, TransformerOptions) and cfg.model.ff_size == 1024
    model = build_model(cfg.model, ["<pad>", "<unk>", "<s>", "</s>", "a"], ["<pad>", "<unk>", "<s>", "</s>"])
    assert isinstance(model, TransformerModel) and model.copies
    refused = r"model.input_feeding: unknown option of model 'transformer' \(options: d_model"
    with pytest.raises(ConfigError, match=refused):
        override(Config(), "model.type=transformer", "model.input_feeding=true")
    with pytest.raises(ConfigError, match=r"model.d_model: 16 must be divisible by model.heads \(3\)"):
        override(Config(), "model.type=transformer", "model.d_model=16", "model.heads=3")
    with pytest.raises(ConfigError, match="model.share_embeddings: needs one vocabulary"):
        override(Config(), "model.type=transformer", "model.share_embeddings=true")
