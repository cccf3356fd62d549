"""Word vectors for ``model.embeddings.pretrained``: word2vec (gensim) on a config's training text.

    report = train_vectors(load_config("configs/automaster_pgn.yaml"), "vectors.txt", extra=["test.csv"])
    print(format_report(report))

What ``s2s embeddings CONFIG --output vectors.txt [--extra FILE ...]`` runs. The text: the rows of
the config's training split (the dev and test splits are left out, as from the vocabularies),
tokenized with the config's tokenizer, source and target each a sentence and whole
(``data.max_source_len`` cuts what the model reads, not what the vectors learn from); then the
sources of the ``extra`` files (a test set's dialogues, say; never their targets), read like
``data.train``.
The vectors go out in the word2vec text format (a ``count size`` line, then ``word v1 ... vD``),
which ``model.embeddings.pretrained`` (``model.pretrained`` for the Transformer) reads; the
report says how many words of each vocabulary have a vector. gensim is the ``vectors`` extra.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from s2s.config import Config
from s2s.corpus import tokenize_file
from s2s.errors import ConfigError
from s2s.extras import require
from s2s.options import retype
from s2s.prepare import PreparedData, prepare
from s2s.registry import READERS
from s2s.vocabulary import SPECIALS, Vocabulary

log = logging.getLogger(__name__)


@dataclass
class Word2VecOptions:
    """gensim's ``Word2Vec`` settings (the ``s2s embeddings`` flags of the same names)."""

    algorithm: Literal["skipgram", "cbow"] = "skipgram"  # skip-gram learns rare words better from little text
    size: int | None = None  # vector size; None: the config's embedding size (model.embeddings.size, d_model)
    window: int = 5  # context words on each side
    min_count: int = 1  # words seen fewer times get no vector (1: every vocabulary word gets one)
    epochs: int = 10  # passes over the text (a small corpus needs more than gensim's 5)
    workers: int = 1  # threads; more are faster, but only 1 gives the same vectors every run
    seed: int | None = None  # None: train.seed

    def __post_init__(self) -> None:
        if self.algorithm not in ("skipgram", "cbow"):
            raise ConfigError(f"embeddings: --algorithm {self.algorithm!r}: choose skipgram or cbow")
        for name in ("size", "window", "min_count", "epochs", "workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"embeddings: --{name.replace('_', '-')} must be at least 1, got {value}")


@dataclass
class Coverage:
    """How many words of one vocabulary (specials not counted) have a vector."""

    vocabulary: str  # source | target | shared
    words: int
    covered: int


@dataclass
class VectorsReport:
    path: Path
    vectors: int  # words written
    size: int
    sentences: int  # training rows x 2 (source, target) + the sources of the extra files
    tokens: int
    seconds: float  # word2vec training time
    coverage: list[Coverage]
    config_key: str  # where a config names the file


def train_vectors(
    cfg: Config,
    output: str | Path,
    extra: Sequence[str | Path] = (),
    options: Word2VecOptions | None = None,
    *,
    extra_format: str | None = None,
) -> VectorsReport:
    """Train word2vec on ``cfg``'s training split and ``extra`` (read with ``extra_format``, else
    like ``data.train``), write the vectors to ``output``, and say how much of each vocabulary they cover."""
    models = require("gensim.models", "vectors", "s2s embeddings")
    options = options or Word2VecOptions()
    config_key, default_size = embedding_target(cfg.model)
    size = options.size or default_size
    data = prepare(cfg)
    sentences = training_text(cfg, data) + [s for path in extra for s in extra_text(cfg, path, extra_format)]
    tokens = sum(map(len, sentences))
    log.info("word2vec (%s, size %d): %d sentences, %d tokens", options.algorithm, size, len(sentences), tokens)
    start = time.perf_counter()
    model = models.Word2Vec(
        sentences=sentences,
        vector_size=size,
        window=options.window,
        min_count=options.min_count,
        sg=1 if options.algorithm == "skipgram" else 0,
        epochs=options.epochs,
        workers=options.workers,
        seed=cfg.train.seed if options.seed is None else options.seed,
    )
    seconds = time.perf_counter() - start
    vectors = model.wv
    write_vectors(vectors.index_to_key, vectors.vectors, output)
    known = vectors.key_to_index
    return VectorsReport(
        Path(output),
        len(known),
        size,
        len(sentences),
        tokens,
        seconds,
        [coverage(name, vocab, known) for name, vocab in _vocabularies(data)],
        config_key,
    )


def embedding_target(model: Any) -> tuple[str, int]:
    """The config key that reads pretrained vectors for this model family, and its vector size."""
    embeddings = getattr(model, "embeddings", None)
    if embeddings is not None and hasattr(embeddings, "pretrained"):
        return "model.embeddings.pretrained", embeddings.size
    if hasattr(model, "pretrained") and hasattr(model, "d_model"):
        return "model.pretrained", model.d_model
    raise ConfigError(f"model.type {model.type!r} reads no pretrained vectors (model.embeddings.pretrained)")


def training_text(cfg: Config, data: PreparedData) -> list[list[str]]:
    """Source and target of every row of the training split, not cut to data.max_*_len."""
    corpus = tokenize_file(cfg.data.train, _uncut(cfg), progress=False)
    keep = set(data.train.ids)
    rows = [i for i, ident in enumerate(corpus.ids) if ident in keep]
    return [corpus.sources[i] for i in rows] + [corpus.targets[i] for i in rows]


def extra_text(cfg: Config, path: str | Path, fmt: str | None = None) -> list[list[str]]:
    """The sources of a file, tokenized whole; never its targets, where it has them: a test file's
    references must not shape the vectors of a model that is scored on them."""
    uncut = _uncut(cfg)
    if fmt is not None:
        uncut = dataclasses.replace(uncut, data=retype(uncut.data, READERS, fmt))
    corpus = tokenize_file(path, uncut, need_target=False, progress=False)
    return [s for s in corpus.sources if s]


def write_vectors(words: Sequence[str], vectors: Any, path: str | Path) -> None:
    """The word2vec text format, written atomically: ``count size``, then ``word v1 ... vD`` lines.

    ``vectors``: (len(words), size) array."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, row in zip(words, vectors.tolist()):
            f.write(word + " " + " ".join(f"{x:.6g}" for x in row) + "\n")
    tmp.replace(path)


def coverage(name: str, vocab: Vocabulary, known: Any) -> Coverage:
    words = [t for t in vocab.tokens if t not in SPECIALS]
    return Coverage(name, len(words), sum(w in known for w in words))


def format_report(report: VectorsReport) -> str:
    lines = [
        f"{report.vectors} vectors of size {report.size} written to {report.path} "
        f"({report.sentences} sentences, {report.tokens} tokens, {report.seconds:.1f} s)"
    ]
    for c in report.coverage:
        share = 100 * c.covered / max(c.words, 1)
        lines.append(f"{c.vocabulary} vocabulary: {c.covered} of {c.words} words have a vector ({share:.1f}%)")
    lines.append(f"use them: {report.config_key}={report.path}")
    return "\n".join(lines)


def _vocabularies(data: PreparedData) -> list[tuple[str, Vocabulary]]:
    if data.src_vocab is data.tgt_vocab:
        return [("shared", data.src_vocab)]
    return [("source", data.src_vocab), ("target", data.tgt_vocab)]


def _uncut(cfg: Config) -> Config:
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, max_source_len=0, max_target_len=0))
