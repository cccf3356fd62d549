"""The gradient-flow profile (s2s.gradflow) and its TensorBoard image (train.log_gradient_flow)."""

from __future__ import annotations

import pytest
import torch

from s2s.gradflow import encoder_outputs, figure_pixels, profile_figure, time_step_profile

from test_model import make_batch, model_for


def test_profile_is_the_gradient_norm_at_each_source_position() -> None:
    model = model_for(encoder__type="rnn", encoder__bidirectional=False, decoder__rnn="rnn")
    batch = make_batch([6, 3], [4, 2])
    profile = time_step_profile(model, batch)
    assert all(p.grad is None for p in model.parameters())  # the parameters' gradients are untouched
    # the same numbers by hand: the gradient of the loss with respect to the encoder's outputs
    outputs = []
    handle = model.encoder.register_forward_hook(lambda module, inputs, output: outputs.append(output[0]))
    out = model(batch)
    handle.remove()
    (grad,) = torch.autograd.grad(out.token_loss.sum() / batch.tgt_mask.sum(), outputs[0])
    norms = grad.norm(dim=-1)  # (batch, src_len)
    expected = torch.cat([norms[:, :3].mean(0), norms[0, 3:]])  # positions 4..6: only the first row
    torch.testing.assert_close(profile, expected)


def test_profile_figure_is_an_image() -> None:
    pytest.importorskip("matplotlib")
    fig = profile_figure({"a": [1.0, 0.1, 0.01]}, {"a": [3.0, 2.0]}, {"a": [5.0, 50.0]}, title="t")
    pixels = figure_pixels(fig)
    assert pixels.dtype == torch.uint8 and pixels.shape[0] == 3 and pixels.shape[2] > pixels.shape[1] > 100
    assert pixels.float().std() > 10  # lines and labels, not a blank canvas


def test_training_logs_the_profile_at_each_evaluation(train_toy) -> None:
    pytest.importorskip("matplotlib")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train_toy("reverse", "train.log_gradient_flow=true", "train.max_steps=20", "train.eval_every=10")
    events = EventAccumulator(str(run.result.output_dir / "tensorboard"))
    events.Reload()
    images = events.Images("dev/gradient_flow")
    assert [image.step for image in images] == [10, 20]


def test_inputs_are_captured_with_their_gradient() -> None:
    """encoder_outputs(inputs=True): the embedded source x, whose gradient the recurrence carries."""
    model = model_for(encoder__type="lstm", encoder__bidirectional=False)
    batch = make_batch([5, 2], [3, 2])
    with encoder_outputs(model, inputs=True) as captured:
        out = model(batch)
        out.token_loss.sum().backward()
    (x,) = captured
    assert x.shape == (2, 5, 6) and x.grad is not None
    assert (x.grad[1, 2:] == 0).all() and (x.grad[1, :2] != 0).any()  # padding gets no gradient
