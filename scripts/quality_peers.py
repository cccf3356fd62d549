"""JoeyNMT and OpenNMT-py trained on an s2s preset's own data split, for the quality report.

    PYTHONPATH=. python scripts/quality_peers.py --config configs/automaster_pgn_coverage.yaml \\
        --peers-venv VENV --workdir /tmp/quality --minutes 10 --threads 1

The preset's data go through s2s's pipeline once (the same cleaning, jieba words, truncation and
splits), are written as parallel text (``train.src/.tgt``, ``dev.src/.tgt``) and each peer trains
on them with the preset's model shape for ``--minutes`` of CPU time (its process's user + system
time, so that other work on the machine does not shorten it) at ``--threads`` threads: at least the
wall-clock time of the s2s run it is compared with. An RNN preset gives both peers its
BiLSTM encoder, LSTM decoder, Bahdanau attention and dropout; JoeyNMT has no copy mechanism, and
OpenNMT-py runs with ``copy_attn`` and ``coverage_attn`` (its pointer-generator with coverage). A
Transformer preset (``model.type: transformer``) gives both its sizes, layers and dropout, and
OpenNMT-py ``copy_attn``. Each peer then decodes the test file's sources (``data.test``, as in
csl_pgn), else the rows ``data.test_split`` holds out, else the dev split's, greedily and with beam 4
(the preset's min/max length and n-gram blocking), and the words are joined as s2s joins them and
scored with ``s2s evaluate``. Prints one markdown row per decode; the predictions stay in the
workdir (``joey_beam1.csv``, ``onmt_beam1.csv``, ...).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from quality_s2s import HEADER, markdown_row

from s2s.config import Config, load_config
from s2s.prepare import prepare, write_splits
from s2s.readers import read_examples


def write_split(cfg: Config, workdir: Path) -> tuple[int, Path, Path, list[str] | None]:
    """The preset's train/dev split as jieba-word parallel text. Returns the number of training
    rows and what to score on: the test file's sources, references and no QIDs where
    ``data.test`` is set, else the rows ``data.test_split`` holds out, else the dev split's."""
    data = prepare(cfg)
    out = workdir / "data"
    out.mkdir(parents=True, exist_ok=True)
    for name, corpus in (("train", data.train), ("dev", data.dev)):
        _write_lines(out / f"{name}.src", map(" ".join, corpus.sources))
        _write_lines(out / f"{name}.tgt", map(" ".join, corpus.targets))
    if data.test_split or data.test:
        _write_lines(out / "test.src", map(" ".join, (data.test_split or data.test).sources))
    if data.test is None:
        scored = "test" if data.test_split is not None else "dev"
        return (
            len(data.train),
            out / f"{scored}.src",
            write_splits(cfg, data, workdir)[scored],
            (data.test_split or data.dev).ids,
        )
    examples = read_examples(cfg.data.test, cfg.data, need_target=False)
    _write_lines(workdir / "test.ref", (" ".join((ex.target or "").split()) for ex in examples))
    return len(data.train), out / "test.src", workdir / "test.ref", None


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def joey_config(cfg: Config, workdir: Path, beam: int, steps_per_epoch: int) -> Path:
    p = cfg.predict
    side = lambda size: {
        "level": "word",
        "lowercase": False,
        "normalize": False,
        "voc_limit": size,  # noqa: E731
        "voc_min_freq": cfg.vocab.min_freq,
        "max_length": -1,
    }
    config = {
        "name": "quality_joey",
        "model_dir": str(workdir / "joey"),
        "use_cuda": False,
        "random_seed": cfg.train.seed,
        "data": {
            "train": str(workdir / "data/train"),
            "dev": str(workdir / "data/dev"),
            "dataset_type": "plain",
            "src": {"lang": "src", **side(cfg.vocab.source_size)},
            "trg": {"lang": "tgt", **side(cfg.vocab.target_size)},
        },
        "training": {
            "optimizer": "adam",
            "learning_rate": cfg.train.optimizer.lr,
            "scheduling": "exponential",
            "decrease_factor": 1.0,
            "batch_size": cfg.train.batch_size,
            "batch_type": "sentence",
            "normalization": "tokens",
            "clip_grad_norm": cfg.train.clip_grad_norm,
            "epochs": 1000,
            "validation_freq": steps_per_epoch,
            "logging_freq": steps_per_epoch,
            "early_stopping_metric": "ppl",
            "eval_metrics": ["bleu"],
            "keep_best_ckpts": 1,
            "overwrite": True,
            "shuffle": True,
            "print_valid_sents": [],
        },
        "testing": {
            "load_model": str(workdir / "joey/best.ckpt"),
            "beam_size": beam,
            "beam_alpha": -1,
            "batch_size": 32,
            "batch_type": "sentence",
            "max_output_length": p.max_length,
            "min_output_length": p.min_length,
            "n_best": 1,
            "eval_metrics": ["bleu"],
        },
        "model": joey_model(cfg),
    }
    path = workdir / f"joey_beam{beam}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def joey_model(cfg: Config) -> dict[str, Any]:
    """JoeyNMT's model section: the preset's RNN (BiLSTM, LSTM decoder, Bahdanau attention, input
    feeding) or Transformer (its sizes, norm placement and dropout; JoeyNMT has no copying)."""
    m = cfg.model
    if m.type == "transformer":
        emb = {"embedding_dim": m.d_model, "scale": True, "dropout": m.dropout}
        side = lambda layers: {  # noqa: E731
            "type": "transformer",
            "num_layers": layers,
            "num_heads": m.heads,
            "hidden_size": m.d_model,
            "ff_size": m.ff_size,
            "layer_norm": m.norm,
            "dropout": m.dropout,
            "embeddings": emb,
        }
        init = {"initializer": "xavier_uniform", "embed_initializer": "xavier_uniform", "bias_initializer": "zeros"}
        return {**init, "encoder": side(m.encoder_layers), "decoder": side(m.decoder_layers)}
    emb = {"embedding_dim": m.embeddings.size, "scale": False, "dropout": m.embeddings.dropout}
    return {
        "initializer": "uniform",
        "init_weight": 0.1,
        "embed_initializer": "uniform",
        "embed_init_weight": 0.1,
        "bias_initializer": "zeros",
        "encoder": {
            "type": "recurrent",
            "rnn_type": "lstm",
            "num_layers": m.encoder.num_layers,
            "hidden_size": m.encoder.hidden_size,
            "bidirectional": m.encoder.bidirectional,
            "dropout": m.decoder.dropout,
            "embeddings": emb,
        },
        "decoder": {
            "type": "recurrent",
            "rnn_type": m.decoder.rnn,
            "num_layers": m.decoder.num_layers,
            "hidden_size": m.decoder.hidden_size,
            "attention": "bahdanau",
            "input_feeding": True,
            "init_hidden": "bridge",
            "dropout": m.decoder.dropout,
            "hidden_dropout": m.decoder.dropout,
            "embeddings": emb,
        },
    }


