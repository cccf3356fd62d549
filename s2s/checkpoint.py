"""The checkpoint format: one type, read and written only here.

A checkpoint is self-contained (weights + resolved config + vocabularies + progress, and the
bytes of the files the config names, such as a SentencePiece model: ``assets``), written
atomically and read with ``torch.load(weights_only=True)``: tensors, numbers, strings, bytes,
lists and dicts only (a file holding other objects is refused); a file whose bytes changed after
it was written (the CRC-32 of a member of its zip archive fails) is refused as corrupt. Files in a
run directory (``train.output_dir``):

- ``best.pt``: the best model so far (by ``train.keep_best_by``), for prediction;
- ``last.pt``: everything needed to resume (optimizer, scheduler, progress, random states),
  written at every evaluation and at exit;
- ``step_N.pt``: the same as last.pt at step N; the last ``train.keep_last`` are kept.

Version 1 (s2s before 0.2) is read through the config migration: its closed config layout is
mapped onto the parts' own options, with one warning naming the keys that no longer apply.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from s2s.assets import restore_assets
from s2s.config import Config, from_dict, to_dict
from s2s.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

FORMAT = "s2s-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)
STEP_FILE = re.compile(r"step_(\d+)\.pt$")
FOREIGN_OBJECT = re.compile(r"Unsupported global: GLOBAL (\S+)")  # torch.load(weights_only=True) refused it


class NewerCheckpointError(CheckpointError):
    """A newer s2s wrote the checkpoint (its format version is above ``VERSION``)."""


@dataclass
class Progress:
    """Where training stands: saved in every checkpoint, restored on resume."""

    step: int = 0  # updates done
    epoch: int = 0  # the current epoch (0-based)
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    best_score: float | None = None  # by train.keep_best_by
    best_step: int = 0
    bad_evals: int = 0  # evaluations since the best one (early stopping)
    coverage_on: bool = False  # whether the model decodes with coverage (it was on at this step)
    seconds: float = 0.0  # training time so far, resumed runs included (train.max_minutes)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Progress:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass
class TrainingState:
    """What resuming needs beyond the weights (``last.pt``, ``step_N.pt``; not ``best.pt``)."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    rng: dict[str, Any]  # {"python": random.getstate(), "torch": ..., "cuda": [...]}


@dataclass
class Checkpoint:
    config: Config
    src_vocab: list[str]
    tgt_vocab: list[str]
    model: dict[str, torch.Tensor]  # the model's state_dict
    progress: Progress = field(default_factory=Progress)
    training: TrainingState | None = None
    assets: dict[str, bytes] = field(default_factory=dict)  # files the config names (assets.py)

    def to_dict(self) -> dict[str, Any]:
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "config": to_dict(self.config),
            "src_vocab": self.src_vocab,
            "tgt_vocab": self.tgt_vocab,
            "model": self.model,
            "progress": dataclasses.asdict(self.progress),
        }
        if self.assets:
            payload["assets"] = self.assets
        if self.training is not None:
            payload |= dataclasses.asdict(self.training)
        return payload

    @classmethod
    def from_dict(cls, raw: Any, path: str | Path = "<checkpoint>") -> Checkpoint:
        """Check ``raw`` (what ``torch.load`` gave) and read it; older versions are migrated."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not an s2s checkpoint")
        if raw.get("version") not in READABLE_VERSIONS:
            newer = isinstance(raw.get("version"), int) and raw["version"] > VERSION
            raise (NewerCheckpointError if newer else CheckpointError)(
                f"{path}: checkpoint format version {raw.get('version')}; this s2s reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))} (a newer s2s wrote it: upgrade s2s)"
            )
        missing = [key for key in ("config", "src_vocab", "tgt_vocab", "model", "progress") if key not in raw]
        if missing:
            raise CheckpointError(f"{path}: not a complete s2s checkpoint (no {', '.join(missing)})")
        try:
            config = from_dict(raw["config"], source=f"{path} (saved config)")
        except ConfigError as err:
            raise CheckpointError(f"{err}: the checkpoint comes from another version of s2s") from None
        training = None
        if all(key in raw for key in ("optimizer", "scheduler", "rng")):
            training = TrainingState(raw["optimizer"], raw["scheduler"], raw.get("scaler"), raw["rng"])
        progress = Progress.from_dict(raw["progress"])
        assets = raw.get("assets", {})
        restore_assets(config, assets)
        return cls(config, list(raw["src_vocab"]), list(raw["tgt_vocab"]), raw["model"], progress, training, assets)

    def save(self, path: str | Path) -> None:
        """Write to ``path`` atomically: a crash mid-write leaves the old file intact."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(self.to_dict(), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
        """Read and check a checkpoint; a missing, corrupt or foreign file is a ``CheckpointError``."""
        path = Path(path)
        if path.is_dir():
            raise CheckpointError(f"{path} is a directory, not a checkpoint: name a file in it (best.pt, last.pt)")
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
        _check_crcs(path)
        try:
            raw = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # torch raises many kinds on a truncated or foreign file
            if isinstance(err, pickle.UnpicklingError) and (found := FOREIGN_OBJECT.search(str(err))):
                raise CheckpointError(
                    f"{path}: refused: the file holds objects other than tensors, numbers, strings, lists and "
                    f"dicts ({found.group(1)}; loading them could run code), and an s2s checkpoint holds none"
                ) from None
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(
                f"{path}: cannot read the checkpoint; it may be truncated or corrupt ({reason})"
            ) from None
        return cls.from_dict(raw, path)

    def build_model(self, path: str | Path = "<checkpoint>") -> Any:
        """The model with its weights loaded, in eval mode."""
        from s2s.model import build_model

        options = self.config.model
        for section in (options, getattr(options, "embeddings", None)):  # the weights below hold the vectors
            if hasattr(section, "pretrained"):
                section.pretrained = None
        model = build_model(options, self.src_vocab, self.tgt_vocab)
        try:
            model.load_state_dict(self.model)
        except RuntimeError as err:
            raise CheckpointError(f"{path}: weights do not fit the saved config ({str(err).splitlines()[0]})") from None
        return model.eval()


