"""A run directory (``train.output_dir``): what a run writes there, besides its checkpoints.

``config.yaml`` (the resolved config), the vocabularies, a learned tokenizer model
(``sentencepiece.model``), ``train.log`` (the log lines),
``metrics.jsonl`` (one JSON record per training log line and per evaluation) and ``tensorboard/``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from s2s.assets import write_atomically
from s2s.config import Config, save_config
from s2s.vocabulary import Vocabulary

log = logging.getLogger(__name__)

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")  # a directory holding any of them holds a run


class RunDirectory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metrics = self.path / "metrics.jsonl"
        self.log_file = self.path / "train.log"
        self.tensorboard = self.path / "tensorboard"
        self._handler: logging.Handler | None = None

    def holds_run(self) -> bool:
        return any((self.path / name).exists() for name in RUN_FILES) or any(self.path.glob("step_*.pt"))

    def start(self, cfg: Config, *, resumed: bool) -> None:
        """Remove half-written checkpoints, clear a replaced run (new runs), write the resolved
        config, send log lines to train.log."""
        self.path.mkdir(parents=True, exist_ok=True)
        for orphan in self.path.glob(".*.pt.*.tmp"):  # left by a process killed while saving
            log.warning("removing %s, a checkpoint left half-written by a killed run", orphan)
            orphan.unlink(missing_ok=True)
        if not resumed:
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
            for path in self.path.glob("step_*.pt"):
                path.unlink()
            shutil.rmtree(self.tensorboard, ignore_errors=True)
        save_config(cfg, self.path / "config.yaml")
        self._handler = logging.FileHandler(self.log_file, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        package_log = logging.getLogger("s2s")
        package_log.addHandler(self._handler)
        package_log.setLevel(logging.INFO)

    def close(self) -> None:
        if self._handler is not None:
            logging.getLogger("s2s").removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def drop_metrics_after(self, step: int) -> None:
        """Forget what a crashed run logged after the checkpoint it resumes from."""
        if not self.metrics.exists():
            return
        kept = []
        for number, line in enumerate(self.metrics.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a kill mid-write tears the last line
                log.warning("%s:%d: dropping a torn record (%.40s...)", self.metrics, number, line)
                continue
            if record["step"] <= step:
                kept.append(line + "\n")
        self.metrics.write_text("".join(kept), encoding="utf-8")

    def save_tokenizer_model(self, cfg: Config, learned: Path) -> None:
        """Copy the model the tokenizer learned into the run (``sentencepiece.model``); the config names the copy."""
        copy = self.path / f"{cfg.tokenizer.type}.model"
        write_atomically(copy, learned.read_bytes())
        cfg.tokenizer.model = str(copy)
        save_config(cfg, self.path / "config.yaml")

    def save_vocabularies(self, src_vocab: Vocabulary, tgt_vocab: Vocabulary) -> list[Path]:
        """``vocab.txt`` (shared) or ``src_vocab.txt`` + ``tgt_vocab.txt``; returns the paths."""
        named = (
            {"vocab.txt": src_vocab}
            if src_vocab is tgt_vocab
            else {"src_vocab.txt": src_vocab, "tgt_vocab.txt": tgt_vocab}
        )
        for name, vocab in named.items():
            vocab.save(self.path / name)
        return [self.path / name for name in named]
