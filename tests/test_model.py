"""Unit tests of the model zoo: shapes, masks, packing, fast path, incremental decoding."""

from __future__ import annotations

import itertools

import pytest
import torch

from s2s.attention import AdditiveAttentionOptions
from s2s.batching import Batch
from s2s.bridge import Bridge
from s2s.config import from_dict
from s2s.embeddings import Embeddings, load_pretrained
from s2s.encoders import RNNEncoderOptions
from s2s.errors import ConfigError
from s2s.model import build_model
from s2s.options import PartOptions
from s2s.registry import ATTENTIONS, ENCODERS
from s2s.rnn import RNNModelOptions, Seq2Seq

V_SRC, V_TGT = 23, 19


def make_batch(src_lengths: list[int], tgt_lengths: list[int], n_oov: int = 0, seed: int = 0) -> Batch:
    """A random padded batch; with n_oov, some source positions hold extended ids V_TGT + k."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(src_lengths)
    src_mask = torch.arange(max(src_lengths))[None] < lengths[:, None]
    src = torch.randint(4, V_SRC, src_mask.shape, generator=g) * src_mask
    src_ext = torch.randint(4, V_TGT + n_oov, src_mask.shape, generator=g) * src_mask
    tgt_mask = torch.arange(max(tgt_lengths))[None] < torch.tensor(tgt_lengths)[:, None]
    tgt_in = torch.randint(4, V_TGT, tgt_mask.shape, generator=g) * tgt_mask
    tgt_in[:, 0] = 2  # <s>
    tgt_out_ext = torch.randint(4, V_TGT + n_oov, tgt_mask.shape, generator=g) * tgt_mask
    tgt_out = tgt_out_ext.masked_fill(tgt_out_ext >= V_TGT, 1)
    oovs = [[f"oov{k}" for k in range(n_oov)] for _ in src_lengths]
    return Batch(
        src, lengths, src_mask, src_ext, oovs, list(range(len(src_lengths))), tgt_in, tgt_out, tgt_out_ext, tgt_mask
    )


def small_config(**changes: str | int | bool) -> RNNModelOptions:
    """The RNN family's options, small; ``section__key=value`` (``key__=value``) changes them, through the config."""
    model: dict = {"embeddings": {"size": 6}, "encoder": {"hidden_size": 8}, "decoder": {"hidden_size": 16}}
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        if key:
            model.setdefault(section, {})[key] = value
        else:
            model[section] = value
    return from_dict({"model": model, "vocab": {"shared": True}}).model


def model_for(seed: int = 0, **changes) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(small_config(**changes), V_SRC, V_TGT).eval()


ATTENTION_TYPES = ["bahdanau", "luong_concat", "luong_general", "luong_dot"]


@pytest.mark.parametrize(
    "attention,decoder", list(itertools.product(ATTENTION_TYPES, ["attention", "pointer_generator"]))
)
def test_forward_shapes_and_padding(attention: str, decoder: str) -> None:
    model = model_for(attention__type=attention, decoder__type=decoder)
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=2 if decoder == "pointer_generator" else 0)
    out = model(batch)
    assert out.token_loss.shape == (3, 5)
    assert (out.token_loss[~batch.tgt_mask] == 0).all()
    assert (out.token_loss[batch.tgt_mask] > 0).all()
    assert out.attention.shape == (3, 5, 7)
    # padding never receives attention; real source positions share all of it
    assert (out.attention.masked_select(~batch.src_mask[:, None, :].expand_as(out.attention)) == 0).all()
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, 5))
    assert (out.p_gen is not None) == (decoder == "pointer_generator")
    out.token_loss.sum().backward()  # gradients flow through every path


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("packed", [True, False])
def test_encoder_ignores_padding(kind: str, packed: bool) -> None:
    """An example encoded inside a padded batch equals the same example encoded alone."""
    torch.manual_seed(0)
    encoder = ENCODERS.build(RNNEncoderOptions(type=kind, hidden_size=5, num_layers=2), input_size=4).eval()
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 3, 1])
    outputs, final = encoder(x, lengths, packed=packed)
    alone, alone_final = encoder(x[1:2, :3], lengths[1:2], packed=packed)
    torch.testing.assert_close(outputs[1:2, :3], alone)
    assert (outputs[1, 3:] == 0).all()
    h, h_alone = (final[0], alone_final[0]) if kind == "lstm" else (final, alone_final)
    torch.testing.assert_close(h[:, 1:2], h_alone)


