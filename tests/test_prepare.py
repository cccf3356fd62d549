"""prepare(): train/dev/test corpora, the dev split, vocabularies, the sample under data/."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from s2s.config import Config, override
from s2s.corpus import TokenizedCorpus
from s2s.errors import ConfigError, DataError
from s2s.prepare import prepare, split_rows, write_splits
from s2s.rundir import RunDirectory
from s2s.vocabulary import Vocabulary

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "automaster_sample.csv"


def make_cfg(cache_dir: str, *overrides: str, **data) -> Config:
    """The sample as data.train, with ``data`` options and ``key=value`` overrides."""
    data = {"train": str(SAMPLE), **data}
    return override(
        Config(),
        f"data.cache_dir={cache_dir}",
        *(f"data.{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in data.items()),
        *overrides,
    )


def toy(n: int) -> TokenizedCorpus:
    return TokenizedCorpus("toy", [str(i) for i in range(n)], [[str(i)] for i in range(n)], [["t"]] * n)


def test_split_dev_is_deterministic_and_disjoint() -> None:
    corpus = toy(100)
    train, dev, test = split_rows(corpus, dev=0.1, test=0, seed=7)
    assert len(dev) == 10 and len(train) == 90 and test is None
    assert sorted(train.ids + dev.ids, key=int) == corpus.ids and not set(train.ids) & set(dev.ids)
    assert dev.ids == sorted(dev.ids, key=int)  # file order kept
    assert split_rows(corpus, dev=0.1, test=0, seed=7)[1].ids == dev.ids
    assert split_rows(corpus, dev=0.1, test=0, seed=8)[1].ids != dev.ids
    assert len(split_rows(corpus, dev=25, test=0, seed=7)[1]) == 25
    with pytest.raises(ConfigError, match="data.dev_split: 100"):
        split_rows(corpus, dev=100, test=0, seed=7)


def test_the_test_split_is_disjoint_and_leaves_the_dev_split_as_it_was() -> None:
    corpus = toy(100)
    dev_alone = split_rows(corpus, dev=0.1, test=0, seed=7)[1]
    train, dev, test = split_rows(corpus, dev=0.1, test=0.2, seed=7)
    assert (len(train), len(dev), len(test)) == (70, 10, 20)
    assert dev.ids == dev_alone.ids  # a test split does not move the dev rows
    assert sorted(train.ids + dev.ids + test.ids, key=int) == corpus.ids  # disjoint, nothing lost
    assert test.ids == sorted(test.ids, key=int)
    assert split_rows(corpus, dev=0.3, test=0.2, seed=7)[2].ids == test.ids  # nor the dev split the test rows
    assert split_rows(corpus, dev=0, test=20, seed=7)[2].ids == test.ids  # a count, and without a dev split
    assert split_rows(corpus, dev=0, test=20, seed=8)[2].ids != test.ids  # fixed by the seed
    with pytest.raises(ConfigError, match="data.dev_split \\+ data.test_split: 50 dev \\+ 50 test rows of 100"):
        split_rows(corpus, dev=50, test=0.5, seed=7)
    with pytest.raises(ConfigError, match="data.test_split: 0.001 gives 0 test rows"):
        split_rows(corpus, dev=0, test=0.001, seed=7)


def test_prepare_the_sample_with_a_dev_split(cache_dir: str, caplog) -> None:
    cfg = make_cfg(cache_dir, dev_split=30)
    cfg.vocab.source_size, cfg.vocab.target_size = 2000, 1000
    with caplog.at_level(logging.INFO):
        data = prepare(cfg, progress=False)
    assert (len(data.train), len(data.dev), data.test) == (240, 30, None)
    assert len(data.src_vocab) == 2004 and len(data.tgt_vocab) == 1004
    dev_words = {t for s in data.dev.sources for t in s} - {t for s in data.train.sources for t in s}
    assert dev_words and not any(w in data.src_vocab for w in dev_words)  # train split only
    assert "automaster_sample.csv: 270 rows" in caplog.text and "dev: 30 rows carved" in caplog.text
    again = prepare(cfg, progress=False)
    assert again.train.cached and again.dev.ids == data.dev.ids and again.src_vocab == data.src_vocab


def test_the_dev_split_is_written_as_a_file_predict_and_evaluate_read(cache_dir: str, tmp_path: Path) -> None:
    cfg = make_cfg(cache_dir, dev_split=30)
    data = prepare(cfg, progress=False)
    path = write_splits(cfg, data, tmp_path)["dev"]
    assert path.name == "dev_split.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["QID"] for r in rows] == data.dev.ids
    assert list(rows[0]) == ["QID", "Brand", "Model", "Question", "Dialogue", "Report"]
    cfg.data.train, cfg.data.dev_split = str(path), 0  # the written rows read back as the same corpus
    assert prepare(cfg, progress=False).train.sources == data.dev.sources

    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"source {i}\ttarget {i}\n" for i in range(10)), encoding="utf-8")
    cfg = make_cfg(cache_dir, "tokenizer.type=whitespace", train=str(tsv), dev_split=3)
    data = prepare(cfg, progress=False)
    lines = write_splits(cfg, data, tmp_path)["dev"].read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[0].split() for line in lines] == data.dev.sources
    cfg.data.dev = str(tsv)  # a dev file of its own: no split to write
    assert write_splits(cfg, prepare(cfg, progress=False), tmp_path / "none") == {}


def test_the_test_split_is_held_out_of_training_and_the_vocabularies(cache_dir: str, tmp_path: Path, caplog) -> None:
    cfg = make_cfg(cache_dir, dev_split=30, test_split=0.1)
    with caplog.at_level(logging.INFO):
        data = prepare(cfg, progress=False)
    assert (len(data.train), len(data.dev), len(data.test_split)) == (213, 30, 27)
    assert data.dev.ids == prepare(make_cfg(cache_dir, dev_split=30), progress=False).dev.ids
    assert not set(data.test_split.ids) & (set(data.train.ids) | set(data.dev.ids))
    unseen = {t for s in data.test_split.sources for t in s} - {t for s in data.train.sources for t in s}
    assert unseen and not any(w in data.src_vocab for w in unseen)
    assert "test: 27 rows carved" in caplog.text
    paths = write_splits(cfg, data, tmp_path)
    assert sorted(p.name for p in paths.values()) == ["dev_split.csv", "test_split.csv"]
    with open(paths["test"], encoding="utf-8", newline="") as f:
        assert [r["QID"] for r in csv.DictReader(f)] == data.test_split.ids

    cfg = make_cfg(cache_dir, dev=str(ROOT / "data" / "automaster_sample_dev.csv"), test_split=20)
    data = prepare(cfg, progress=False)  # a dev file of its own: the test split alone is carved
    assert (len(data.train), len(data.dev), len(data.test_split)) == (250, 30, 20)
    assert list(write_splits(cfg, data, tmp_path)) == ["test"]


def test_prepare_with_dev_and_test_files_and_shared_vocab(cache_dir: str, tmp_path: Path) -> None:
    cfg = make_cfg(
        cache_dir,
        dev=str(ROOT / "data" / "automaster_sample_dev.csv"),
        test=str(ROOT / "data" / "automaster_sample_test.csv"),
        dev_split=0.5,  # ignored: a dev file is given
    )
    cfg = override(cfg, "tokenizer.type=char", "vocab.shared=true", "vocab.source_size=500")
    data = prepare(cfg, progress=False)
    assert (len(data.train), len(data.dev), len(data.test)) == (270, 30, 5)
    assert data.test.targets is None and data.test.ids[0] == "Q325"
    assert data.src_vocab is data.tgt_vocab and len(data.src_vocab) == 504
    [path] = RunDirectory(tmp_path).save_vocabularies(data.src_vocab, data.tgt_vocab)
    assert path.name == "vocab.txt" and Vocabulary.load(path) == data.src_vocab


def test_prepare_needs_rows(cache_dir: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.train is not set"):
        prepare(make_cfg(cache_dir, train=None), progress=False)
    header_only = tmp_path / "h.csv"
    header_only.write_text("QID,Question,Dialogue,Report\nQ1,q,d,\n", encoding="utf-8")
    with pytest.raises(DataError, match="no usable rows .*1 with an empty source or target"):
        prepare(make_cfg(cache_dir, train=str(header_only)), progress=False)


def test_prepare_csl(shared_data: Path, cache_dir: str) -> None:
    cfg = make_cfg(
        cache_dir,
        train=str(shared_data / "csl/ts_dev.tsv"),
        test=str(shared_data / "csl/ts_test.tsv"),
        format="tsv",
    )
    cfg = override(cfg, "tokenizer.type=char")
    data = prepare(cfg, progress=False)
    assert (len(data.train), len(data.test)) == (1000, 1000) and data.test.targets is not None
    assert data.train.sources[0][:4] == ["采", "用", "修", "正"]