def onmt_config(cfg: Config, workdir: Path, steps_per_epoch: int) -> Path:
    config = {
        "save_data": str(workdir / "onmt/data"),
        "src_vocab": str(workdir / "onmt/vocab.src"),
        "tgt_vocab": str(workdir / "onmt/vocab.tgt"),
        "overwrite": True,
        "share_vocab": True,
        "src_vocab_size": cfg.vocab.source_size + 4,
        "tgt_vocab_size": cfg.vocab.source_size + 4,
        "src_words_min_frequency": cfg.vocab.min_freq,
        "tgt_words_min_frequency": cfg.vocab.min_freq,
        "data": {
            "corpus_1": {
                "path_src": str(workdir / "data/train.src"),
                "path_tgt": str(workdir / "data/train.tgt"),
                "transforms": [],
            }
        },
        **onmt_model(cfg),
        "seed": cfg.train.seed,
        "world_size": 1,
        "gpu_ranks": [],
        "optim": "adam",
        "learning_rate": cfg.train.optimizer.lr,
        "max_grad_norm": cfg.train.clip_grad_norm,
        "batch_size": cfg.train.batch_size,
        "batch_type": "sents",
        "normalization": "tokens",
        "train_steps": 1_000_000,
        "report_every": 20,
        "save_checkpoint_steps": steps_per_epoch,
        "keep_checkpoint": 1,
        "bucket_size": 1024,
        "save_model": str(workdir / "onmt/model"),
        "num_workers": 0,
    }
    path = workdir / "onmt.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def onmt_model(cfg: Config) -> dict[str, Any]:
    """OpenNMT-py's model options: the preset's RNN with ``copy_attn`` and ``coverage_attn`` (its
    pointer-generator with coverage), or its Transformer with ``copy_attn`` (the copy distribution
    from the last decoder layer's cross-attention)."""
    m = cfg.model
    if m.type == "transformer":
        return {
            "encoder_type": "transformer",
            "decoder_type": "transformer",
            "enc_layers": m.encoder_layers,
            "dec_layers": m.decoder_layers,
            "hidden_size": m.d_model,
            "word_vec_size": m.d_model,
            "transformer_ff": m.ff_size,
            "heads": m.heads,
            "position_encoding": True,
            "dropout": [m.dropout],
            "attention_dropout": [m.attention_dropout],
            "param_init": 0.0,
            "param_init_glorot": True,
            "copy_attn": True,
        }
    return {
        "encoder_type": "brnn" if m.encoder.bidirectional else "rnn",
        "decoder_type": "rnn",
        "rnn_type": "LSTM",
        "enc_layers": m.encoder.num_layers,
        "dec_layers": m.decoder.num_layers,
        "enc_hid_size": m.encoder.hidden_size * (2 if m.encoder.bidirectional else 1),
        "dec_hid_size": m.decoder.hidden_size,
        "word_vec_size": m.embeddings.size,
        "global_attention": "mlp",
        "input_feed": 1,
        "bridge": True,
        "dropout": [m.decoder.dropout],
        "attention_dropout": [0.0],
        "copy_attn": True,
        "coverage_attn": True,
        "lambda_coverage": 1.0,
        "reuse_copy_attn": True,
    }