@pytest.mark.parametrize("kind,nonlinearity", [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu")])
@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, True), (2, False)])
def test_segmented_encoder_equals_packed_sequences(
    kind: str, nonlinearity: str, layers: int, bidirectional: bool
) -> None:
    """The CPU path (fused kernel a segment of time at a time) gives PyTorch's packed-sequence
    outputs, final states and gradients."""
    torch.manual_seed(0)
    options = RNNEncoderOptions(
        type=kind, hidden_size=7, num_layers=layers, bidirectional=bidirectional, nonlinearity=nonlinearity
    )
    encoder = ENCODERS.build(options, input_size=5)
    x = torch.randn(6, 9, 5, requires_grad=True)
    lengths = torch.tensor([9, 3, 9, 1, 5, 3])
    results = []
    for packed in (True, False):
        outputs, final = encoder(x, lengths, packed=packed)
        finals = final if isinstance(final, tuple) else (final,)
        grad = torch.autograd.grad(outputs.sum() + sum(f.pow(2).sum() for f in finals), x)[0]
        results.append((outputs, finals, grad))
    (o1, f1, g1), (o2, f2, g2) = results
    torch.testing.assert_close(o1, o2)
    for a, b in zip(f1, f2):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("attention", ["luong_dot", "luong_general"])