def vocabulary_mismatch(a: Checkpoint, b: Checkpoint) -> str | None:
    """Which vocabulary of two checkpoints differs ("source", "target"), or None: the same ids mean
    the same words (what averaging and ensembles need)."""
    if a.src_vocab != b.src_vocab:
        return "source"
    return "target" if a.tgt_vocab != b.tgt_vocab else None


def _check_crcs(path: Path) -> None:
    """Bit rot: every member of the zip archive ``torch.save`` writes has a CRC-32, which
    ``torch.load`` does not check; a file that is not a zip archive is left to ``torch.load``."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except Exception as err:  # a damaged header: zipfile raises several kinds
        damaged = f"the archive ({err})"
    if damaged:
        raise CheckpointError(
            f"{path}: the checkpoint is corrupt ({damaged} fails its CRC check: the file changed after it was "
            f"written); use another checkpoint of the run (last.pt, step_N.pt) or a backup"
        )


def step_checkpoints(directory: str | Path) -> list[Path]:
    """The ``step_N.pt`` files of a run directory, newest (highest N) first."""
    found = [(int(m.group(1)), p) for p in Path(directory).glob("step_*.pt") if (m := STEP_FILE.search(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def prune_step_checkpoints(directory: str | Path, keep: int) -> None:
    for path in step_checkpoints(directory)[keep:]:
        path.unlink(missing_ok=True)


def find_resume_checkpoint(directory: str | Path) -> tuple[Path, Checkpoint] | None:
    """The resumable checkpoint of a run directory with the most updates (``last.pt`` or a
    ``step_N.pt``; ``last.pt`` on a tie); None where there is no checkpoint at all.

    Unreadable files are skipped with a warning, but a directory whose checkpoints all fail to
    load, or that holds one of a newer format version, is a ``CheckpointError``: starting over
    would delete the run.
    """
    last = Path(directory) / "last.pt"
    found: tuple[Path, Checkpoint] | None = None
    failures = []
    for path in [last, *step_checkpoints(directory)]:  # the step files newest first
        if not path.exists():
            continue
        try:
            ckpt = Checkpoint.load(path)
        except NewerCheckpointError:
            raise
        except CheckpointError as err:
            log.warning("skipping %s", err)
            failures.append(str(err))
            continue
        if ckpt.training is None:
            failures.append(f"{path}: holds weights only")
            continue
        if found is None or ckpt.progress.step > found[1].progress.step:
            found = path, ckpt
        if path != last:  # the newest step file that loads: older ones cannot be newer
            break
    if found:
        return found
    if failures:
        raise CheckpointError(
            f"train.resume=auto: no checkpoint in {directory} can be resumed ({'; '.join(failures)}); "
            f"nothing was changed: start over with train.overwrite=true (deletes the run) or resume "
            f"from a copy of the checkpoints with train.resume=PATH"
        )
    return None
