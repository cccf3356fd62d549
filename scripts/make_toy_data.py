#!/usr/bin/env python3
"""Synthetic seq2seq tasks, as whitespace-tokenized TSV (source<TAB>target), for configs/toy.yaml.

    python scripts/make_toy_data.py reverse data/toy/reverse
    s2s train configs/toy.yaml data.train=data/toy/reverse/train.tsv data.dev=data/toy/reverse/dev.tsv

Tasks (sources are random token sequences):
- copy: the target is the source;
- reverse: the source backwards;
- sort: the source sorted (tokens are numbers, sorted as numbers);
- copy_names: sources mix a few common words with rare "names" (n0 ... n4999); the target lists
  the names in order. The names are too rare for a small target vocabulary, so only a model
  that copies (the pointer-generator) can produce them.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

TASKS = ("copy", "reverse", "sort", "copy_names")


def make_pair(task: str, rng: random.Random, vocab: int, min_len: int, max_len: int) -> tuple[list[str], list[str]]:
    length = rng.randint(min_len, max_len)
    if task == "copy_names":
        source = [f"n{rng.randrange(5000)}" if rng.random() < 0.5 else f"w{rng.randrange(8)}" for _ in range(length)]
        names = [t for t in source if t.startswith("n")] or [source[0]]
        return source, names
    source = [str(rng.randrange(vocab)) for _ in range(length)]
    if task == "copy":
        return source, list(source)
    if task == "reverse":
        return source, source[::-1]
    if task == "sort":
        return source, sorted(source, key=int)
    raise ValueError(f"unknown task {task!r} (choices: {', '.join(TASKS)})")


def write_task(
    task: str,
    directory: str | Path,
    *,
    n_train: int = 3000,
    n_dev: int = 200,
    vocab: int = 20,
    min_len: int = 3,
    max_len: int = 10,
    seed: int = 1,
) -> tuple[Path, Path]:
    """Write ``train.tsv`` and ``dev.tsv`` (disjoint) of ``task`` into ``directory``."""
    rng = random.Random(f"{task}:{seed}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    seen: set[tuple[str, ...]] = set()
    paths = []
    for name, count in (("train", n_train), ("dev", n_dev)):
        rows = []
        while len(rows) < count:
            source, target = make_pair(task, rng, vocab, min_len, max_len)
            if tuple(source) in seen:
                continue  # dev sources are never training sources
            seen.add(tuple(source))
            rows.append(f"{' '.join(source)}\t{' '.join(target)}\n")
        path = directory / f"{name}.tsv"
        path.write_text("".join(rows), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("directory")
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-dev", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    train, dev = write_task(args.task, args.directory, n_train=args.n_train, n_dev=args.n_dev, seed=args.seed)
    print(f"wrote {train} and {dev}")


if __name__ == "__main__":
    main()