@pytest.mark.parametrize("rnn,nonlinearity", [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu")])
@pytest.mark.parametrize("layers", [1, 2])
def test_fast_path_equals_step_path(attention: str, rnn: str, nonlinearity: str, layers: int) -> None:
    """The fused RNN over the whole target equals the step-by-step recurrence (kernels.RNNSteps)."""
    model = model_for(
        attention__type=attention,
        decoder__input_feeding=False,
        decoder__rnn=rnn,
        decoder__nonlinearity=nonlinearity,
        decoder__num_layers=layers,
    )
    assert model.decoder.fast_path
    batch = make_batch([7, 4, 2], [5, 3, 1])
    memory, state = model.encode(batch)
    fast = model.decoder(batch.tgt_in, memory, state, fast_path=True)
    slow = model.decoder(batch.tgt_in, memory, state, fast_path=False)
    torch.testing.assert_close(fast.hidden, slow.hidden)
    torch.testing.assert_close(fast.attention, slow.attention)


def test_fast_path_only_where_it_applies() -> None:
    assert not model_for(attention__type="luong_general").decoder.fast_path  # input feeding
    assert not model_for(attention__type="bahdanau", decoder__input_feeding=False).decoder.fast_path


@pytest.mark.parametrize(
    "decoder,coverage", [("attention", False), ("pointer_generator", False), ("pointer_generator", True)]
)
def test_decode_step_matches_teacher_forcing(decoder: str, coverage: bool) -> None:
    """Feeding the gold tokens one step at a time gives forward()'s losses exactly."""
    model = model_for(decoder__type=decoder, decoder__coverage=coverage)
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=2)
    batch.tgt_out_ext[0, 1] = V_TGT  # a copied word, fed back as the next input
    batch.tgt_out[0, 1] = 1
    batch.tgt_in[:, 1:] = batch.tgt_out[:, :-1]  # teacher forcing feeds the previous target
    out = model(batch, coverage=coverage)
    memory, state = model.encode(batch, coverage=coverage)
    target = batch.tgt_out_ext if model.copies else batch.tgt_out
    fed_back = torch.cat([batch.tgt_in[:, :1], batch.tgt_out_ext[:, :-1]], dim=1)  # extended ids
    for t in range(batch.tgt_in.size(1)):
        step = model.decode_step(fed_back[:, t], memory, state)
        state = step.state
        nll = -step.log_probs.gather(1, target[:, t : t + 1]).squeeze(1)
        live = batch.tgt_mask[:, t]
        torch.testing.assert_close(nll[live], out.token_loss[live, t], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(step.attention[live], out.attention[live, t])


@pytest.mark.parametrize("decoder", ["attention", "pointer_generator"])
def test_state_reorder_by_beam_index(decoder: str) -> None:
    model = model_for(decoder__type=decoder, decoder__coverage=True)
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=1)
    memory, state = model.encode(batch, coverage=True)
    tokens = torch.tensor([5, 6, 7])
    state = model.decode_step(tokens, memory, state).state  # a state with history
    index = torch.tensor([2, 0, 0, 1])
    reordered = model.decode_step(tokens[index], memory.index_select(index), state.index_select(index))
    reference = model.decode_step(tokens, memory, state)
    torch.testing.assert_close(reordered.log_probs, reference.log_probs[index])
    torch.testing.assert_close(reordered.state.coverage, reference.state.coverage[index])


def test_pointer_generator_distribution_sums_to_one_and_never_nan() -> None:
    model = model_for(decoder__type="pointer_generator")
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=3)
    memory, state = model.encode(batch)
    step = model.decode_step(torch.tensor([2, 2, 2]), memory, state)
    assert step.log_probs.shape == (3, V_TGT + 3)
    torch.testing.assert_close(step.log_probs.exp().sum(-1), torch.ones(3), atol=1e-5, rtol=0)
    for bias in (100.0, -100.0):  # p_gen saturated at 1, then at 0: log(0) must not appear
        with torch.no_grad():
            model.decoder.switch.bias.fill_(bias)
        model.train()
        out = model(batch)
        out.token_loss.sum().backward()
        assert torch.isfinite(out.token_loss).all()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        model.zero_grad()


def test_copied_word_fed_back_becomes_unk() -> None:
    model = model_for(decoder__type="pointer_generator")
    batch = make_batch([7, 4, 2], [5, 3, 1], n_oov=2)
    memory, state = model.encode(batch)
    copied = model.decode_step(torch.tensor([V_TGT, V_TGT + 1, 4]), memory, state)
    unk = model.decode_step(torch.tensor([1, 1, 4]), memory, state)
    torch.testing.assert_close(copied.log_probs, unk.log_probs)


def test_coverage_loss_starts_at_zero_and_is_masked() -> None:
    model = model_for(decoder__type="pointer_generator", decoder__coverage=True)
    batch = make_batch([7, 4, 2], [5, 3, 1])
    out = model(batch, coverage=True)
    assert out.coverage_loss is not None
    assert (out.coverage_loss[:, 0] == 0).all()  # nothing covered before the first step
    assert (out.coverage_loss[~batch.tgt_mask] == 0).all()
    assert (out.coverage_loss[:, 1:][batch.tgt_mask[:, 1:]] > 0).all()
    assert model(batch, coverage=False).coverage_loss is None


def test_coverage_from_later_step_starts_off() -> None:
    model = model_for(decoder__type="pointer_generator", decoder__coverage=True, decoder__coverage_from_step=100)
    assert not model.coverage_at(0) and not model.coverage_at(99) and model.coverage_at(100)
    assert model(make_batch([3], [2]), coverage=model.coverage_at(0)).coverage_loss is None
    assert model(make_batch([3], [2]), coverage=model.coverage_at(100)).coverage_loss is not None
    assert model_for(decoder__type="pointer_generator").coverage_from_step is None  # no coverage: never on


