#!/usr/bin/env python3
"""The RNN lecture's picture: how the gradient reaches each time step, per cell.

    python scripts/gradient_flow.py [--out docs/gradient_flow.png] [--steps 600] [--length 50 60]

Trains each of the lecture's cells (plain RNN with tanh, with and without gradient clipping;
plain ReLU RNN with default and with identity init; GRU; LSTM) as s2s encoder and decoder
(models built from the same options as ``s2s train``'s) on the reverse task with sequences of
--length tokens, and records at every step the loss, the global gradient norm (before
clipping) and ||dL/dh_t|| for every encoder time step t (s2s.gradflow). Attention lets the
gradient reach every h_t directly, so the lecture's own picture, the gradient carried back
through the recurrence alone, is measured too: ||dL/dx_t|| at the encoder's inputs of the same
untrained models with attention "none" (registered here as a part of our own: a zero context,
so the decoder sees the source only through the final state, as in Sutskever et al. 2014),
over --early batches. Draws one
PNG: both profiles on a log scale, the loss curves and the global norms; prints the numbers and
writes them as JSON beside the PNG. About 70 s on 2 quiet CPU cores (docs/gradients.md).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from array import array
from pathlib import Path

import torch
from torch import Tensor

from s2s.attention import Attention
from s2s.batching import EncodedExample, collate
from s2s.config import from_dict
from s2s.gradflow import encoder_outputs, norms_by_time_step, profile_figure
from s2s.model import build_model
from s2s.registry import ATTENTIONS
from s2s.vocabulary import SPECIALS

ROOT = Path(__file__).resolve().parents[1]

# label -> (cell, recurrence options, clip_grad_norm)
CELLS = {
    "rnn tanh": ("rnn", {}, 5.0),
    "rnn tanh, no clipping": ("rnn", {}, 0.0),
    "rnn relu": ("rnn", {"nonlinearity": "relu"}, 5.0),
    "rnn relu, identity init (IRNN)": ("rnn", {"nonlinearity": "relu", "recurrent_init": "identity"}, 5.0),
    "gru": ("gru", {}, 5.0),
    "lstm": ("lstm", {}, 5.0),
}


@ATTENTIONS.register("none")
class NoAttention(Attention):
    """Attends to nothing: a zero context and uniform weights, so no gradient reaches the encoder
    outputs but through the final state (the bridge) and the recurrence."""

    parallel = True

    def __init__(self, cfg: object, *, query_size: int, key_size: int, coverage: bool = False) -> None:
        super().__init__()

    def forward(
        self, query: Tensor, keys: Tensor, proj_keys: Tensor, mask: Tensor, coverage: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        weights = (mask / mask.sum(-1, keepdim=True)).unsqueeze(1).expand(-1, query.size(1), -1)
        return keys.new_zeros(keys.size(0), query.size(1), keys.size(2)), weights  # (batch, queries, key)

    def precompute(self, keys: Tensor) -> Tensor:
        return keys


def model_options(cell: str, recurrence: dict, hidden: int, attention: str = "luong_general") -> dict:
    """A unidirectional encoder (the gradient reaches t = 1 only backwards through time) and a
    decoder of the same cell; Luong attention without input feeding: the fused fast path."""
    return {
        "embeddings": {"size": 32},
        "encoder": {"type": cell, "hidden_size": hidden, "bidirectional": False, **recurrence},
        "bridge": "linear",
        "attention": {"type": attention},
        "decoder": {"rnn": cell, "hidden_size": hidden, "input_feeding": False, **recurrence},
    }


def reverse_batches(vocab: int, lengths: tuple[int, int], batch_size: int, seed: int):
    """Endless batches of the reverse task: random digit sequences, the target reversed."""
    rng = random.Random(seed)
    ids = lambda tokens: array("i", tokens)  # noqa: E731
    while True:
        examples = []
        for _ in range(batch_size):
            src = [len(SPECIALS) + rng.randrange(vocab) for _ in range(rng.randint(*lengths))]
            examples.append(EncodedExample(ids(src), ids(src), [], ids(src[::-1]), ids(src[::-1])))
        yield collate(examples, list(range(batch_size)))


def recurrence_profile(label: str, args: argparse.Namespace, tokens: list[str]) -> list[float]:
    """||dL/dx_t|| through the recurrence alone (attention none), untrained, over --early batches."""
    cell, recurrence, _ = CELLS[label]
    torch.manual_seed(args.seed)
    cfg = from_dict({"model": model_options(cell, recurrence, args.hidden, "none"), "vocab": {"shared": True}})
    model = build_model(cfg.model, tokens, tokens).train()
    batches = reverse_batches(args.vocab, tuple(args.length), args.batch_size, args.seed)
    profiles = []
    for _ in range(args.early):
        batch = next(batches)
        with encoder_outputs(model, inputs=True) as captured:
            out = model(batch)
            (out.token_loss.sum() / batch.tgt_mask.sum()).backward()
        model.zero_grad(set_to_none=True)
        profiles.append(norms_by_time_step(captured[0].grad, batch.src_mask))
    return [float(x) for x in torch.stack(profiles).mean(0)[: args.length[0]]]


def train_cell(label: str, args: argparse.Namespace, tokens: list[str]) -> dict:
    cell, recurrence, clip = CELLS[label]
    torch.manual_seed(args.seed)
    cfg = from_dict({"model": model_options(cell, recurrence, args.hidden), "vocab": {"shared": True}})
    model = build_model(cfg.model, tokens, tokens).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = reverse_batches(args.vocab, tuple(args.length), args.batch_size, args.seed)
    losses, norms, profiles = [], [], []
    for _ in range(args.steps):
        batch = next(batches)
        with encoder_outputs(model) as captured:
            out = model(batch)
            loss = out.token_loss.sum() / batch.tgt_mask.sum()
            loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else float("inf"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        norms.append(float(norm))
        profiles.append(norms_by_time_step(captured[0].grad, batch.src_mask))
    early = torch.stack(profiles[: args.early]).mean(0)  # (src_len,) over the first steps
    finite = [x for x in losses if math.isfinite(x)]
    return {
        "profile": [float(x) for x in early[: args.length[0]]],  # the positions every sequence has
        "loss": losses,
        "grad_norm": norms,
        "final_loss": sum(finite[-20:]) / max(len(finite[-20:]), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gradient_flow.png")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--early", type=int, default=20, help="steps the plotted profile averages over")
    parser.add_argument("--length", type=int, nargs=2, default=[50, 60], metavar=("MIN", "MAX"))
    parser.add_argument("--vocab", type=int, default=10, help="distinct digits")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", help="run only the cells whose label contains this")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokens = list(SPECIALS) + [str(k) for k in range(args.vocab)]
    results, start = {}, time.perf_counter()
    for label in CELLS:
        if args.only and args.only not in label:
            continue
        began = time.perf_counter()
        results[label] = r = train_cell(label, args, tokens) | {"recurrence": recurrence_profile(label, args, tokens)}
        print(
            f"{label:32s} loss {r['final_loss']:.3f} (last 20 steps) | dL/dh_t t=1 {r['profile'][0]:.2e} "
            f"t=T {r['profile'][-1]:.2e}, dL/dx_t through the recurrence t=1 {r['recurrence'][0]:.2e} "
            f"t=T {r['recurrence'][-1]:.2e} | max global norm {max(r['grad_norm']):.1e} | "
            f"{time.perf_counter() - began:.0f} s",
            file=sys.stderr,
        )
    fig = profile_figure(
        {
            "||dL/dx_t||, through the recurrence only (log)": {k: r["recurrence"] for k, r in results.items()},
            "||dL/dh_t||, with attention (log)": {k: r["profile"] for k, r in results.items()},
        },
        {label: r["loss"] for label, r in results.items()},
        {label: r["grad_norm"] for label, r in results.items()},
        title=f"reverse, {args.length[0]}-{args.length[1]} tokens: the gradient reaching each encoder step "
        f"(mean of the first {args.early} updates), the loss and the global gradient norm",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    args.out.with_suffix(".json").write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, **results}))
    print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
