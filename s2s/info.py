"""``s2s info CKPT``: what a checkpoint holds, without building the model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from s2s.checkpoint import Checkpoint
from s2s.config import config_yaml
from s2s.metrics import METRICS


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M"


def describe_checkpoint(path: str | Path) -> str:
    """A few summary lines (model family and sizes, vocabularies, tokenizer, progress), then the config."""
    path = Path(path)
    ckpt = Checkpoint.load(path)
    cfg, progress = ckpt.config, ckpt.progress
    per_part: Counter[str] = Counter()
    seen: set[int] = set()  # a tied weight is in the state dict under both names: count it once
    for name, tensor in ckpt.model.items():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            per_part[name.split(".", 1)[0]] += tensor.numel()
    parts = ", ".join(f"{name} {_millions(count)}" for name, count in per_part.most_common())
    vocab = "one shared vocabulary" if cfg.vocab.shared else "separate vocabularies"
    lines = [
        f"checkpoint: {path} ({path.stat().st_size / 2**20:.1f} MiB)",
        f"model: {cfg.model.type}, {_millions(sum(per_part.values()))} parameters ({parts})",
        f"vocabularies: source {len(ckpt.src_vocab)}, target {len(ckpt.tgt_vocab)} tokens ({vocab})",
        f"data: reader {cfg.data.format or 'from the file name'}, tokenizer {cfg.tokenizer.type}",
        f"training: step {progress.step}, epoch {progress.epoch}, {progress.seconds / 60:.1f} min"
        + ("; optimizer state saved (resumable)" if ckpt.training is not None else "; weights only"),
    ]
    if progress.best_score is not None:
        metric = METRICS.get(cfg.train.keep_best_by)
        lines.append(f"best: {metric.format(progress.best_score)} at step {progress.best_step}")
    lines += ["config:", *("  " + line for line in config_yaml(cfg).splitlines())]
    return "\n".join(lines)
