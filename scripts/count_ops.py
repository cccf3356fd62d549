#!/usr/bin/env python3
"""The aten operators a few training updates of the peer-spec model call, with their counts.

    PYTHONPATH=.:scripts python scripts/count_ops.py [--workdir .bench] [--steps 3] > ops.txt

Run it at two commits and diff the outputs: equal lists mean the change adds no tensor work on
this path (docs/gradients.md uses it for the RNN options that are off by default). One thread,
``bench_model.py``'s config and data; extra ``key=value`` overrides pick another path.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import benchlib
import torch
from bench_model import spec_config
from torch.profiler import ProfilerActivity, profile

from s2s.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=benchlib.ROOT / ".bench")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. model.decoder.input_feeding=false")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = spec_config(benchlib.peer_data(args.workdir), args.workdir / "count_ops", args.steps, args.overrides)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(cfg, show_progress=False)
    counts = Counter(event.name for event in prof.events() if event.name.startswith("aten::"))
    for name, count in sorted(counts.items()):
        print(count, name)
    print(f"{sum(counts.values())} calls of {len(counts)} operators", flush=True)


if __name__ == "__main__":
    main()
