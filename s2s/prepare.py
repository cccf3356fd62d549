"""Prepare: the train/dev/test corpora and the vocabularies a config describes.

    data = prepare(load_config("configs/quickstart.yaml"))
    data.train.sources[0], len(data.src_vocab)

What ``s2s prepare CONFIG`` and the trainer call. Tokenization is cached (see ``corpus``), so a
second call is fast; vocabularies come from the training split only.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from s2s.config import Config
from s2s.corpus import TokenizedCorpus, tokenize_file
from s2s.errors import ConfigError, DataError
from s2s.readers import open_reader, read_examples
from s2s.vocabulary import Vocabulary

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train: TokenizedCorpus
    dev: TokenizedCorpus | None
    test: TokenizedCorpus | None
    src_vocab: Vocabulary
    tgt_vocab: Vocabulary  # the same object as src_vocab when vocab.shared


def prepare(cfg: Config, *, progress: bool = True) -> PreparedData:
    """Read, tokenize (cached), split and count: everything up to the vocabularies."""
    data = cfg.data
    if not data.train:
        raise ConfigError("data.train is not set: name the training file (or parallel prefix)")
    train = tokenize_file(data.train, cfg, progress=progress)
    if len(train) == 0:
        raise DataError(
            f"{data.train}: no usable rows ({train.stats.malformed} malformed, "
            f"{train.stats.empty} with an empty source or target)"
        )
    summaries = [_describe(train)]
    dev = None
    if data.dev:
        dev = tokenize_file(data.dev, cfg, progress=progress)
        summaries.append(_describe(dev))
    elif data.dev_split > 0:
        train, dev = split_dev(train, data.dev_split, cfg.train.seed)
        summaries.append(f"dev: {len(dev)} rows carved from {train.name} (seed {cfg.train.seed})")
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
    return PreparedData(train, dev, test, src_vocab, tgt_vocab)


def split_dev(corpus: TokenizedCorpus, size: float, seed: int) -> tuple[TokenizedCorpus, TokenizedCorpus]:
    """(train, dev): ``size`` rows (a fraction < 1 of them, or a count) chosen with ``seed``.

    Both keep the file's order. The same corpus, size and seed give the same split.
    """
    n = len(corpus)
    count = round(size * n) if size < 1 else int(size)
    if not 1 <= count < n:
        raise ConfigError(
            f"data.dev_split: {size} gives {count} dev rows of {n}; it must leave at least one "
            "row for each of dev and train"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    chosen = set(order[:count])
    dev = [i for i in range(n) if i in chosen]
    train = [i for i in range(n) if i not in chosen]
    return corpus.subset(train), corpus.subset(dev, name=f"{corpus.name} (dev split)")


def write_dev_split(cfg: Config, data: PreparedData, directory: str | Path) -> Path | None:
    """Write the rows carved out by ``data.dev_split`` as a file ``s2s predict``/``evaluate`` read.

    CSV and JSONL rows are written whole, in the input's layout (``dev_split.csv``/``.jsonl``);
    other formats as ``dev_split.tsv`` with the source and target text. Returns the path, or
    None where the dev set is a file of its own (or there is none): nothing to write.
    """
    if data.dev is None or cfg.data.dev:
        return None
    wanted = set(data.dev.ids)
    rows = [ex for ex in read_examples(cfg.data.train, cfg.data) if ex.id in wanted]
    reader = open_reader(cfg.data, cfg.data.train)
    path = Path(directory) / f"dev_split{reader.suffix}"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        reader.write_rows(rows, f)
    tmp.replace(path)
    return path


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
