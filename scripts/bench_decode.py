#!/usr/bin/env python3
"""Decoding speed of the benchmark model (configs/peer_spec.yaml) on the 500 dev sources.

    python scripts/bench_decode.py [--workdir .bench] [--threads 2] [--checkpoint CKPT]

Greedy and beam 4, min = max length 50 (every sentence does the same work, as the peers are
measured), batches of 32 sentences and larger ones. Times the decoding call alone (not loading
or tokenizing). Without --checkpoint an untrained model of the spec is used: with min = max
length the work does not depend on the weights.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import benchlib
import torch

from s2s.config import load_config
from s2s.corpus import tokenize_file
from s2s.model import build_model
from s2s.predict import Summarizer
from s2s.prepare import prepare
from s2s.runtime import tune_cpu

RUNS = [("greedy", 1, 32), ("beam", 4, 32), ("beam", 4, 64), ("beam", 4, 128)]


def summarizer_for(args: argparse.Namespace, data: Path) -> Summarizer:
    if args.checkpoint:
        return Summarizer.load(args.checkpoint, "cpu")
    cfg = load_config(
        benchlib.SPEC, [f"data.train={data / 'train'}", "data.dev=null", f"data.cache_dir={args.workdir / 'cache'}"]
    )
    prepared = prepare(cfg, progress=False)
    torch.manual_seed(0)
    model = build_model(cfg.model, prepared.src_vocab.tokens, prepared.tgt_vocab.tokens)
    tune_cpu()
    return Summarizer(model, cfg, prepared.src_vocab, prepared.tgt_vocab, torch.device("cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=benchlib.ROOT / ".bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", help="a trained checkpoint of the spec (default: untrained)")
    args = parser.parse_args()
    benchlib.set_threads(args.threads)
    data = benchlib.peer_data(args.workdir)
    summarizer = summarizer_for(args, data)
    cfg = summarizer.cfg
    sources = tokenize_file(data / "dev", cfg, need_target=False, progress=False).sources
    print(f"machine: {benchlib.machine()}")
    print(f"{len(sources)} sources, min = max length 50")
    print(f"{'search':8} {'beam':>4} {'batch':>5} {'sents/s':>8} {'seconds':>8}")
    for search, beam, batch in RUNS:
        options = summarizer.options(search=search, beam_size=beam, batch_size=batch, min_length=50, max_length=50)
        start = time.perf_counter()
        outputs = summarizer.decode(sources, options)
        seconds = time.perf_counter() - start
        assert all(len(o.tokens) == 50 for o in outputs)
        print(f"{search:8} {beam:4} {batch:5} {len(sources) / seconds:8.1f} {seconds:8.1f}")
    print(f"peak RSS: {benchlib.peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