# OpenNMT-py 3.5.1's copy attention works only with one shared vocabulary (its translator maps
# copied ids back with the source vocabulary's size), as in its own summarization recipes: the
# OpenNMT-py run shares source and target vocabularies (of the preset's source size).
#
# OpenNMT-py 3.5.1 saves a copy generator's weights under checkpoint["generator"] as
# "linear.weight", ..., but its loader looks for "generator.linear.weight" there and fails
# ("Missing key in checkpoint: generator.linear.weight"). Moving them into checkpoint["model"]
# under their full names, where the loader looks first, lets onmt_translate load the model.
ONMT_COPY_FIX = """
import sys, torch
path = sys.argv[1]
ckpt = torch.load(path, map_location="cpu", weights_only=False)
if ckpt.get("generator"):
    ckpt["model"].update({"generator." + k: v for k, v in ckpt["generator"].items()})
    ckpt["generator"] = None
    torch.save(ckpt, path)
"""

# OpenNMT-py 3.5.1's onmt_translate builds its input without the copy keys ("src_map") that a
# copy_attn model needs (KeyError: 'src_map'): run it with that switch turned on.
ONMT_TRANSLATE_WITH_COPY = """
import onmt.inference_engine as engine
from onmt.bin.translate import main
build = engine.build_dynamic_dataset_iter
engine.build_dynamic_dataset_iter = lambda *args, **kwargs: build(*args, **{**kwargs, "copy": True})
main()
"""


