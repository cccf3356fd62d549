"""The lecture's additions to the RNN family (recurrence.py): the plain RNN's options, residual
stacks, recurrent initialization and layer normalization, each pinned to its formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from s2s.config import from_dict
from s2s.encoders import RNNEncoderOptions
from s2s.errors import ConfigError
from s2s.kernels import RNNSteps
from s2s.recurrence import LayerNormCell, RecurrenceOptions, make_rnn
from s2s.registry import ENCODERS

from test_model import make_batch, model_for


def test_residual_encoder_adds_each_upper_layers_input() -> None:
    """x_{l+1} = RNN_l(x_l) + x_l from the second layer on, each layer run alone."""
    torch.manual_seed(0)
    options = RNNEncoderOptions(type="lstm", hidden_size=4, num_layers=3, bidirectional=True, residual=True)
    encoder = ENCODERS.build(options, input_size=5).eval()
    x = torch.randn(3, 6, 5)
    lengths = torch.tensor([6, 6, 6])
    outputs, (h, _) = encoder(x, lengths)
    expected, finals = x, []
    for layer in range(3):
        single = torch.nn.LSTM(expected.size(2), 4, batch_first=True, bidirectional=True)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            for suffix in ("", "_reverse"):
                getattr(single, f"{name}_l0{suffix}").data = getattr(encoder.rnn, f"{name}_l{layer}{suffix}").data
        out, (h_layer, _) = single(expected)
        expected = out + expected if layer > 0 else out
        finals.append(h_layer)
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(h, torch.cat(finals))  # the state a layer carries is its own, no residual


def test_residual_decoder_step_adds_the_input_of_upper_layers() -> None:
    torch.manual_seed(0)
    rnn = make_rnn("gru", 4, 4, RecurrenceOptions(), num_layers=3)
    x, h = torch.randn(2, 4), torch.randn(3, 2, 4)
    steps = RNNSteps(rnn, 4, residual=True)
    top, state = steps.step(steps.project_known(x), None, h)
    below, expected_h = x, []
    for layer in range(3):
        cell = torch.nn.GRUCell(4, 4)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data = getattr(rnn, f"{name}_l{layer}").data
        out = cell(below, h[layer])
        expected_h.append(out)
        below = out + below if layer > 0 else out
    torch.testing.assert_close(top, below)
    torch.testing.assert_close(state, torch.stack(expected_h))


def test_residual_or_layer_norm_decoder_leaves_the_fast_path_and_decodes_as_it_trains() -> None:
    for change in ({"decoder__residual": True, "decoder__num_layers": 2}, {"decoder__layer_norm": True}):
        model = model_for(attention__type="luong_dot", decoder__input_feeding=False, decoder__rnn="lstm", **change)
        assert not model.decoder.fast_path
        batch = make_batch([5, 3], [4, 2])
        memory, state = model.encode(batch)
        forced = model.decoder(batch.tgt_in, memory, state)
        for t in range(batch.tgt_in.size(1)):
            out, state = model.decoder.step(model.tgt_embeddings(batch.tgt_in[:, t]), memory, state)
            torch.testing.assert_close(out.hidden[:, 0], forced.hidden[:, t])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_recurrent_init(cell: str) -> None:
    torch.manual_seed(0)
    eye = torch.eye(6)
    identity = make_rnn(cell, 3, 6, RecurrenceOptions(recurrent_init="identity"), num_layers=2, bidirectional=True)
    orthogonal = make_rnn(cell, 3, 6, RecurrenceOptions(recurrent_init="orthogonal"), num_layers=2)
    default = make_rnn(cell, 3, 6, RecurrenceOptions(), num_layers=2)
    for name, weight in identity.named_parameters():
        if name.startswith("weight_hh"):
            assert all(torch.equal(block, eye) for block in weight.split(6))
        if name.startswith("bias"):
            assert (weight == 0).all()
    for rnn in (orthogonal, default):
        blocks = [b for n, w in rnn.named_parameters() if n.startswith("weight_hh") for b in w.split(6)]
        close = [torch.allclose(b @ b.t(), eye, atol=1e-5) for b in blocks]
        assert all(close) if rnn is orthogonal else not any(close)


def test_layer_norm_lstm_step_is_ba_et_al() -> None:
    """gates = LN_x(W_x x + b) + LN_h(W_h h); c' = f c + i g; h' = o tanh(LN_c(c'))."""
    torch.manual_seed(0)
    rnn = make_rnn("lstm", 3, 5, RecurrenceOptions())
    norm = LayerNormCell("lstm", 5)
    for p in norm.parameters():  # gains and biases away from 1 and 0, so that each one counts
        p.data.uniform_(0.5, 1.5)
    x, h, c = torch.randn(2, 3), torch.randn(1, 2, 5), torch.randn(1, 2, 5)
    steps = RNNSteps(rnn, 3, norms=torch.nn.ModuleList([norm]))
    top, (h1, c1) = steps.step(steps.project_known(x), None, (h, c))
    gates = norm.input(x @ rnn.weight_ih_l0.t() + rnn.bias_ih_l0 + rnn.bias_hh_l0) + norm.recurrent(
        h[0] @ rnn.weight_hh_l0.t()
    )
    i, f, g, o = gates.chunk(4, dim=1)
    cell = torch.sigmoid(f) * c[0] + torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(c1[0], cell)
    torch.testing.assert_close(top, torch.sigmoid(o) * torch.tanh(norm.cell(cell)))
    torch.testing.assert_close(h1[0], top)
    # a plain RNN's step: act(LN_x(W_x x + b) + LN_h(W_h h))
    relu = make_rnn("rnn", 3, 5, RecurrenceOptions(nonlinearity="relu"))
    norm = LayerNormCell("rnn", 5)
    steps = RNNSteps(relu, 3, norms=torch.nn.ModuleList([norm]))
    top, _ = steps.step(steps.project_known(x), None, h)
    pre = norm.input(F.linear(x, relu.weight_ih_l0, relu.bias_ih_l0 + relu.bias_hh_l0)) + norm.recurrent(
        h[0] @ relu.weight_hh_l0.t()
    )
    torch.testing.assert_close(top, torch.relu(pre))


def test_nonlinearity_only_for_the_plain_rnn() -> None:
    with pytest.raises(ConfigError, match=r"model\.encoder\.nonlinearity: applies only to the plain RNN"):
        from_dict({"model": {"encoder": {"type": "gru", "nonlinearity": "relu"}}})
    with pytest.raises(ConfigError, match=r"model\.decoder\.nonlinearity"):
        from_dict({"model": {"decoder": {"rnn": "lstm", "nonlinearity": "relu"}}})
    cfg = from_dict({"model": {"encoder": {"type": "rnn", "nonlinearity": "relu"}, "decoder": {"rnn": "rnn"}}})
    assert cfg.model.encoder.nonlinearity == "relu"
