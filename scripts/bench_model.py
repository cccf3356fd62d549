#!/usr/bin/env python3
"""Training throughput of the benchmark model (configs/peer_spec.yaml), both decoder paths.

    python scripts/bench_model.py [--workdir .bench] [--threads 2] [--steps 220]

Runs the real trainer (`s2s train`) for --steps updates on the peer benchmark data and times
updates 21..N as the peer harness does (a timestamp after every optimizer step). Prints target
and source tokens/s, ms per update, the model's FLOPs per target token and its share of this
machine's fp32 matmul peak (measured in the same run).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import benchlib
from torch.optim.optimizer import register_optimizer_step_post_hook

from s2s.config import Config, load_config
from s2s.trainer import Trainer, train

CONFIGS = {
    "peer spec: Bahdanau + input feeding (step path)": [],
    "Luong general, no input feeding (fast path)": [
        "model.attention.type=luong_general",
        "model.decoder.input_feeding=false",
    ],
    "fast path + token-budget batches (6,000)": [
        "model.attention.type=luong_general",
        "model.decoder.input_feeding=false",
        "train.batch_size=1000",
        "train.batch_tokens=6000",
    ],
}


def time_training(cfg: Config, warmup: int = 20) -> dict[str, float]:
    """Train with ``cfg``; throughput over the updates after ``warmup``, as the peer probe counts:
    target tokens = words + </s>, source tokens = words, timestamps after optimizer steps."""
    stamps: list[float] = []
    counts: list[tuple[int, int, int]] = []
    update = Trainer.training_step

    def counting(self, batches):
        counts.append(
            (
                sum(int(b.tgt_mask.sum()) for b in batches),
                sum(int(b.src_lengths.sum()) for b in batches),
                sum(b.size for b in batches),
            )
        )
        return update(self, batches)

    Trainer.training_step = counting
    hook = register_optimizer_step_post_hook(lambda *_: stamps.append(time.perf_counter()))
    try:
        train(cfg, show_progress=False)
    finally:
        Trainer.training_step = update
        hook.remove()
    seconds = stamps[-1] - stamps[warmup - 1]
    tgt, src, sents = (sum(c[i] for c in counts[warmup:]) for i in range(3))
    return {
        "tgt_tok_s": tgt / seconds,
        "src_tok_s": src / seconds,
        "sents_s": sents / seconds,
        "ms_per_update": 1000 * seconds / (len(stamps) - warmup),
        "src_per_tgt": src / tgt,
        "avg_src_len": src / sents,
        "updates": len(stamps) - warmup,
    }


def spec_config(data: Path, out: Path, steps: int, overrides: list[str], spec: Path = benchlib.SPEC) -> Config:
    return load_config(
        spec,
        [
            f"data.train={data / 'train'}",
            "data.dev=null",
            f"data.cache_dir={out / 'cache'}",
            f"train.output_dir={out / 'run'}",
            "train.overwrite=true",
            f"train.max_steps={steps}",
            "train.keep_last=0",
            *overrides,
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=benchlib.ROOT / ".bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=220)
    parser.add_argument("--only", help="run only the configurations whose name contains this")
    args = parser.parse_args()
    benchlib.set_threads(args.threads)
    data = benchlib.peer_data(args.workdir)
    peak = benchlib.matmul_peak()
    print(f"machine: {benchlib.machine()}")
    print("fp32 matmul peak: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()))
    square = next(iter(peak.values()))
    print(
        f"{'configuration':52} {'tgt tok/s':>9} {'src tok/s':>9} {'ms/update':>9} {'MFLOP/tok':>9} "
        f"{'GFLOP/s':>8} {'MFU':>5}"
    )
    for name, overrides in CONFIGS.items():
        if args.only and args.only not in name:
            continue
        cfg = spec_config(data, args.workdir / "bench_model", args.steps, overrides)
        r = time_training(cfg)
        flops = benchlib.flops_per_target_token(cfg, r["src_per_tgt"], r["avg_src_len"], 20004)
        achieved = flops * r["tgt_tok_s"] / 1e9
        print(
            f"{name:52} {r['tgt_tok_s']:9.0f} {r['src_tok_s']:9.0f} {r['ms_per_update']:9.0f} "
            f"{flops / 1e6:9.1f} {achieved:8.1f} {achieved / square:5.0%}"
        )
    print(f"peak RSS: {benchlib.peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
