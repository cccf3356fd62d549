"""What the registry redesign must not change, pinned by fixtures written before it
(tests/fixtures/v1/README.md): old checkpoints and configs load, decode the same tokens and
resume exactly; a short quick-start run gives the same losses and dev predictions."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from s2s.checkpoint import Checkpoint
from s2s.config import load_config, to_dict
from s2s.predict import Summarizer, predict_file
from s2s.trainer import train

from conftest import ROOT, toy_tasks

V1 = ROOT / "tests" / "fixtures" / "v1"
TOY_OVERRIDES = [
    "data.train=toydata/train.tsv",
    "data.dev=toydata/dev.tsv",
    "data.cache_dir=cache",
    "model.embeddings.size=8",
    "model.encoder.hidden_size=8",
    "model.decoder.hidden_size=16",
    "model.decoder.type=pointer_generator",
    "model.decoder.coverage=true",
    "model.decoder.coverage_from_step=10",
    "vocab.source_size=30",
    "vocab.target_size=12",
    "train.eval_every=10",
    "train.log_every=2",
    "train.threads=1",
    "train.keep_last=5",
    "predict.max_length=12",
    "train.batch_size=32",
    "train.max_steps=40",
]


def metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl without the timings."""
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    return [{k: v for k, v in row.items() if k != "tokens_per_sec"} for row in rows]


@pytest.fixture
def toy_dir(tmp_path: Path, monkeypatch) -> Path:
    """A working directory with the toy data at the relative paths the v1 run used."""
    toy_tasks.write_task("copy_names", tmp_path / "toydata", n_train=400, n_dev=20, vocab=20)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_v1_checkpoint_loads_with_one_warning_and_decodes_the_same(toy_dir: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="s2s"):
        summarizer = Summarizer.load(V1 / "toy_step_20.pt", "cpu")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "train.optimizer.momentum" in warnings[0] and "data.clean" in warnings[0]
    assert summarizer.coverage  # coverage was on at step 20 (from step 10)
    expected = json.loads((V1 / "toy_step_20_decodes.json").read_text(encoding="utf-8"))
    sources = [line.split("\t")[0].split() for line in open("toydata/dev.tsv", encoding="utf-8")]
    for search in ("greedy", "beam"):
        outputs = summarizer.decode(sources, summarizer.options(search=search, beam_size=3))
        assert [o.tokens for o in outputs] == expected[search]
        assert [o.score for o in outputs] == pytest.approx(expected[f"{search}_scores"], abs=1e-5)


def test_v1_checkpoint_resumes_exactly(toy_dir: Path) -> None:
    """Resumed from the old format at step 20, the run logs what the old code logged without a stop."""
    (toy_dir / "run").mkdir()
    shutil.copy(V1 / "toy_step_20.pt", toy_dir / "run" / "last.pt")
    cfg = load_config(ROOT / "configs" / "toy.yaml", [*TOY_OVERRIDES, "train.output_dir=run", "train.resume=auto"])
    result = train(cfg, show_progress=False)
    assert result.steps == 40
    expected = [r for r in metrics(V1 / "toy_metrics.jsonl") if r["step"] > 20]
    resumed = metrics(toy_dir / "run" / "metrics.jsonl")
    assert len(resumed) == len(expected)
    for got, want in zip(resumed, expected):
        assert got.keys() == want.keys()
        assert got == pytest.approx(want, rel=1e-5)
    assert Checkpoint.load(result.last_checkpoint).to_dict()["version"] == 2


def test_v1_resolved_config_loads_as_the_checkpoint_holds_it(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="s2s"):
        cfg = load_config(V1 / "toy_config.yaml")
    assert "ignored 13 option(s)" in caplog.text and "tokenizer.keep_ascii_words" in caplog.text
    assert to_dict(cfg) == to_dict(Checkpoint.load(V1 / "toy_step_20.pt").config) | {
        "train": to_dict(cfg)["train"]
    }  # the same but for the step the run was at
    assert cfg.train.optimizer.betas == [0.9, 0.999] and not hasattr(cfg.train.optimizer, "momentum")


def test_quickstart_gives_the_same_losses_and_dev_predictions(tmp_path: Path) -> None:
    saved = load_config(V1 / "quickstart_30_config.yaml")  # the old run's resolved config, migrated
    sample = ROOT / "data"
    cfg = load_config(
        ROOT / "configs" / "quickstart.yaml",
        [
            "train.max_steps=30",
            "train.eval_every=30",
            "train.log_every=5",
            "train.threads=1",
            "data.num_workers=1",
            f"train.output_dir={tmp_path / 'qs'}",
            f"data.cache_dir={tmp_path / 'cache'}",
            f"data.train={sample / 'automaster_sample.csv'}",
            f"data.dev={sample / 'automaster_sample_dev.csv'}",
        ],
    )
    assert to_dict(cfg)["model"] == to_dict(saved)["model"] and to_dict(cfg)["vocab"] == to_dict(saved)["vocab"]
    result = train(cfg, show_progress=False)
    for got, want in zip(
        metrics(tmp_path / "qs" / "metrics.jsonl"), metrics(V1 / "quickstart_30_metrics.jsonl"), strict=True
    ):
        assert got == pytest.approx(want, rel=1e-5)
    predict_file(result.best_checkpoint, sample / "automaster_sample_dev.csv", tmp_path / "dev.csv")
    expected = (V1 / "quickstart_30_dev_predictions.csv").read_text(encoding="utf-8")
    assert (tmp_path / "dev.csv").read_text(encoding="utf-8") == expected
