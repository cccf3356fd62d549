"""s2s embeddings: word2vec on a config's training split (+ extra files), in the format the models read."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from s2s.cli import main
from s2s.config import Config, override
from s2s.embeddings import Embeddings, load_pretrained
from s2s.errors import ConfigError, MissingExtraError
from s2s.prepare import prepare
from s2s.vocabulary import SPECIALS
from s2s.word2vec import Word2VecOptions, embedding_target, format_report, train_vectors

pytest.importorskip("gensim", reason="the vectors extra: pip install 's2s-summarizer[vectors]'")
import numpy as np  # noqa: E402  (gensim's dependency)

TOPICS = {"a": [f"a{i}" for i in range(8)], "b": [f"b{i}" for i in range(8)]}


def topic_data(path: Path, rows: int = 200) -> Path:
    """Rows whose source and target draw words from one topic each; every row also has a word of its own."""
    rng = random.Random(0)
    lines = []
    for i in range(rows):
        words = TOPICS["ab"[i % 2]]
        source = " ".join(rng.choices(words, k=12) + [f"row{i}"])
        lines.append(f"{source}\t{' '.join(rng.choices(words, k=4))}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def make_cfg(tmp_path: Path, *overrides: str) -> Config:
    return override(
        Config(),
        f"data.train={topic_data(tmp_path / 'topics.tsv')}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.dev_split=20",
        "data.test_split=20",
        "tokenizer.type=whitespace",
        "model.embeddings.size=16",
        *overrides,
    )


def read_vectors(path: Path) -> dict[str, np.ndarray]:
    lines = path.read_text(encoding="utf-8").splitlines()
    count, size = map(int, lines[0].split())
    vectors = {word: np.array(values, dtype=float) for word, *values in (line.split(" ") for line in lines[1:])}
    assert len(vectors) == count and all(v.shape == (size,) for v in vectors.values())
    return vectors


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_vectors_learn_which_words_go_together_and_load_into_the_model(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    report = train_vectors(cfg, tmp_path / "vectors.txt", options=Word2VecOptions(epochs=20))
    vectors = read_vectors(report.path)
    same = [cosine(vectors[f"{t}0"], vectors[f"{t}{i}"]) for t in "ab" for i in range(1, 8)]
    across = [cosine(vectors[f"a{i}"], vectors[f"b{i}"]) for i in range(8)]
    assert min(same) > max(across)  # learnt from co-occurrence, not left random
    assert report.size == 16 and report.config_key == "model.embeddings.pretrained"

    data = prepare(cfg, progress=False)
    row_words = lambda corpus: {f"row{int(ident) - 1}" for ident in corpus.ids}  # tsv ids: line numbers from 1
    trained, held_out = row_words(data.train), row_words(data.dev) | row_words(data.test_split)
    assert len(held_out) == 40
    assert trained <= vectors.keys() and not held_out & vectors.keys()  # the dev and test rows are left out
    words = [t for t in data.src_vocab.tokens if t not in SPECIALS]
    assert [(c.vocabulary, c.words, c.covered) for c in report.coverage] == [
        ("source", len(words), len(words)),
        ("target", 16, 16),
    ]
    table = Embeddings(len(data.src_vocab), 16)
    assert load_pretrained(table, report.path, data.src_vocab.tokens, freeze=False) == len(words)
    assert "source vocabulary: 176 of 176 words have a vector (100.0%)" in format_report(report)


def test_extra_files_add_text_and_a_run_repeats(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    extra = tmp_path / "unlabelled.txt"
    extra.write_text("a1 新词 a2\nb1 新词\n", encoding="utf-8")
    first = train_vectors(cfg, tmp_path / "one.txt", [extra], Word2VecOptions(epochs=2), extra_format="text")
    assert "新词" in read_vectors(first.path)
    again = train_vectors(cfg, tmp_path / "two.txt", [extra], Word2VecOptions(epochs=2), extra_format="text")
    assert again.path.read_bytes() == first.path.read_bytes()  # seeded by train.seed, one worker
    labelled = tmp_path / "labelled.tsv"  # a test file with its references: only the sources are read
    labelled.write_text("a1 来源词 a2\tb1 参考词\n", encoding="utf-8")
    words = read_vectors(train_vectors(cfg, tmp_path / "three.txt", [labelled], Word2VecOptions(epochs=1)).path)
    assert "来源词" in words and "参考词" not in words
    cbow = train_vectors(cfg, tmp_path / "cbow.txt", options=Word2VecOptions(algorithm="cbow", epochs=2, min_count=5))
    assert "新词" not in read_vectors(cbow.path) and cbow.coverage[0].covered < cbow.coverage[0].words  # row words


def test_the_command_and_its_errors(tmp_path: Path, capsys, monkeypatch) -> None:
    topics = topic_data(tmp_path / "topics.tsv")
    common = ["embeddings", "configs/toy.yaml", f"data.train={topics}", f"data.cache_dir={tmp_path / 'cache'}"]
    common += ["data.dev=null", "data.dev_split=20", "tokenizer.type=whitespace"]
    assert main([*common, "--output", str(tmp_path / "v.txt"), "--epochs", "1", "--size", "8"]) == 0
    out = capsys.readouterr().out
    assert f"use them: model.embeddings.pretrained={tmp_path / 'v.txt'}" in out and read_vectors(tmp_path / "v.txt")
    assert main([*common, "--output", str(tmp_path / "v.txt"), "--window", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: embeddings: --window must be at least 1, got 0"
    monkeypatch.setitem(sys.modules, "gensim.models", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 's2s-summarizer\[vectors\]'"):
        train_vectors(make_cfg(tmp_path), tmp_path / "never.txt")
    assert main([*common, "--output", str(tmp_path / "never.txt")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: s2s embeddings needs gensim.models: pip install 's2s-summarizer[vectors]'"
    )
    assert not (tmp_path / "never.txt").exists()


def test_the_transformer_reads_vectors_of_size_d_model() -> None:
    cfg = override(Config(), "model.type=transformer", "model.d_model=64", "model.heads=4")
    assert embedding_target(cfg.model) == ("model.pretrained", 64)
    with pytest.raises(ConfigError, match="--window must be at least 1"):
        Word2VecOptions(window=0)
