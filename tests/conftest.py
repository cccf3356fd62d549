"""Shared fixtures. Tests that need the real data in ../shared/data skip when it is absent."""
from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

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
    result: "TrainResult"
    cfg: "Config"
    dev: Path  # the dev TSV: source<TAB>target

    def pairs(self) -> list[tuple[list[str], list[str]]]:
        rows = [line.rstrip("\n").split("\t") for line in open(self.dev, encoding="utf-8")]
        return [(source.split(), target.split()) for source, target in rows]


def train_toy_model(directory: Path, task: str, *overrides: str, n_train: int = 3000, vocab: int = 20,
                    name: str = "run") -> ToyRun:
    """Train configs/toy.yaml on a synthetic task, everything under ``directory``."""
    from s2s.config import load_config
    from s2s.trainer import train

    train_tsv, dev_tsv = toy_tasks.write_task(task, directory / f"{task}-{vocab}", n_train=n_train, vocab=vocab)
    cfg = load_config(ROOT / "configs" / "toy.yaml", [
        f"data.train={train_tsv}", f"data.dev={dev_tsv}", f"data.cache_dir={directory / 'cache'}",
        f"train.output_dir={directory / name}", *overrides,
    ])
    return ToyRun(train(cfg, show_progress=False), cfg, dev_tsv)


@pytest.fixture
def train_toy(tmp_path: Path):
    """train_toy("reverse", "key=value", ...): train configs/toy.yaml in this test's tmp_path."""
    return functools.partial(train_toy_model, tmp_path)
