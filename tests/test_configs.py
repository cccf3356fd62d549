"""The shipped configs: each loads, validates and builds its model; the presets prepare their data."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2s.config import load_config, validate
from s2s.corpus import TokenizedCorpus
from s2s.model import build_model
from s2s.prepare import prepare
from s2s.vocabulary import SPECIALS, Vocabulary

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
PRESETS = [
    "automaster_seq2seq.yaml",
    "automaster_pgn.yaml",
    "automaster_pgn_coverage.yaml",
    "automaster_transformer_pgn.yaml",
    "csl_pgn.yaml",
    "csl_transformer_pgn.yaml",
]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_builds_its_model(path: Path) -> None:
    cfg = load_config(path)
    validate(cfg, str(path))
    tokens = [*SPECIALS, "甲", "乙", "丙"]
    model = build_model(cfg.model, tokens, tokens)
    vocab = Vocabulary(tokens)
    corpus = TokenizedCorpus("t", ["0"], [["甲", "|", "乙", "。", "丙"]], None)
    batch = model.collate(model.encode_corpus(corpus, vocab, vocab), [0])  # the family's own examples
    if not model.writes_tokens:  # the parts' shapes fit together
        assert len(model.summarize(batch, cfg.predict)[0][0].segments) >= 2  # turns or sentences
        return
    memory, _ = model.encode(batch)
    if cfg.model.type == "transformer":  # per decoder layer: (batch, heads, src_len, d_head)
        m = cfg.model
        assert [k.shape for k in memory.keys] == [(1, m.heads, 5, m.d_model // m.heads)] * m.decoder_layers
        return
    directions = 2 if cfg.model.encoder.bidirectional else 1
    assert memory.keys.shape == (1, 5, directions * cfg.model.encoder.hidden_size)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_prepare_their_data(name: str, shared_data: Path, tmp_path: Path) -> None:
    files = (
        {"data.train": "automaster/train.csv"}
        if name.startswith("automaster")
        else {"data.train": "csl/ts_dev.tsv", "data.test": "csl/ts_test.tsv"}
    )
    overrides = [f"{key}={shared_data / path}" for key, path in files.items()]
    cfg = load_config(CONFIG_DIR / name, [*overrides, f"data.cache_dir={tmp_path}"])
    data = prepare(cfg, progress=False)
    assert data.dev is not None and len(data.dev) == (110 if name.startswith("automaster") else 100)
    held_out = len(data.test_split) if data.test_split else 0
    assert (len(data.dev), held_out) == ((110, 110) if name.startswith("automaster") else (100, 0))
    assert len(data.train) + len(data.dev) + held_out in (1101, 1000)
    assert max(map(len, data.train.sources)) <= cfg.data.max_source_len
