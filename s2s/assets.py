"""Files a config names (a tokenizer's learned model, a jieba user dictionary), carried inside checkpoints.

    assets = pack_assets(cfg)            # {"tokenizer.model": b"..."}: saved with the weights
    restore_assets(cfg, assets)          # on load: cfg.tokenizer.model names a file with those bytes

A checkpoint stays self-contained: where the named file is missing or differs (another machine, a
deleted run directory), its bytes are written to ``data.cache_dir/assets`` under their digest and
the option points there.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from s2s.config import Config
from s2s.tokenizers import tokenizer_files


def pack_assets(cfg: Config) -> dict[str, bytes]:
    """The bytes of every file the tokenizer's options name, by dotted option (``tokenizer.model``)."""
    return {f"tokenizer.{name}": path.read_bytes() for name, path in tokenizer_files(cfg.tokenizer).items()}


def restore_assets(cfg: Config, assets: dict[str, bytes]) -> None:
    """Point each option of ``assets`` at a file holding its bytes: the named one where it holds them."""
    for key, blob in assets.items():
        section, name = key.split(".", 1)
        options = getattr(cfg, section)
        named = getattr(options, name)
        if named and Path(named).is_file() and Path(named).read_bytes() == blob:
            continue
        digest = hashlib.sha256(blob).hexdigest()[:20]
        path = Path(cfg.data.cache_dir).expanduser() / "assets" / f"{digest}-{Path(named or name).name}"
        if not path.is_file():
            write_atomically(path, blob)
        setattr(options, name, str(path))


def write_atomically(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` by a temporary file and a rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
