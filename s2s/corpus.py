"""Tokenized corpora: read + tokenize a file once, in worker processes, and cache it on disk.

    corpus = tokenize_file("train.csv", cfg)      # a second call loads the cache
    corpus.sources[0]                             # ['方向机', '重', ...]

The cache lives in ``data.cache_dir`` (never beside the input), one file per input, named by a
hash of everything that changes the tokens: the input's bytes, the reader and its settings,
the cleaning, the tokenizer (and the bytes of its model or user dictionary), truncation, ``need_target`` and
``CACHE_VERSION``. Bump ``CACHE_VERSION`` when a code change alters what readers, cleaning or
tokenizers produce.

A cache file is one JSON header line, then the row ids (JSON), the distinct tokens ("\\n"-joined)
and the token ids and row offsets as raw int arrays: 4 bytes a token, and it loads without
re-splitting or re-interning every token.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from array import array
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

import jieba
from tqdm import tqdm

from s2s.config import Config
from s2s.readers import ReadStats, check_file, read_examples, resolve_format
from s2s.tokenizers import Tokenizer, build_tokenizer, tokenizer_files

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
MIN_ROWS_FOR_POOL = 2000  # fewer rows tokenize in-process: starting workers costs more
CHUNK_ROWS = 256  # rows sent to a worker at a time
_MAGIC = "s2s-tokenized"


@dataclass
class CorpusStats:
    """What reading and tokenizing a file kept, skipped and cut."""

    rows: int = 0  # examples kept
    malformed: int = 0  # rows skipped as malformed
    empty: int = 0  # rows skipped for an empty source or target (when targets are needed)
    truncated_sources: int = 0  # sources cut to data.max_source_len
    truncated_targets: int = 0  # targets cut to data.max_target_len


@dataclass
class TokenizedCorpus:
    """Row ids and token lists of one input file (``targets`` None when it has none)."""

    name: str
    ids: list[str]
    sources: list[list[str]]
    targets: list[list[str]] | None
    stats: CorpusStats = field(default_factory=CorpusStats)
    cached: bool = False  # loaded from the cache

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int], name: str | None = None) -> TokenizedCorpus:
        """The rows at ``indices``, in that order (token lists are shared, not copied)."""
        return TokenizedCorpus(
            name=name or self.name,
            ids=[self.ids[i] for i in indices],
            sources=[self.sources[i] for i in indices],
            targets=None if self.targets is None else [self.targets[i] for i in indices],
            stats=CorpusStats(rows=len(indices)),
            cached=self.cached,
        )


def tokenize_file(path: str | Path, cfg: Config, *, need_target: bool = True, progress: bool = True) -> TokenizedCorpus:
    """Read ``path`` with ``cfg.data``, tokenize with ``cfg.tokenizer``, truncate; cached."""
    path = Path(path)
    fmt = resolve_format(path, cfg.data)
    cache_dir = Path(cfg.data.cache_dir).expanduser()
    key = cache_key(input_files(path, fmt, need_target), fmt, cfg, need_target)
    cache_file = cache_dir / f"{path.name}-{key[:20]}.tok"
    if cache_file.is_file():
        try:
            corpus = _Packed.load(cache_file).unpack(path.name, cached=True)
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("ignoring unreadable cache %s (%s); tokenizing again", cache_file, err)
        else:
            logger.info("%s: %d rows loaded from the cache %s", path.name, len(corpus), cache_file)
            return corpus
    start = time.perf_counter()
    packed = _tokenize(path, cfg, need_target, progress)
    seconds = time.perf_counter() - start
    rows = packed.stats.rows
    logger.info(
        "%s: %d rows tokenized in %.1f s (%.0f rows/s)",
        path.name,
        rows,
        seconds,
        rows / max(seconds, 1e-9),
    )
    try:
        packed.save(cache_file)
    except OSError as err:
        logger.warning("could not write the cache %s (%s); check data.cache_dir", cache_file, err)
    return packed.unpack(path.name, cached=False)


def input_files(path: Path, fmt: str, need_target: bool) -> list[Path]:
    """The files whose bytes the examples of ``path`` come from (checked to exist)."""
    if fmt != "parallel":
        files = [path]
    else:
        tgt = Path(f"{path}.tgt")
        files = [Path(f"{path}.src")] + ([tgt] if need_target or tgt.exists() else [])
    for file in files:
        check_file(file)
    return files


# data options that change nothing in a file's tokenized rows (the files themselves are hashed)
_NOT_IN_KEY = frozenset(
    {"format", "train", "dev", "test", "dev_split", "test_split", "split_seed", "cache_dir", "num_workers"}
)


def cache_key(files: list[Path], fmt: str, cfg: Config, need_target: bool) -> str:
    """A hex digest of everything that changes the tokenized output of ``files``: their bytes,
    every option of the reader and of the tokenizer, ``need_target`` and ``CACHE_VERSION``."""
    tok = cfg.tokenizer
    tok_files = tokenizer_files(tok)  # their bytes count, not their paths
    spec = {
        "version": CACHE_VERSION,
        "files": [file_digest(f) for f in files],
        "format": fmt,
        "need_target": need_target,
        "data": {k: v for k, v in dataclasses.asdict(cfg.data).items() if k not in _NOT_IN_KEY},
        "tokenizer": {k: v for k, v in dataclasses.asdict(tok).items() if k not in tok_files},
        "tokenizer_files": {name: file_digest(path) for name, path in tok_files.items() if path.is_file()},
        "jieba": jieba.__version__ if tok.type == "jieba" else None,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Tokenizing: chunks of rows, in worker processes when there are many
# ---------------------------------------------------------------------------------------------


Row = tuple[str, str, "str | None"]  # id, source, target
ChunkResult = tuple[list[str], list[str], list["str | None"], list[int]]


class _ChunkTokenizer:
    """Tokenizes and truncates a chunk of rows; tokens come back space-joined (small pickles)."""

    def __init__(self, tokenizer: Tokenizer, max_source_len: int, max_target_len: int) -> None:
        self.tokenizer = tokenizer
        self.limits = (max_source_len, max_target_len)

    def __call__(self, rows: list[Row]) -> ChunkResult:
        ids, sources, targets = [], [], []
        truncated = [0, 0]
        for ident, source, target in rows:
            ids.append(ident)
            for side, (text, out) in enumerate(((source, sources), (target, targets))):
                if text is None:
                    out.append(None)
                    continue
                tokens = self.tokenizer.tokenize(text)
                limit = self.limits[side]
                if 0 < limit < len(tokens):
                    tokens = tokens[:limit]
                    truncated[side] += 1
                out.append(" ".join(tokens))
        return ids, sources, targets, truncated


_WORKER: _ChunkTokenizer | None = None  # set in each worker process


def _init_worker(chunk_tokenizer: _ChunkTokenizer) -> None:
    global _WORKER
    _WORKER = chunk_tokenizer


def _work(rows: list[Row]) -> ChunkResult:
    assert _WORKER is not None, "worker not initialized"
    return _WORKER(rows)


def _tokenize(path: Path, cfg: Config, need_target: bool, progress: bool) -> _Packed:
    read = ReadStats()
    examples = read_examples(path, cfg.data, need_target=need_target, stats=read)
    rows = ((ex.id, ex.source, ex.target) for ex in examples)
    head = list(islice(rows, MIN_ROWS_FOR_POOL))
    chunks = _chunked(chain(head, rows), CHUNK_ROWS)
    chunk_tokenizer = _ChunkTokenizer(build_tokenizer(cfg.tokenizer), cfg.data.max_source_len, cfg.data.max_target_len)
    workers = cfg.data.num_workers or _cpu_count()
    builder = _Builder()
    with ExitStack() as stack:
        if len(head) >= MIN_ROWS_FOR_POOL and workers > 1:
            # fork (before the progress bar starts a thread) shares the loaded jieba dictionary;
            # where fork is not the way, workers unpickle the tokenizer from its config
            context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
            pool = stack.enter_context(context.Pool(workers, _init_worker, (chunk_tokenizer,)))
            results: Iterable[ChunkResult] = _bounded_imap(pool, _work, chunks, 4 * workers)
        else:
            results = map(chunk_tokenizer, chunks)
        bar = stack.enter_context(tqdm(desc=f"tokenizing {path.name}", unit=" rows", disable=not progress, leave=False))
        for result in results:
            builder.add(*result)
            bar.update(len(result[0]))
    return builder.finish(read)


def _chunked(items: Iterable[Row], size: int) -> Iterator[list[Row]]:
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


def _bounded_imap(pool, func: Callable, items: Iterable, in_flight: int) -> Iterator:
    """``pool.imap`` that reads ``items`` only as results are taken (bounded memory; reading
    errors surface here, in the caller's thread)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.apply_async(func, (item,)))
        if len(pending) >= in_flight:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# Compact form: distinct tokens + int arrays (what the cache stores, and what lists unpack from)
# ---------------------------------------------------------------------------------------------


@dataclass
class _Side:
    """Token ids of one side, all rows end to end; row k is ``tokens[offsets[k]:offsets[k+1]]``."""

    tokens: array = field(default_factory=lambda: array("i"))
    offsets: array = field(default_factory=lambda: array("q", [0]))

    def append(self, joined: str, table: defaultdict[str, int]) -> None:
        if joined:
            self.tokens.extend(map(table.__getitem__, joined.split(" ")))
        self.offsets.append(len(self.tokens))

    def rows(self, table: list[str]) -> list[list[str]]:
        flat = list(map(table.__getitem__, self.tokens))
        return [flat[a:b] for a, b in zip(self.offsets, islice(self.offsets, 1, None))]


@dataclass
class _Packed:
    """A tokenized corpus as a token table and int arrays: cheap to write, read and unpack."""

    ids: list[str]
    table: list[str]
    src: _Side
    tgt: _Side
    has_targets: bool
    stats: CorpusStats

    def unpack(self, name: str, cached: bool) -> TokenizedCorpus:
        table = list(map(sys.intern, self.table))  # shared with other corpora and vocabularies
        with _gc_paused():
            sources = self.src.rows(table)
            targets = self.tgt.rows(table) if self.has_targets else None
        return TokenizedCorpus(name, self.ids, sources, targets, self.stats, cached)

    def save(self, path: Path) -> None:
        """Write to ``path`` atomically (a temporary file, then ``os.replace``)."""
        sections = {
            "ids": json.dumps(self.ids, ensure_ascii=False).encode(),
            "table": "\n".join(self.table).encode(),
            "src_tokens": self.src.tokens.tobytes(),
            "src_offsets": self.src.offsets.tobytes(),
            "tgt_tokens": self.tgt.tokens.tobytes(),
            "tgt_offsets": self.tgt.offsets.tobytes(),
        }
        header = {
            "magic": _MAGIC,
            "version": CACHE_VERSION,
            "byteorder": sys.byteorder,
            "has_targets": self.has_targets,
            "stats": dataclasses.asdict(self.stats),
            "sizes": {section: len(blob) for section, blob in sections.items()},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(header).encode() + b"\n")
                for blob in sections.values():
                    f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: Path) -> _Packed:
        """Read a file written by ``save``; ``ValueError`` when it is not one."""
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            if header.get("magic") != _MAGIC or header.get("version") != CACHE_VERSION:
                raise ValueError("not a tokenized-corpus cache of this version")
            if header["byteorder"] != sys.byteorder:
                raise ValueError("written on a machine of another byte order")
            blobs = {}
            for section, size in header["sizes"].items():
                blobs[section] = f.read(size)
                if len(blobs[section]) != size:
                    raise ValueError(f"truncated in section {section}")
        sides = []
        for side in ("src", "tgt"):
            tokens, offsets = array("i"), array("q")
            tokens.frombytes(blobs[f"{side}_tokens"])
            offsets.frombytes(blobs[f"{side}_offsets"])
            sides.append(_Side(tokens, offsets))
        ids = json.loads(blobs["ids"])
        table = blobs["table"].decode().split("\n") if blobs["table"] else []
        if not len(sides[0].offsets) == len(sides[1].offsets) == len(ids) + 1:
            raise ValueError("row counts disagree")
        return cls(ids, table, sides[0], sides[1], header["has_targets"], CorpusStats(**header["stats"]))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building millions of lists (which hold no cycles)
    would set it off again and again (half the unpacking time of an 80k-row corpus)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Builder:
    """Collects chunk results into a ``_Packed`` corpus, token by token into one table."""

    def __init__(self) -> None:
        self.table: defaultdict[str, int] = defaultdict()
        self.table.default_factory = self.table.__len__  # a new token gets the next id
        self.packed = _Packed([], [], _Side(), _Side(), False, CorpusStats())

    def add(self, ids: list[str], sources: list[str], targets: list[str | None], truncated: list[int]) -> None:
        packed, table = self.packed, self.table
        packed.ids.extend(ids)
        for text in sources:
            packed.src.append(text, table)
        for text in targets:
            packed.has_targets |= text is not None
            packed.tgt.append(text or "", table)
        packed.stats.truncated_sources += truncated[0]
        packed.stats.truncated_targets += truncated[1]

    def finish(self, read: ReadStats) -> _Packed:
        packed = self.packed
        packed.table = list(self.table)
        packed.stats.rows = len(packed.ids)
        packed.stats.malformed, packed.stats.empty = len(read.malformed), len(read.empty)
        return packed
