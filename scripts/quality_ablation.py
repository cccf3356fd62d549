"""The small-data tools on one preset, measured on rows nothing trained, selected or tuned on.

    PYTHONPATH=. python scripts/quality_ablation.py --config configs/automaster_pgn.yaml \\
        --workdir runs/ablation_automaster_pgn [--stage train|decode|all] [--jobs 2] [--threads 1]

Training (``s2s train``, one split for every run: ``data.split_seed`` = the preset's seed, and
``train.keep_last: 8``; a run whose ``best.pt`` exists is kept, not retrained):

- ``seed42``, ``seed1``, ``seed2``, ``seed3``: the preset at four initialization seeds;
- ``vectors``: seed 42 with word2vec vectors (``s2s embeddings`` on the training split's text,
  skip-gram, the model's embedding size) in ``model.embeddings.pretrained``;
- ``sampling``: seed 42 with scheduled sampling (linear from 0 to 0.25 over 1,000 updates).

Decoding the test rows (``RUN/test_split.csv`` of the preset's ``data.test_split``, or
``data.test``): the base model greedy and beam; the average of the last 2, 4 and 8 step
checkpoints of ``seed42`` (``s2s average --last N``); ensembles of 2 and 4 seeds; MBR over the
base model's 8 beam candidates, over greedy + 16 samples (temperature 0.8), and over both; the
vectors and sampling runs greedy. Prints one markdown row each: char and word ROUGE-L F1 with the
95% bootstrap interval, the paired bootstrap difference and p-value against the base model
(greedy) and against the lead baseline, training minutes (wall-clock and CPU: the CPU time is
the fair figure when other work shares the cores) and decoding seconds. Several invocations
may train at once (each run is locked by the one training it).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from s2s.config import load_config
from s2s.evaluate import compare, evaluate
from s2s.predict import predict_file

SEEDS = (42, 1, 2, 3)
SAMPLING = [
    "train.scheduled_sampling.type=linear",
    "train.scheduled_sampling.end=0.25",
    "train.scheduled_sampling.steps=1000",
]


def s2s(*args: str, threads: int) -> float:
    """Run the s2s command line in a fresh process; the CPU seconds it used (user + system)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    process = subprocess.Popen([sys.executable, "-m", "s2s", *args], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"s2s {' '.join(args)} failed ({os.waitstatus_to_exitcode(status)})")
    return usage.ru_utime + usage.ru_stime


