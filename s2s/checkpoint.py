"""Checkpoints: self-contained (weights + resolved config + vocabularies), written atomically,
read with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only.

Files in a run directory (``train.output_dir``):
- ``best.pt``: the best model so far (by ``train.keep_best_by``), for prediction;
- ``last.pt``: everything needed to resume (optimizer, scheduler, progress, random states),
  written at every evaluation and at exit;
- ``step_N.pt``: the same as last.pt at step N; the last ``train.keep_last`` are kept.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from s2s.config import Config, from_dict
from s2s.errors import CheckpointError, ConfigError
from s2s.model import Seq2Seq, build_model

log = logging.getLogger(__name__)

FORMAT = "s2s-checkpoint"
VERSION = 1
STEP_FILE = re.compile(r"step_(\d+)\.pt$")


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Write ``payload`` to ``path`` atomically: a crash mid-write leaves the old file intact."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint; a missing, corrupt or foreign file is a ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many kinds on a truncated or foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: cannot read the checkpoint; it may be truncated or corrupt ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an s2s checkpoint")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {ckpt.get('version')}; this s2s reads version {VERSION}"
        )
    return ckpt


def checkpoint_config(ckpt: dict[str, Any], path: str | Path) -> Config:
    """The resolved config saved in a checkpoint."""
    try:
        return from_dict(ckpt["config"], source=f"{path} (saved config)")
    except ConfigError as err:
        raise CheckpointError(f"{err}: the checkpoint comes from another version of s2s") from None


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path) -> tuple[Seq2Seq, Config]:
    """The model of a checkpoint with its weights loaded, in eval mode, and its config."""
    cfg = checkpoint_config(ckpt, path)
    cfg.model.embeddings.pretrained = None  # the weights below hold the vectors already
    model = build_model(cfg.model, ckpt["src_vocab"], ckpt["tgt_vocab"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the saved config ({str(err).splitlines()[0]})") from None
    model.set_coverage(ckpt["progress"]["coverage_on"])
    return model.eval(), cfg


def step_checkpoints(directory: str | Path) -> list[Path]:
    """The ``step_N.pt`` files of a run directory, newest (highest N) first."""
    found = [(int(m.group(1)), p) for p in Path(directory).glob("step_*.pt") if (m := STEP_FILE.search(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def prune_step_checkpoints(directory: str | Path, keep: int) -> None:
    for path in step_checkpoints(directory)[keep:]:
        path.unlink(missing_ok=True)


def find_resume_checkpoint(directory: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads: ``last.pt``, else the highest ``step_N.pt``."""
    for path in [Path(directory) / "last.pt", *step_checkpoints(directory)]:
        if not path.exists():
            continue
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            log.warning("skipping %s", err)
    return None
