"""Shared fixtures. Tests that need the real data in ../shared/data skip when it is absent."""
from __future__ import annotations

import os
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
