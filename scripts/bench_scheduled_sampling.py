#!/usr/bin/env python3
"""What scheduled sampling costs per update, on the AutoMaster presets' data and model sizes.

    python scripts/bench_scheduled_sampling.py [--train ../shared/data/automaster/train.csv] [--threads 1]

For each model (automaster_pgn as it ships: Bahdanau + input feeding, the step path; the same with
Luong attention and no input feeding, the fast path; a Transformer pointer-generator) it times the
trainer's update (`Trainer.training_step`, forward + backward + optimizer) on the same batches of the
first epoch, with teacher forcing and with scheduled sampling at a fixed p = 0.25, and prints the
median ms per update, the ratio and the load average (the figures mean little on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from s2s.batching import collate
from s2s.config import load_config
from s2s.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "automaster_pgn (step path)": [],
    "automaster_pgn, Luong general, no input feeding (fast path)": [
        "model.attention.type=luong_general",
        "model.decoder.input_feeding=false",
    ],
    "Transformer pointer-generator (d_model 128, 2 + 2 layers)": [
        "model.type=transformer",
        "model.d_model=128",
        "model.heads=4",
        "model.ff_size=512",
        "model.encoder_layers=2",
        "model.decoder_layers=2",
        "model.copy=true",
    ],
}
SAMPLING = ["train.scheduled_sampling.type=linear", "train.scheduled_sampling.start=0.25"]
SAMPLING += ["train.scheduled_sampling.end=0.25"]  # p = 0.25 at every update


def ms_per_update(overrides: list[str], train_csv: str, workdir: Path, updates: int) -> float:
    cfg = load_config(
        ROOT / "configs" / "automaster_pgn.yaml",
        [f"data.train={train_csv}", f"data.cache_dir={workdir / 'cache'}", f"train.output_dir={workdir / 'run'}"]
        + ["train.overwrite=true", *overrides],
    )
    trainer = Trainer(cfg, show_progress=False)
    batches = [collate(trainer.train_examples, idx) for idx in trainer._epoch_plan(0)[: updates + 3]]
    times = []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        trainer.training_step([batch])
        if i >= 3:  # after a warm-up
            times.append(time.perf_counter() - start)
    trainer._close()
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default=str(ROOT.parent / "shared" / "data" / "automaster" / "train.csv"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--updates", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()}; torch threads: {args.threads}")
    print("| model | teacher forcing, ms/update | scheduled sampling p = 0.25, ms/update | ratio |")
    print("| --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in MODELS.items():
            plain = ms_per_update(overrides, args.train, Path(tmp), args.updates)
            sampled = ms_per_update(overrides + SAMPLING, args.train, Path(tmp), args.updates)
            print(f"| {name} | {plain:.0f} | {sampled:.0f} | {sampled / plain:.2f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
