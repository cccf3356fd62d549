"""Checkpoint averaging: the parameter mean of checkpoints of one run (``s2s average``).

    s2s average --output avg.pt runs/x/step_3000.pt runs/x/step_3500.pt runs/x/step_4000.pt
    s2s average --output avg.pt --last 4 runs/x          # the 4 newest step_N.pt of the run

As OpenNMT-py's ``average_models``: every floating-point tensor of the weights is the mean of the
checkpoints' (summed in float64, so that averaging copies of one checkpoint gives it back
exactly); other tensors (counters) come from the newest. The result is a weights-only checkpoint
(no optimizer: it predicts, it does not resume) with the newest checkpoint's config and progress.
Checkpoints of one run differ at most in what a resume may change (``resume.RESUMABLE_KEYS``,
``predict.*``); any other difference in the config, or in the vocabularies, is refused.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from s2s.checkpoint import Checkpoint, step_checkpoints, vocabulary_mismatch
from s2s.config import to_dict
from s2s.errors import CheckpointError
from s2s.resume import RESUMABLE_KEYS, _flatten

log = logging.getLogger(__name__)


def average_checkpoints(paths: Sequence[str | Path]) -> Checkpoint:
    """The weight mean of the checkpoints at ``paths`` (oldest first: the last gives config and progress)."""
    if not paths:
        raise CheckpointError("average: no checkpoints given")
    checkpoints = [Checkpoint.load(path) for path in paths]
    newest, newest_path = checkpoints[-1], paths[-1]
    for path, ckpt in zip(paths, checkpoints):
        _check_same_run(ckpt, path, newest, newest_path)
    weights = {}
    for name, tensor in newest.model.items():
        if tensor.is_floating_point():
            total = sum(ckpt.model[name].double() for ckpt in checkpoints)
            weights[name] = (total / len(checkpoints)).to(tensor.dtype)
        else:
            weights[name] = tensor
    return dataclasses.replace(newest, model=weights, training=None)


def last_checkpoints(run_dir: str | Path, count: int) -> list[Path]:
    """The ``count`` newest ``step_N.pt`` files of a run directory, oldest first."""
    if count < 1:
        raise CheckpointError(f"average: --last {count}: give a count of at least 1")
    found = step_checkpoints(run_dir)
    if len(found) < count:
        raise CheckpointError(
            f"average: --last {count}, but {run_dir} holds {len(found)} step_N.pt checkpoint"
            f"{'s' if len(found) != 1 else ''}; train with train.keep_last={count} (or more) to keep them"
        )
    return found[:count][::-1]


def average_files(paths: Sequence[str | Path], output: str | Path) -> Checkpoint:
    """``s2s average``: average ``paths`` and save the result to ``output``."""
    averaged = average_checkpoints(paths)
    averaged.save(output)
    log.info("averaged %d checkpoints (step %d is the newest) -> %s", len(paths), averaged.progress.step, output)
    return averaged


def _check_same_run(ckpt: Checkpoint, path: str | Path, reference: Checkpoint, reference_path: str | Path) -> None:
    """Refuse a checkpoint whose vocabularies, config (beyond what a resume changes) or weights differ."""
    side = vocabulary_mismatch(ckpt, reference)
    if side:
        raise CheckpointError(
            f"average: {path} and {reference_path} have different {side} vocabularies: "
            "only checkpoints of one run can be averaged"
        )
    mine, theirs = _flatten(to_dict(ckpt.config)), _flatten(to_dict(reference.config))
    differing = sorted(
        key
        for key in mine.keys() | theirs.keys()
        if mine.get(key) != theirs.get(key) and key not in RESUMABLE_KEYS and not key.startswith("predict.")
    )
    if differing:
        key = differing[0]
        raise CheckpointError(
            f"average: {path} and {reference_path} have different configs ({key}: {mine.get(key)!r} vs "
            f"{theirs.get(key)!r}): only checkpoints of one run can be averaged"
        )
    if ckpt.model.keys() != reference.model.keys() or any(
        ckpt.model[name].shape != tensor.shape for name, tensor in reference.model.items()
    ):
        raise CheckpointError(f"average: the weights of {path} and {reference_path} do not match")