@pytest.mark.parametrize("enc,dec", list(itertools.product(["lstm", "gru", "rnn"], ["lstm", "gru", "rnn"])))
@pytest.mark.parametrize("bridge", ["concat", "linear", "zero"])
def test_bridge_maps_any_encoder_to_any_decoder(enc: str, dec: str, bridge: str) -> None:
    cfg = small_config(encoder__type=enc, encoder__num_layers=2, decoder__rnn=dec, bridge__=bridge)
    model = Seq2Seq(cfg, V_SRC, V_TGT)
    batch = make_batch([7, 4, 2], [5, 3, 1])
    _, state = model.encode(batch)
    h = state.rnn[0] if dec == "lstm" else state.rnn
    assert h.shape == (1, 3, 16)
    if bridge == "zero":
        assert (h == 0).all()
    else:
        assert h.abs().sum() > 0


def test_bridge_concat_needs_matching_sizes() -> None:
    with pytest.raises(ConfigError, match="concat needs model.decoder.hidden_size == 16"):
        Bridge(
            "concat",
            encoder_hidden=8,
            encoder_layers=1,
            encoder_directions=2,
            decoder_hidden=32,
            decoder_layers=1,
            decoder_is_lstm=True,
        )


def test_concat_bridge_copies_final_states() -> None:
    bridge = Bridge(
        "concat",
        encoder_hidden=2,
        encoder_layers=1,
        encoder_directions=2,
        decoder_hidden=4,
        decoder_layers=1,
        decoder_is_lstm=True,
    )
    h = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])  # (layers * directions = 2, batch = 1, hidden = 2)
    h0, c0 = bridge((h, -h))
    torch.testing.assert_close(h0, torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]))
    torch.testing.assert_close(c0, -h0)


def test_unknown_attention_lists_choices() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown attention 'luong' \(choices: bahdanau, luong_concat, luong_dot, luong_general\)"
    ):
        ATTENTIONS.get("luong")


def test_luong_dot_needs_matching_sizes_and_coverage_needs_additive() -> None:
    with pytest.raises(ConfigError, match="luong_dot needs"):
        Seq2Seq(small_config(attention__type="luong_dot", encoder__hidden_size=4), V_SRC, V_TGT)
    with pytest.raises(ConfigError, match="coverage needs an additive attention"):
        Seq2Seq(small_config(attention__type="luong_general", decoder__coverage=True), V_SRC, V_TGT)


def test_attention_weights_are_zero_on_padding() -> None:
    torch.manual_seed(0)
    for name in ATTENTION_TYPES:
        options = AdditiveAttentionOptions(type=name) if "bahdanau" in name or "concat" in name else PartOptions(name)
        attention = ATTENTIONS.build(options, query_size=4, key_size=4)
        keys = torch.randn(2, 5, 4)
        mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
        context, weights = attention(torch.randn(2, 3, 4), keys, attention.precompute(keys), mask)
        assert context.shape == (2, 3, 4) and weights.shape == (2, 3, 5)
        assert (weights[1, :, 2:] == 0).all()
        torch.testing.assert_close(context[1], weights[1, :, :2] @ keys[1, :2])


def test_tied_output_shares_the_embedding_matrix() -> None:
    cfg = small_config(embeddings__tie_output=True, embeddings__size=16)
    model = Seq2Seq(cfg, V_SRC, V_TGT)
    assert model.decoder.output.weight is model.tgt_embeddings.table.weight
    with pytest.raises(ConfigError, match="tie_output needs"):
        Seq2Seq(small_config(embeddings__tie_output=True), V_SRC, V_TGT)


def test_shared_source_target_embeddings() -> None:
    model = Seq2Seq(small_config(embeddings__share_source_target=True), V_SRC, V_SRC)
    assert model.src_embeddings is model.tgt_embeddings


