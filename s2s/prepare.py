"""Prepare: the train/dev/test corpora, the held-out test split and the vocabularies a config describes.

    data = prepare(load_config("configs/quickstart.yaml"))
    data.train.sources[0], len(data.src_vocab)

What ``s2s prepare CONFIG`` and the trainer call. Tokenization is cached (see ``corpus``), so a
second call is fast; vocabularies come from the training split only.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from s2s.assets import write_atomically
from s2s.config import Config
from s2s.corpus import TokenizedCorpus, cache_key, input_files, tokenize_file
from s2s.errors import ConfigError, DataError
from s2s.readers import Example, open_reader, read_examples, resolve_format
from s2s.registry import TOKENIZERS
from s2s.vocabulary import Vocabulary

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train: TokenizedCorpus
    dev: TokenizedCorpus | None
    test: TokenizedCorpus | None
    src_vocab: Vocabulary
    tgt_vocab: Vocabulary  # the same object as src_vocab when vocab.shared
    test_split: TokenizedCorpus | None = None  # the rows data.test_split holds out of data.train
    tokenizer_model: Path | None = None  # the model the tokenizer learned (learn_tokenizer)


def prepare(cfg: Config, *, progress: bool = True) -> PreparedData:
    """Read, tokenize (cached), split and count: everything up to the vocabularies."""
    data = cfg.data
    if not data.train:
        raise ConfigError("data.train is not set: name the training file (or parallel prefix)")
    tokenizer_model = learn_tokenizer(cfg)
    train = tokenize_file(data.train, cfg, progress=progress)
    if len(train) == 0:
        raise DataError(
            f"{data.train}: no usable rows ({train.stats.malformed} malformed, "
            f"{train.stats.empty} with an empty source or target)"
        )
    summaries = [_describe(train)]
    carved_dev = 0 if data.dev else data.dev_split
    seed = split_seed(cfg)
    train, dev, test_split = split_rows(train, dev=carved_dev, test=data.test_split, seed=seed)
    if dev is not None:
        summaries.append(f"dev: {len(dev)} rows carved from {train.name} (seed {seed})")
    if data.dev:
        dev = tokenize_file(data.dev, cfg, progress=progress)
        summaries.append(_describe(dev))
    if test_split is not None:
        summaries.append(
            f"test: {len(test_split)} rows carved from {train.name} (seed {seed}), held out: "
            "nothing trains, selects or tunes on them"
        )
    test = None
    if data.test:
        test = tokenize_file(data.test, cfg, need_target=False, progress=progress)
        summaries.append(_describe(test))
    src_vocab, tgt_vocab = build_vocabularies(train, cfg)
    summaries.append(
        f"vocabulary: shared, {len(src_vocab)} tokens"
        if src_vocab is tgt_vocab
        else f"vocabularies: source {len(src_vocab)}, target {len(tgt_vocab)} tokens"
    )
    for line in summaries:
        logger.info(line)
    return PreparedData(train, dev, test, src_vocab, tgt_vocab, test_split, tokenizer_model)


def learn_tokenizer(cfg: Config) -> Path | None:
    """Where the tokenizer learns from data (a ``learn`` method: SentencePiece) and has no model yet,
    learn one from the training rows' sources and targets (never the dev or test rows carved out of
    them), cached in ``data.cache_dir``; ``cfg.tokenizer.model`` is set to the file, which is returned."""
    learn = getattr(TOKENIZERS.get(cfg.tokenizer.type), "learn", None)
    if learn is None or cfg.tokenizer.model is not None:
        return None
    data = cfg.data
    dev, test = (0 if data.dev else data.dev_split), data.test_split
    path = Path(data.train)
    fmt = resolve_format(path, data)
    rows_key = cache_key(input_files(path, fmt, need_target=True), fmt, cfg, need_target=True)
    key = hashlib.sha256(f"{rows_key} {dev} {test} {split_seed(cfg)}".encode()).hexdigest()
    model = Path(data.cache_dir).expanduser() / f"{path.name}-{cfg.tokenizer.type}-{key[:20]}.model"
    if model.is_file():
        logger.info("tokenizer model: %s (from the cache)", model)
    else:
        examples = list(read_examples(path, data))
        rows = split_indices(len(examples), dev=dev, test=test, seed=split_seed(cfg))[0]
        texts = chain.from_iterable((examples[i].source, examples[i].target or "") for i in rows)
        start = time.perf_counter()
        write_atomically(model, learn(cfg.tokenizer, texts))
        logger.info("tokenizer model learned from %d rows in %.1f s: %s", len(rows), time.perf_counter() - start, model)
    cfg.tokenizer.model = str(model)
    return model


def split_seed(cfg: Config) -> int:
    """The seed that carves the dev and test splits: ``data.split_seed``, else ``train.seed``."""
    return cfg.train.seed if cfg.data.split_seed is None else cfg.data.split_seed


def split_rows(
    corpus: TokenizedCorpus, *, dev: float, test: float, seed: int
) -> tuple[TokenizedCorpus, TokenizedCorpus | None, TokenizedCorpus | None]:
    """(train, dev, test): ``dev`` and ``test`` rows carved out of ``corpus``, each a fraction
    (< 1) of its rows or a count (0: none), chosen with ``seed``; disjoint, each in the file's order.

    Dev rows are the head of one seeded shuffle and test rows its tail, so the dev rows do not
    depend on ``test`` (adding a test split keeps the dev split) nor the test rows on ``dev``.
    """
    train_rows, dev_rows, test_rows = split_indices(len(corpus), dev=dev, test=test, seed=seed)
    if not dev_rows and not test_rows:
        return corpus, None, None
    carved = [
        corpus.subset(rows, name=f"{corpus.name} ({name} split)") if rows else None
        for name, rows in (("dev", dev_rows), ("test", test_rows))
    ]
    return corpus.subset(train_rows), carved[0], carved[1]


def split_indices(n: int, *, dev: float, test: float, seed: int) -> tuple[list[int], list[int], list[int]]:
    """The row indices (train, dev, test) of ``split_rows`` for ``n`` rows, each list ascending."""
    n_dev, n_test = _count(dev, n, "dev"), _count(test, n, "test")
    if not n_dev and not n_test:
        return list(range(n)), [], []
    if n_dev + n_test >= n:
        raise ConfigError(
            f"data.dev_split + data.test_split: {n_dev} dev + {n_test} test rows of {n} leave no row to "
            "train on; lower them"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    dev_rows, test_rows = set(order[:n_dev]), set(order[n - n_test :])
    train_rows = [i for i in range(n) if i not in dev_rows and i not in test_rows]
    return train_rows, sorted(dev_rows), sorted(test_rows)


def _count(size: float, n: int, name: str) -> int:
    """The rows ``data.{name}_split`` asks for: a fraction (< 1) of ``n`` or a count."""
    count = round(size * n) if size < 1 else int(size)
    if size > 0 and not 1 <= count < n:
        raise ConfigError(
            f"data.{name}_split: {size} gives {count} {name} rows of {n}; it must leave at least one "
            f"row for each of {name} and train"
        )
    return count


def write_splits(cfg: Config, data: PreparedData, directory: str | Path) -> dict[str, Path]:
    """Write the rows carved out of ``data.train`` by ``data.dev_split`` and ``data.test_split`` as
    files ``s2s predict``/``evaluate`` read; returns their paths by split ("dev", "test").

    CSV and JSONL rows are written whole, in the input's layout (``dev_split.csv``/``.jsonl``,
    ``test_split.csv``/``.jsonl``); other formats as ``.tsv`` with the source and target text. A
    dev set that is a file of its own (or none) writes nothing.
    """
    carved = {"dev": None if cfg.data.dev else data.dev, "test": data.test_split}
    wanted = {ident: name for name, corpus in carved.items() if corpus is not None for ident in corpus.ids}
    if not wanted:
        return {}
    rows: dict[str, list[Example]] = {name: [] for name, corpus in carved.items() if corpus is not None}
    for example in read_examples(cfg.data.train, cfg.data):
        if example.id in wanted:
            rows[wanted[example.id]].append(example)
    reader = open_reader(cfg.data, cfg.data.train)
    paths = {}
    for name, examples in rows.items():
        path = paths[name] = Path(directory) / f"{name}_split{reader.suffix}"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            reader.write_rows(examples, f)
        tmp.replace(path)
    return paths


def build_vocabularies(train: TokenizedCorpus, cfg: Config) -> tuple[Vocabulary, Vocabulary]:
    """Source and target vocabularies from ``train`` (one object twice when shared)."""
    v = cfg.vocab
    targets = train.targets or []
    if v.shared:
        vocab = Vocabulary.build(chain(train.sources, targets), v.source_size, v.min_freq)
        return vocab, vocab
    return (
        Vocabulary.build(train.sources, v.source_size, v.min_freq),
        Vocabulary.build(targets, v.target_size, v.min_freq),
    )


def _describe(corpus: TokenizedCorpus) -> str:
    s = corpus.stats
    n = max(len(corpus), 1)
    parts = [f"{corpus.name}: {len(corpus)} rows"]
    if s.malformed or s.empty:
        parts.append(f"skipped {s.malformed} malformed, {s.empty} empty")
    parts.append(f"avg source {sum(map(len, corpus.sources)) / n:.1f} tokens")
    if corpus.targets is not None:
        parts.append(f"avg target {sum(map(len, corpus.targets)) / n:.1f} tokens")
    if s.truncated_sources or s.truncated_targets:
        parts.append(f"truncated {s.truncated_sources} sources, {s.truncated_targets} targets")
    parts.append("from the cache" if corpus.cached else "tokenized")
    return ", ".join(parts)
