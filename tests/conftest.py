"""Shared fixtures. Tests that need the real data in ../shared/data skip when it is absent."""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from s2s.config import Config
    from s2s.trainer import TrainResult

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("S2S_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The folder of real data (AutoMaster, CSL); skips the test where it is absent."""
    if not (SHARED_DATA / "automaster" / "train.csv").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (set S2S_SHARED_DATA to its folder)")
    return SHARED_DATA


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    """A private tokenization cache, so tests never read or write the user's ~/.cache/s2s."""
    return str(tmp_path / "cache")


def _load_script(name: str):
    """A module from scripts/ (not a package), e.g. the toy-task generator."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


toy_tasks = _load_script("make_toy_data")


@dataclass
class ToyRun:
    result: TrainResult
    cfg: Config
    dev: Path  # the dev TSV: source<TAB>target

    def pairs(self) -> list[tuple[list[str], list[str]]]:
        rows = [line.rstrip("\n").split("\t") for line in open(self.dev, encoding="utf-8")]
        return [(source.split(), target.split()) for source, target in rows]


def train_toy_model(
    directory: Path,
    task: str,
    *overrides: str,
    n_train: int = 3000,
    vocab: int = 20,
    name: str = "run",
    lengths: tuple[int, int] = (3, 10),
    config: str = "toy.yaml",
) -> ToyRun:
    """Train configs/toy.yaml (or another ``config``) on a synthetic task (sources of ``lengths``
    tokens, min and max), everything under ``directory``."""
    from s2s.config import load_config
    from s2s.trainer import train

    low, high = lengths
    train_tsv, dev_tsv = toy_tasks.write_task(
        task, directory / f"{task}-{vocab}-{low}-{high}", n_train=n_train, vocab=vocab, min_len=low, max_len=high
    )
    cfg = load_config(
        ROOT / "configs" / config,
        [
            f"data.train={train_tsv}",
            f"data.dev={dev_tsv}",
            f"data.cache_dir={directory / 'cache'}",
            f"train.output_dir={directory / name}",
            *overrides,
        ],
    )
    return ToyRun(train(cfg, show_progress=False), cfg, dev_tsv)


@pytest.fixture
def train_toy(tmp_path: Path):
    """train_toy("reverse", "key=value", ...): train configs/toy.yaml in this test's tmp_path."""
    return functools.partial(train_toy_model, tmp_path)


@pytest.fixture(scope="session")
def pointer_generator(tmp_path_factory) -> Path:
    """The best checkpoint of a tiny pointer-generator trained for 30 steps on the shipped
    AutoMaster sample (configs/quickstart.yaml, shrunk): a real model in about 10 s, once per session.
    One thread (then restored): a model this small gains nothing from more, and loses much when
    the cores are busy."""
    import torch

    from s2s.config import load_config
    from s2s.trainer import train

    tmp = tmp_path_factory.mktemp("pointer_generator")
    cfg = load_config(
        ROOT / "configs" / "quickstart.yaml",
        [
            f"data.train={ROOT / 'data' / 'automaster_sample.csv'}",
            f"data.dev={ROOT / 'data' / 'automaster_sample_dev.csv'}",
            f"data.cache_dir={tmp / 'cache'}",
            f"train.output_dir={tmp / 'run'}",
            "data.num_workers=1",
            "data.max_source_len=120",
            "vocab.source_size=2000",
            "vocab.target_size=1000",
            "model.embeddings.size=16",
            "model.encoder.hidden_size=16",
            "model.decoder.hidden_size=32",
            "train.max_steps=30",
            "train.eval_every=0",
            "train.log_every=10",
            "predict.beam_size=2",
            "predict.max_length=20",
            "train.threads=1",
        ],
    )
    threads = torch.get_num_threads()
    try:
        return train(cfg, show_progress=False).best_checkpoint
    finally:
        torch.set_num_threads(threads)