def test_pretrained_embeddings_fill_found_rows_only(tmp_path) -> None:
    path = tmp_path / "vectors.txt"
    path.write_text("3 2\n汽车 0.5 -0.5\n发动机 1 2\nunused 9 9\n", encoding="utf-8")
    torch.manual_seed(0)
    embeddings = Embeddings(5, 2)
    before = embeddings.table.weight.detach().clone()
    found = load_pretrained(embeddings, path, ["<pad>", "<unk>", "汽车", "发动机", "刹车"], freeze=True)
    assert found == 2
    torch.testing.assert_close(embeddings.table.weight[2:4].detach(), torch.tensor([[0.5, -0.5], [1.0, 2.0]]))
    torch.testing.assert_close(embeddings.table.weight[4].detach(), before[4])  # missing word: random init kept
    assert not embeddings.table.weight.requires_grad


def test_pretrained_embeddings_size_mismatch(tmp_path) -> None:
    path = tmp_path / "vectors.txt"
    path.write_text("汽车 0.5 -0.5 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="vector of size 3"):
        load_pretrained(Embeddings(3, 2), path, ["<pad>", "<unk>", "汽车"], freeze=False)


def test_build_model_loads_pretrained_for_both_sides(tmp_path) -> None:
    path = tmp_path / "vectors.txt"
    path.write_text("汽车 " + " ".join(["0.25"] * 6) + "\n", encoding="utf-8")
    cfg = small_config(embeddings__pretrained=str(path))
    model = build_model(cfg, ["<pad>", "<unk>", "<s>", "</s>", "汽车"], ["<pad>", "<unk>", "<s>", "</s>", "汽车"])
    assert torch.allclose(model.src_embeddings.table.weight[4], torch.full((6,), 0.25))
    assert torch.allclose(model.tgt_embeddings.table.weight[4], torch.full((6,), 0.25))


def test_additive_attention_equals_the_tanh_formula() -> None:
    """The sigmoid form gives exactly the weights of softmax(v^T tanh(W_q q + W_k k + w_c c))."""
    torch.manual_seed(0)
    attention = ATTENTIONS.build(AdditiveAttentionOptions(type="bahdanau"), query_size=8, key_size=6, coverage=True)
    query, keys, coverage = torch.randn(3, 2, 8), torch.randn(3, 5, 6), torch.rand(3, 5)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 5])
    _, weights = attention(query, keys, attention.precompute(keys), mask, coverage)
    features = (
        attention.query_layer(query).unsqueeze(2)
        + attention.key_layer(keys).unsqueeze(1)
        + attention.coverage_layer(coverage.unsqueeze(-1)).unsqueeze(1)
    )
    scores = attention.energy(torch.tanh(features)).squeeze(-1).masked_fill(~mask.unsqueeze(1), float("-inf"))
    torch.testing.assert_close(weights, torch.softmax(scores, dim=-1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("with_coverage", [False, True])
def test_additive_scores_in_blocks_equal_one_block(with_coverage: bool) -> None:
    """Decoding makes the attention features a few rows at a time (kernels.additive_scores): the
    same scores as the plain computation, whatever the block size."""
    from s2s.kernels import additive_scores

    torch.manual_seed(0)
    query, keys, energy = torch.randn(7, 1, 5), torch.randn(7, 9, 5), torch.randn(1, 5)
    coverage, weight = (torch.rand(7, 9), torch.randn(5)) if with_coverage else (None, None)
    whole = additive_scores(query, keys, energy, coverage, weight)  # autograd on: one block
    features = query.unsqueeze(2) + keys.unsqueeze(1)
    if with_coverage:
        features = features + coverage[:, None, :, None] * weight
    torch.testing.assert_close(whole, (torch.sigmoid(features) @ energy.view(-1)))
    with torch.no_grad():
        for block_elements in (1, 45, 100, 10_000):  # 1 row, 1 row, 2 rows, all rows per block
            blocks = additive_scores(query, keys, energy, coverage, weight, block_elements=block_elements)
            torch.testing.assert_close(blocks, whole, rtol=1e-6, atol=1e-6)
