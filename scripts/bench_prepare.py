"""Benchmark tokenization of an AutoMaster-sized input: one process, worker pool, cached reload.

    python scripts/bench_prepare.py [--rows 80000] [--data ../shared/data/automaster/train.csv]

Builds the input by repeating the real rows (new QIDs) in a temporary folder, tokenizes it with
the default config (jieba) three ways, and prints rows/s, chars/s and peak memory.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s.config import Config  # noqa: E402
from s2s.corpus import tokenize_file  # noqa: E402


def build_input(source: Path, rows: int, out: Path) -> int:
    """Write ``rows`` rows cycling through ``source``'s rows; returns the characters of text."""
    with open(source, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        real = [r for r in reader if len(r) == len(header)]
    chars = 0
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for i in range(rows):
            row = list(real[i % len(real)])
            row[0] = f"Q{i + 1}"
            chars += len(row[3]) + len(row[4]) + len(row[5])
            writer.writerow(row)
    return chars


def peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=80_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/automaster/train.csv")
    parser.add_argument("--workers", type=int, default=0, help="pool size (0: one per core)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        chars = build_input(args.data, args.rows, path)
        size_mb = path.stat().st_size / 1e6
        print(
            f"input: {args.rows} rows, {size_mb:.1f} MB, {chars / 1e6:.1f} M characters of text "
            f"(Question + Dialogue + Report); {os.cpu_count()} CPU cores"
        )

        def run(label: str, workers: int, cache: str) -> None:
            cfg = Config()
            cfg.data.num_workers, cfg.data.cache_dir = workers, cache
            start = time.perf_counter()
            corpus = tokenize_file(path, cfg, progress=False)
            seconds = time.perf_counter() - start
            assert len(corpus) == args.rows, len(corpus)
            print(
                f"{label:<28} {seconds:7.2f} s  {args.rows / seconds:9.0f} rows/s  "
                f"{chars / seconds / 1e6:6.2f} M chars/s"
            )

        run("single process (1 worker)", 1, f"{tmp}/cache-single")
        run(f"worker pool ({args.workers or 'all cores'})", args.workers, f"{tmp}/cache-pool")
        run("cached reload", args.workers, f"{tmp}/cache-pool")
        cache_mb = sum(f.stat().st_size for f in Path(f"{tmp}/cache-pool").iterdir()) / 1e6
        print(f"cache file: {cache_mb:.1f} MB")
    print(
        f"peak RSS: main process {peak_rss_mb(resource.RUSAGE_SELF):.0f} MB, "
        f"largest worker {peak_rss_mb(resource.RUSAGE_CHILDREN):.0f} MB"
    )


if __name__ == "__main__":
    main()