@contextmanager
def claimed(path: Path) -> Iterator[bool]:
    """Whether this process holds ``path``'s lock (another invocation of this script may be
    training the same run: then it is left to that one)."""
    with open(path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def train_runs(config: Path, workdir: Path, seed: int, jobs: int, threads: int) -> None:
    """Train every run of the ablation that has no best.pt yet and that no other invocation is
    training, ``jobs`` at a time; each run's wall-clock and CPU seconds go to RUN/train_seconds.txt."""
    common = [f"data.split_seed={seed}", "train.keep_last=8", f"train.threads={threads}", "train.overwrite=true"]
    vectors = workdir / "vectors.txt"
    with open(workdir / "vectors.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not vectors.exists():
            s2s("embeddings", str(config), *common[:1], "--output", str(vectors), threads=threads)
    runs = {f"seed{s}": [f"train.seed={s}"] for s in SEEDS}
    runs["vectors"] = [f"train.seed={seed}", f"model.embeddings.pretrained={vectors}"]
    runs["sampling"] = [f"train.seed={seed}", *SAMPLING]

    def train(name: str) -> None:
        run = workdir / name
        with claimed(workdir / f"{name}.lock") as mine:
            if not mine or (run / "best.pt").exists():
                return
            start = time.perf_counter()
            cpu = s2s("train", str(config), f"train.output_dir={run}", *common, *runs[name], threads=threads)
            (run / "train_seconds.txt").write_text(f"{time.perf_counter() - start:.1f} {cpu:.1f}\n")

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(train, runs))
    wait_for(workdir, runs)


def wait_for(workdir: Path, names: Iterable[str]) -> None:
    """Until the runs ``names`` that another invocation is training are done."""
    for name in names:
        with open(workdir / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)


def train_minutes(*runs: Path) -> tuple[float, float]:
    """Wall-clock and CPU minutes of training ``runs``, summed."""
    times = [map(float, (run / "train_seconds.txt").read_text().split()) for run in runs]
    wall, cpu = (sum(column) / 60 for column in zip(*times))
    return wall, cpu


def decodes(workdir: Path, beam: int) -> dict[str, dict[str, Any]]:
    """Each row of the table: its checkpoints (``average``: of the last N of seed42), search
    options, samples and reranking, and the training runs it cost."""
    base, seeds = workdir / "seed42", [workdir / f"seed{s}" for s in SEEDS]
    greedy, beam_search = {"search": "greedy"}, {"search": "beam", "beam_size": beam}
    beam_pool, samples = {"search": "beam", "beam_size": 8, "n_best": 8}, {"n_best": 16, "temperature": 0.8, "seed": 0}

    def row(runs: list[Path], options: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"ckpt": [run / "best.pt" for run in runs], "runs": runs, "options": options, **extra}

    rows = {"base, greedy": row([base], greedy), f"base, beam {beam}": row([base], beam_search)}
    for n in (2, 4, 8):
        rows[f"average of the last {n} checkpoints, greedy"] = row([base], greedy, average=n)
    for n in (2, 4):
        rows[f"ensemble of {n} seeds, greedy"] = row(seeds[:n], greedy)
        rows[f"ensemble of {n} seeds, beam {beam}"] = row(seeds[:n], beam_search)
    rows["MBR over 8 beam candidates"] = row([base], beam_pool, rerank="mbr")
    rows["MBR over greedy + 16 samples (T 0.8)"] = row([base], greedy, sample=samples, rerank="mbr")
    rows["MBR over 8 beam candidates + 16 samples"] = row([base], beam_pool, sample=samples, rerank="mbr")
    for name in ("vectors", "sampling"):
        rows[f"{name}, greedy"] = row([workdir / name], greedy)
    return rows


def decode_all(workdir: Path, references: Path, beam: int, threads: int) -> list[str]:
    """Decode and score every row; markdown lines."""
    torch.set_num_threads(threads)
    out = workdir / "decodes"
    out.mkdir(exist_ok=True)
    suffix = references.suffix if references.suffix == ".csv" else ".txt"
    lead = out / f"lead{suffix}"
    predict_file(None, references, lead, baseline="lead")
    lines = [
        "| system | train min (wall / CPU) | decode s | char R-L [95% CI] | vs base (p) | vs lead (p) "
        "| word R-L [95% CI] |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        _row("lead baseline", None, None, lead, None, None, references),
    ]
    base_out = None
    for i, (name, row) in enumerate(decodes(workdir, beam).items()):
        path = out / f"{i:02d}{suffix}"
        wait_for(workdir, [run.name for run in row["runs"]])
        ckpt = row["ckpt"]
        if "average" in row:
            if len(list(row["runs"][0].glob("step_*.pt"))) < row["average"]:
                print(f"{name}: skipped, {row['runs'][0]} keeps fewer step checkpoints", file=sys.stderr)
                continue
            ckpt = [out / f"average{row['average']}.pt"]
            s2s(
                "average", "--output", str(ckpt[0]), "--last", str(row["average"]), str(row["runs"][0]), threads=threads
            )
        start = time.perf_counter()
        predict_file(
            [str(c) for c in ckpt],
            references,
            path,
            options=row["options"],
            sample=row.get("sample"),
            rerank=row.get("rerank"),
        )
        seconds = time.perf_counter() - start
        minutes = train_minutes(*row["runs"])
        base_out = base_out or path
        lines.append(_row(name, minutes, seconds, path, base_out if path != base_out else None, lead, references))
        print(lines[-1], flush=True)
    return lines


def _row(
    name: str,
    minutes: tuple[float, float] | None,
    seconds: float | None,
    path: Path,
    base: Path | None,
    lead: Path | None,
    refs: Path,
) -> str:
    r = evaluate(path, refs, level="both", bootstrap=1000)
    versus = []
    for other in (base, lead):
        if other is None:
            versus.append("")
            continue
        d = compare(path, other, refs, level="char")["difference"]["char"]["rouge-l"]
        versus.append(f"{100 * d['f']:+.2f} ({d['p']:.3f})")
    times = ["{:.1f} / {:.1f}".format(*minutes) if minutes else "", f"{seconds:.0f}" if seconds else ""]
    cells = [_interval(r["char"]["rouge-l"]), *versus, _interval(r["word"]["rouge-l"])]
    return f"| {name} | " + " | ".join([*times, *cells]) + " |"


def _interval(score: dict[str, Any]) -> str:
    """F1 and its 95% interval, in percent."""
    low, high = score["f_ci"]
    return f"{100 * score['f']:.2f} [{100 * low:.1f}, {100 * high:.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--stage", choices=["train", "decode", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = parser.parse_args()
    cfg = load_config(args.config)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.stage in ("train", "all"):
        train_runs(args.config, args.workdir, cfg.train.seed, args.jobs, args.threads)
    if args.stage in ("decode", "all"):
        references = Path(cfg.data.test) if cfg.data.test else args.workdir / "seed42" / "test_split.csv"
        lines = decode_all(args.workdir, references, cfg.predict.beam_size, args.threads)
        (args.workdir / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("\n".join(lines))
        print(f"table: {args.workdir / 'table.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
