"""Tokenizing files: truncation, stats, the worker pool, and the on-disk cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import s2s.corpus as corpus_module
from s2s.config import Config, override
from s2s.corpus import cache_key, tokenize_file
from s2s.errors import DataError

HEADER = "QID,Brand,Model,Question,Dialogue,Report\n"
ROWS = [
    "Q1,b,m,方向机重,技师说：[语音]|技师说：换助力泵,更换助力泵\n",
    "Q2,b,m,刹车异响,车主说：怎么办|技师说：检查刹车片,检查刹车片\n",
    "Q3,b,m,问题,技师说：答,\n",  # empty target
    "Q4,b,m,too few fields\n",  # malformed
]


def make_cfg(cache_dir: str, *overrides: str, **data) -> Config:
    """The default config with data.cache_dir, ``data`` options and ``key=value`` overrides."""
    return override(
        Config(),
        f"data.cache_dir={cache_dir}",
        *(f"data.{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in data.items()),
        *overrides,
    )


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "input" / "train.csv"
    path.parent.mkdir()
    path.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    return path


@pytest.fixture
def count_calls(monkeypatch) -> list[int]:
    """Counts the chunks the in-process tokenizer is asked to do."""
    calls = []
    original = corpus_module._ChunkTokenizer.__call__

    def counting(self, rows):
        calls.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(corpus_module._ChunkTokenizer, "__call__", counting)
    return calls


def test_tokens_stats_and_truncation(csv_file: Path, cache_dir: str) -> None:
    corpus = tokenize_file(csv_file, make_cfg(cache_dir, max_source_len=3, max_target_len=2), progress=False)
    assert corpus.ids == ["Q1", "Q2"]
    assert corpus.sources == [["方向机", "重", "技师"], ["刹车", "异响", "车主"]]
    assert corpus.targets == [["更换", "助力"], ["检查", "刹车片"]]
    s = corpus.stats
    assert (s.rows, s.malformed, s.empty, s.truncated_sources, s.truncated_targets) == (
        2,
        1,
        1,
        2,
        1,
    )
    untruncated = tokenize_file(csv_file, make_cfg(cache_dir, max_source_len=0, max_target_len=0), progress=False)
    assert untruncated.sources[0][:6] == ["方向机", "重", "技师", "说", "：", "换"]


def test_cache_miss_then_hit_outside_the_input_folder(csv_file: Path, cache_dir: str, count_calls) -> None:
    cfg = make_cfg(cache_dir)
    os.chmod(csv_file.parent, 0o555)  # the input may be read-only
    try:
        first = tokenize_file(csv_file, cfg, progress=False)
        assert count_calls == [2] and not first.cached
        second = tokenize_file(csv_file, cfg, progress=False)
    finally:
        os.chmod(csv_file.parent, 0o755)
    assert count_calls == [2] and second.cached  # the tokenizer was not called again
    assert (second.ids, second.sources, second.targets, second.stats) == (
        first.ids,
        first.sources,
        first.targets,
        first.stats,
    )
    assert sorted(os.listdir(csv_file.parent)) == ["train.csv"]
    assert len(list(Path(cache_dir).glob("train.csv-*.tok"))) == 1
    # a moved copy with the same bytes hits the same cache entry
    copy = csv_file.parent.parent / "copy" / "train.csv"
    copy.parent.mkdir()
    shutil.copy(csv_file, copy)
    assert tokenize_file(copy, cfg, progress=False).cached and count_calls == [2]


@pytest.mark.parametrize(
    "change",
    [
        lambda cfg, path: override(cfg, "tokenizer.type=jieba"),
        lambda cfg, path: override(cfg, "tokenizer.keep_ascii_words=false"),
        lambda cfg, path: override(cfg, "data.max_source_len=5"),
        lambda cfg, path: override(cfg, "data.clean.strip_prefixes=true"),
        lambda cfg, path: override(cfg, "data.source_fields=[Question]"),
        lambda cfg, path: path.write_text(HEADER + ROWS[0] + ROWS[1].replace("刹车", "离合"), encoding="utf-8") and cfg,
    ],
    ids=["tokenizer", "tokenizer-option", "truncation", "cleaning", "fields", "content"],
)
def test_cache_invalidation(csv_file: Path, cache_dir: str, count_calls, change) -> None:
    cfg = make_cfg(cache_dir, "tokenizer.type=char")
    tokenize_file(csv_file, cfg, progress=False)
    cfg = change(cfg, csv_file)
    corpus = tokenize_file(csv_file, cfg, progress=False)
    assert len(count_calls) == 2 and not corpus.cached


def test_bad_row_policy_is_part_of_the_key(csv_file: Path, cache_dir: str) -> None:
    """A corpus cached while skipping bad rows must not hide them from data.on_bad_row=error."""
    cfg = make_cfg(cache_dir)
    assert tokenize_file(csv_file, cfg, progress=False).stats.malformed == 1
    with pytest.raises(DataError, match=r"train\.csv:5: 4 fields"):
        tokenize_file(csv_file, override(cfg, "data.on_bad_row=error"), progress=False)


def test_user_dictionary_content_is_part_of_the_key(csv_file: Path, tmp_path: Path) -> None:
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("刹车异响 5 n\n", encoding="utf-8")
    cfg = override(Config(), f"tokenizer.user_dict={user_dict}")

    def key() -> str:
        return cache_key([csv_file], "automaster", cfg, need_target=True)

    first = key()
    assert key() == first
    user_dict.write_text("方向机重 5 n\n", encoding="utf-8")  # same path, new words
    assert key() != first


def test_need_target_false_keeps_every_row_and_has_its_own_entry(csv_file: Path, cache_dir: str) -> None:
    cfg = make_cfg(cache_dir)
    tokenize_file(csv_file, cfg, progress=False)
    corpus = tokenize_file(csv_file, cfg, need_target=False, progress=False)
    assert not corpus.cached and corpus.ids == ["Q1", "Q2", "Q3"] and corpus.targets[2] == []
    test_layout = csv_file.with_name("test.csv")
    test_layout.write_text("QID,Question,Dialogue\nT1,问,技师说：答\n", encoding="utf-8")
    corpus = tokenize_file(test_layout, cfg, need_target=False, progress=False)
    assert corpus.targets is None and corpus.sources == [["问", "技师", "说", "：", "答"]]


def test_corrupt_cache_is_rebuilt(csv_file: Path, cache_dir: str, caplog) -> None:
    cfg = make_cfg(cache_dir)
    first = tokenize_file(csv_file, cfg, progress=False)
    [cache_file] = Path(cache_dir).glob("*.tok")
    cache_file.write_bytes(cache_file.read_bytes()[:-3])
    again = tokenize_file(csv_file, cfg, progress=False)
    assert not again.cached and again.sources == first.sources
    assert "ignoring unreadable cache" in caplog.text
    assert tokenize_file(csv_file, cfg, progress=False).cached  # rewritten


def test_errors_are_raised_not_cached(csv_file: Path, tmp_path: Path, cache_dir: str) -> None:
    with pytest.raises(DataError, match=r"train\.csv:5: 4 fields"):
        tokenize_file(csv_file, make_cfg(cache_dir, on_bad_row="error"), progress=False)
    with pytest.raises(DataError, match="not found"):
        tokenize_file(tmp_path / "missing.csv", make_cfg(cache_dir), progress=False)
    assert not list(Path(cache_dir).glob("*.tok"))


@pytest.fixture
def pool_runs(monkeypatch) -> list[int]:
    """Lowers the pool threshold to 100 rows and records each use of the worker pool."""
    runs = []
    original = corpus_module._bounded_imap

    def recording(pool, func, items, in_flight):
        runs.append(in_flight)
        return original(pool, func, items, in_flight)

    monkeypatch.setattr(corpus_module, "_bounded_imap", recording)
    monkeypatch.setattr(corpus_module, "MIN_ROWS_FOR_POOL", 100)
    return runs


def test_worker_pool_matches_in_process(tmp_path: Path, cache_dir: str, monkeypatch, pool_runs) -> None:
    path = tmp_path / "big.tsv"
    lines = [f"源文本{i} 第{i % 7}行\t目标{i % 5}\n" for i in range(600)]
    path.write_text("".join(lines), encoding="utf-8")
    cfg = make_cfg(cache_dir, "tokenizer.type=char", num_workers=1)
    single = tokenize_file(path, cfg, progress=False)
    assert pool_runs == []  # one worker: in-process
    monkeypatch.setattr(corpus_module, "CHUNK_ROWS", 32)
    cfg = make_cfg(str(tmp_path / "cache2"), "tokenizer.type=char", num_workers=2)
    pooled = tokenize_file(path, cfg, progress=False)
    assert pool_runs == [8]  # 2 workers, 4 chunks each in flight
    assert pooled.ids == single.ids == [str(i) for i in range(1, 601)]  # order kept
    assert pooled.sources == single.sources and pooled.targets == single.targets
    assert pooled.sources[122] == ["源", "文", "本", "122", "第", "3", "行"]


def test_worker_pool_surfaces_reading_errors(tmp_path: Path, cache_dir: str, pool_runs) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes("".join(f"源{i}\t目标\n" for i in range(300)).encode() + b"\xff\tx\n")
    cfg = make_cfg(cache_dir, "tokenizer.type=char", num_workers=2)
    with pytest.raises(DataError, match=r"bad\.tsv:301: not UTF-8"):
        tokenize_file(path, cfg, progress=False)
    assert pool_runs == [8]  # the error came out of the pool path
