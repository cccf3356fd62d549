"""Resume: which checkpoint a run continues from, what may change on resume, and the state
beyond the weights (optimizer, scheduler, random states) that makes it continue exactly.

``train.resume=auto`` takes the newest checkpoint of ``train.output_dir`` that loads (a new run
where there is none; an error, touching nothing, where there are checkpoints but none loads); a
path takes that file. The run then uses the checkpoint's config, but for
the keys in ``RESUMABLE_KEYS`` and ``predict.*``, whose new values win; the model, vocabularies
and tokenizer (``FIXED_SECTIONS``) must not change.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path
from typing import Any

import torch

from s2s.checkpoint import Checkpoint, TrainingState, find_resume_checkpoint
from s2s.config import Config, from_dict, to_dict
from s2s.errors import CheckpointError, ConfigError
from s2s.rundir import RunDirectory

log = logging.getLogger(__name__)

# Keys whose new value wins over the checkpoint's on resume; model, vocab and tokenizer must not change.
RESUMABLE_KEYS = {
    "train.max_steps",
    "train.max_epochs",
    "train.max_minutes",
    "train.eval_every",
    "train.patience",
    "train.log_every",
    "train.keep_last",
    "train.device",
    "train.threads",
    "train.eval_batch_size",
    "train.resume",
    "train.overwrite",
    "train.output_dir",
    "data.num_workers",
    "data.cache_dir",
}
FIXED_SECTIONS = ("model.", "vocab.", "tokenizer.")
LEARNED = {"tokenizer.model"}  # given as none ("learn one"), these are the run's learned values


def resolve_resume(cfg: Config) -> tuple[Config, tuple[Path, Checkpoint] | None]:
    """The config to run and the checkpoint to resume from (None for a new run)."""
    run_dir = RunDirectory(cfg.train.output_dir)
    if not cfg.train.resume:
        if run_dir.holds_run() and not cfg.train.overwrite:
            raise ConfigError(
                f"train.output_dir {run_dir.path} holds another run: resume it with train.resume=auto, "
                f"replace it with train.overwrite=true, or choose another train.output_dir"
            )
        return cfg, None
    if cfg.train.resume == "auto":
        found = find_resume_checkpoint(run_dir.path)
        if found is None and run_dir.holds_run() and not cfg.train.overwrite:
            raise ConfigError(
                f"train.resume=auto: {run_dir.path} holds a run but no checkpoint to resume from (no last.pt or "
                f"step_N.pt); nothing was changed: start over with train.overwrite=true (deletes the run)"
            )
        if found is None:
            log.info("train.resume=auto: no checkpoint in %s, starting a new run", run_dir.path)
            return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=None, overwrite=True)), None
    else:
        found = (Path(cfg.train.resume), Checkpoint.load(cfg.train.resume))
        if found[1].training is None:
            raise ConfigError(
                f"train.resume={cfg.train.resume}: the checkpoint holds weights only (best.pt is for prediction); "
                f"resume from {found[0].with_name('last.pt')} or a step_N.pt, or use train.resume=auto"
            )
    return resume_config(found[1].config, cfg), found


def resume_config(saved: Config, given: Config) -> Config:
    """The checkpoint's config, with the given values of ``RESUMABLE_KEYS`` and ``predict.*``."""
    saved_flat, given_flat = _flatten(to_dict(saved)), _flatten(to_dict(given))
    changed = sorted(k for k, v in given_flat.items() if saved_flat.get(k) != v and not (k in LEARNED and v is None))
    shape = [k for k in changed if k.startswith(FIXED_SECTIONS)]
    if shape:
        diffs = "; ".join(f"{k}: {saved_flat.get(k)!r} -> {given_flat[k]!r}" for k in shape[:4])
        raise ConfigError(
            f"train.resume: the model cannot change on resume ({diffs}); start a new run in another train.output_dir"
        )
    kept = [k for k in changed if k not in RESUMABLE_KEYS and not k.startswith("predict.")]
    if kept:
        log.warning("resuming with the checkpoint's values of %s (they cannot change on resume)", ", ".join(kept))
    merged = {k: given_flat[k] if k in changed and k not in kept else v for k, v in saved_flat.items()}
    return from_dict(_unflatten(merged), source="resumed config")


def repair_best(directory: Path, resumed: Checkpoint) -> None:
    """Make ``best.pt`` the model of the resumed run's best step: a crash can leave it missing,
    corrupt or from another step. Rewritten from that step's checkpoint where one is left,
    otherwise reported."""
    best_step, path = resumed.progress.best_step, directory / "best.pt"
    if best_step == 0:  # no evaluation yet
        return
    try:
        found = Checkpoint.load(path).progress.step
        if found == best_step:
            return
        problem = f"{path} holds step {found}"
    except CheckpointError as err:
        problem = str(err)
    source = resumed if resumed.progress.step == best_step else None
    step_file = directory / f"step_{best_step}.pt"
    if source is None and step_file.exists():
        try:
            source = Checkpoint.load(step_file)
        except CheckpointError as err:
            problem += f"; {err}"
    if source is None:
        log.warning(
            "%s, but the best evaluation of the resumed run was at step %d and its checkpoint is gone: "
            "best.pt is written again at the next improvement",
            problem,
            best_step,
        )
        return
    dataclasses.replace(source, training=None).save(path)
    log.warning("%s; rewritten with the model of step %d, the resumed run's best", problem, best_step)


def capture_training_state(optimizer: Any, scheduler: Any, scaler: Any) -> TrainingState:
    """Everything but the weights and progress that an exact resume restores."""
    rng = {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return TrainingState(optimizer.state_dict(), scheduler.state_dict(), scaler.state_dict() if scaler else None, rng)


def restore_training_state(state: TrainingState, optimizer: Any, scheduler: Any, scaler: Any) -> None:
    optimizer.load_state_dict(state.optimizer)
    scheduler.load_state_dict(state.scheduler)
    if scaler and state.scaler:
        scaler.load_state_dict(state.scaler)
    random.setstate(state.rng["python"])
    torch.set_rng_state(state.rng["torch"])
    if torch.cuda.is_available() and state.rng["cuda"]:
        torch.cuda.set_rng_state_all(state.rng["cuda"])


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = tree
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return tree