def run(
    command: list[str],
    env: dict[str, str],
    log: Path,
    *,
    cpu_seconds: float | None = None,
    stdin: Path | None = None,
    stdout: Path | None = None,
) -> tuple[float, float]:
    """Run ``command``, stopped once it (with its child processes) has used ``cpu_seconds`` of CPU
    time, if given: a budget that stays fair when other work shares the cores. Returns its wall-clock
    seconds and, with a budget, the CPU seconds it used (last sampled, each second) or else 0."""
    start = time.perf_counter()
    with open(log, "a") as err, open(stdin or os.devnull) as inp, open(stdout or log, "a") as out:
        process = subprocess.Popen(command, env=env, stdin=inp, stdout=out, stderr=err)
        used = 0.0
        while cpu_seconds is not None:  # without a budget: just wait for it
            try:
                process.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                used = max(used, process_cpu_seconds(process.pid))
                if used >= cpu_seconds:
                    process.terminate()
                    process.wait()
                    return time.perf_counter() - start, used
        process.wait()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({process.returncode}): see {log}")
    return time.perf_counter() - start, used


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants, from /proc (Linux)."""
    parents, used = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, ...
        except OSError:
            continue  # the process ended meanwhile
        child = int(stat.parent.name)
        parents[child], used[child] = int(fields[1]), int(fields[11]) + int(fields[12])  # ppid; utime + stime
    tree, added = {pid}, True
    while added:
        new = {child for child, parent in parents.items() if parent in tree} - tree
        tree, added = tree | new, bool(new)
    return sum(used.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def write_predictions(hyp: Path, qids: list[str] | None, out: Path) -> Path:
    """Peer output (space-separated words, one line each) → the ``QID,Prediction`` layout, or one
    line each where there are no QIDs."""
    lines = ["".join(line.split()) for line in hyp.read_text(encoding="utf-8").splitlines()]
    if qids is None:
        out = out.with_suffix(".txt")
        _write_lines(out, lines)
        return out
    if len(lines) != len(qids):
        sys.exit(f"{hyp}: {len(lines)} lines for {len(qids)} rows")
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["QID", "Prediction"])
        writer.writerows(zip(qids, lines))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the s2s preset whose data and model shape to use")
    parser.add_argument("--peers-venv", type=Path, required=True, help="virtualenv with JoeyNMT and OpenNMT-py")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--minutes", type=float, required=True, help="training budget per peer, in CPU minutes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tools", default="joey,onmt")
    args = parser.parse_args()

    cfg = load_config(args.config)
    args.workdir.mkdir(parents=True, exist_ok=True)
    n_train, sources, references, qids = write_split(cfg, args.workdir)
    steps_per_epoch = -(-n_train // cfg.train.batch_size)
    bin_dir = args.peers_venv / "bin"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
    }
    budget, p = 60 * args.minutes, cfg.predict
    family = " Transformer" if cfg.model.type == "transformer" else ""
    copying = "copy_attn" if family else "copy_attn + coverage_attn"
    rows = []
    if "joey" in args.tools:
        configs = {beam: joey_config(cfg, args.workdir, beam, steps_per_epoch) for beam in (1, p.beam_size)}
        log = args.workdir / "joey.log"
        wall, cpu = run(
            [str(bin_dir / "python"), "-m", "joeynmt", "train", str(configs[1])], env, log, cpu_seconds=budget
        )
        print(f"joey: trained {wall / 60:.1f} min ({cpu / 60:.1f} CPU min)", file=sys.stderr)
        for beam, config in configs.items():
            hyp = args.workdir / f"joey_beam{beam}.hyp"
            run(
                [str(bin_dir / "python"), "-m", "joeynmt", "translate", str(config)],
                env,
                log,
                stdin=sources,
                stdout=hyp,
            )
            preds = write_predictions(hyp, qids, args.workdir / f"joey_beam{beam}.csv")
            rows.append(
                markdown_row(f"JoeyNMT 2.3.0{family}, {'greedy' if beam == 1 else f'beam {beam}'}", preds, references)
            )
    if "onmt" in args.tools:
        config = onmt_config(cfg, args.workdir, steps_per_epoch)
        log = args.workdir / "onmt.log"
        (args.workdir / "onmt").mkdir(exist_ok=True)
        run([str(bin_dir / "onmt_build_vocab"), "-config", str(config), "-n_sample", "-1"], env, log)
        wall, cpu = run([str(bin_dir / "onmt_train"), "-config", str(config)], env, log, cpu_seconds=budget)
        model = max((args.workdir / "onmt").glob("model_step_*.pt"), key=lambda f: int(f.stem.rsplit("_", 1)[1]))
        print(
            f"onmt: trained {wall / 60:.1f} min ({cpu / 60:.1f} CPU min), decoding with {model.name}", file=sys.stderr
        )
        run([str(bin_dir / "python"), "-c", ONMT_COPY_FIX, str(model)], env, log)
        for beam in (1, p.beam_size):
            hyp = args.workdir / f"onmt_beam{beam}.hyp"
            run(
                [
                    str(bin_dir / "python"),
                    "-c",
                    ONMT_TRANSLATE_WITH_COPY,
                    "-model",
                    str(model),
                    "-src",
                    str(sources),
                    "-output",
                    str(hyp),
                    "-beam_size",
                    str(beam),
                    "-batch_size",
                    "32",
                    "-max_length",
                    str(p.max_length),
                    "-min_length",
                    str(p.min_length),
                    "-block_ngram_repeat",
                    str(p.no_repeat_ngram_size),
                ],
                env,
                log,
            )
            preds = write_predictions(hyp, qids, args.workdir / f"onmt_beam{beam}.csv")
            rows.append(
                markdown_row(
                    f"OpenNMT-py 3.5.1{family} {copying}, {'greedy' if beam == 1 else f'beam {beam}'}",
                    preds,
                    references,
                )
            )
    print(HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
