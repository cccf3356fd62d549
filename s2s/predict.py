"""Prediction: a checkpoint turns raw inputs into summaries.

    summarizer = Summarizer.load("runs/quickstart/best.pt")
    summarizer.summarize(["帕萨特烧机油怎么办 技师说：..."])      # -> ["..."]

``predict_file`` is ``s2s predict``: it reads a CSV/TSV/JSONL/text file (or stdin) with the
checkpoint's reader options and tokenizer, batches by length, restores the input order and
writes the predictions as the input's reader does (``QID,Prediction`` CSV for AutoMaster CSV
input, one summary per line otherwise). A row it cannot read stops it before any decoding,
unless ``--on-bad-row`` says to skip such rows or to give them an empty prediction; the output
path is checked before the decoding too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from s2s.batching import encode_corpus
from s2s.checkpoint import Checkpoint
from s2s.config import Config, PredictConfig, from_dict, parse_override, to_dict
from s2s.corpus import TokenizedCorpus, tokenize_file
from s2s.errors import ConfigError, DataError
from s2s.extras import require
from s2s.model import Seq2SeqModel
from s2s.options import retype
from s2s.plotting import save_attention_png
from s2s.readers import EXTENSIONS, BadRow, Reader, open_reader, read_examples, reader_options
from s2s.registry import READERS
from s2s.runtime import tune_cpu
from s2s.search import search_examples
from s2s.tokenizers import build_tokenizer
from s2s.vocabulary import UNK, Vocabulary

log = logging.getLogger(__name__)


@dataclass
class Summary:
    text: str  # detokenized summary
    tokens: list[str]  # its tokens (copied source words included)
    source_tokens: list[str]  # the source as the model saw it (cleaned, tokenized, truncated)
    score: float
    attention: Tensor | None = None  # (len(tokens), len(source_tokens)), when asked for
    p_gen: Tensor | None = None  # (len(tokens),) pointer-generator: P(generate)


class Summarizer:
    """A trained model with its vocabularies, tokenizer, reader and search options.

    ``coverage``: decode with the model's coverage (on when training ended with it on).
    """

    def __init__(
        self,
        model: Seq2SeqModel,
        cfg: Config,
        src_vocab: Vocabulary,
        tgt_vocab: Vocabulary,
        device: torch.device,
        coverage: bool = False,
    ) -> None:
        self.model, self.cfg, self.device = model.to(device).eval(), cfg, device
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.coverage = coverage
        self.tokenizer = build_tokenizer(cfg.tokenizer)

    @classmethod
    def load(cls, checkpoint: str | Path, device: str = "auto") -> Summarizer:
        """An entry point: applies the process-wide CPU settings (``runtime.tune_cpu``)."""
        tune_cpu()
        ckpt = Checkpoint.load(checkpoint)
        model = ckpt.build_model(checkpoint)
        return cls(
            model,
            ckpt.config,
            Vocabulary(ckpt.src_vocab),
            Vocabulary(ckpt.tgt_vocab),
            pick_device(device),
            coverage=ckpt.progress.coverage_on,
        )

    @property
    def reader(self) -> Reader:
        """The reader of the training data: how raw inputs become sources."""
        return open_reader(self.cfg.data)

    def options(self, **changes: Any) -> PredictConfig:
        """The checkpoint's search options (``predict``) with ``changes``, checked: unknown names,
        wrong types, out-of-range values and unknown searches raise ``ConfigError``."""
        cfg = from_dict(
            to_dict(self.cfg), source="checkpoint", changes={"predict": changes}, changes_source="search options"
        )
        return cfg.predict

    def source_text(self, item: str | Mapping[str, str]) -> str:
        """One raw input as the model's source text, as the checkpoint's reader composes and
        cleans it: a row of fields (``{"Question": .., "Dialogue": ..}``), or a plain string."""
        return self.reader.source_text(item)

    def tokenize(self, item: str | Mapping[str, str]) -> list[str]:
        """The tokens of one raw input (not truncated)."""
        return self.tokenizer.tokenize(self.source_text(item))

    def summarize(self, texts: Sequence[str | Mapping[str, str]], **options: Any) -> list[str]:
        """Summaries of raw inputs; ``options`` override search options (beam_size=...)."""
        return [s.text for s in self.summaries(texts, self.options(**options))]

    def summaries(
        self,
        texts: Sequence[str | Mapping[str, str]],
        options: PredictConfig | None = None,
        return_attention: bool = False,
        progress: bool = False,
    ) -> list[Summary]:
        """Like ``summarize``, with tokens, scores and (if asked) attention and p_gen. A bare string
        is one input."""
        sources = [self.tokenize(t) for t in ([texts] if isinstance(texts, str) else texts)]
        limit = self.cfg.data.max_source_len
        if limit:
            _warn_truncated(sum(len(s) > limit for s in sources), self.cfg)
            sources = [s[:limit] for s in sources]
        return self.decode(sources, options or self.options(), return_attention, progress)

    def decode(
        self, sources: list[list[str]], options: PredictConfig, return_attention: bool = False, progress: bool = False
    ) -> list[Summary]:
        """Summaries of tokenized sources: batched by length, returned in input order."""
        corpus = TokenizedCorpus("input", [str(i) for i in range(len(sources))], sources, None)
        examples = encode_corpus(corpus, self.src_vocab, self.tgt_vocab)
        replace_unk = options.replace_unk and not self.model.copies
        hypotheses = search_examples(
            self.model,
            examples,
            options,
            device=self.device,
            progress=progress,
            return_attention=return_attention or replace_unk,
            coverage=self.coverage,
        )
        results = []
        for source, example, hyps in zip(sources, examples, hypotheses):
            best, source = hyps[0], source or [UNK]
            # the batch padded sources to its longest: keep this source's columns
            attention = None if best.attention is None else best.attention[:, : len(source)]
            words = self.tgt_vocab.decode(best.tokens, example.oovs)
            if replace_unk:
                words = _replace_unk(words, attention, source)
            results.append(Summary(self.tokenizer.detokenize(words), words, source, best.score, attention, best.p_gen))
        return results


def predict_file(
    checkpoint: str | Path | None,
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    input_format: str | None = None,
    options: dict[str, Any] | None = None,
    overrides: Iterable[str] = (),
    baseline: str | None = None,
    device: str = "auto",
    plot_attention: str | Path | None = None,
    on_bad_row: str = "error",
) -> int:
    """``s2s predict``: summarize every input of a file (``-``: stdin); returns the count.
    ``plot_attention``: a folder that gets one attention heatmap PNG per input, named by its id.
    ``on_bad_row``: a row that cannot be read stops it before any decoding (``error``), gets no
    prediction (``skip``) or an empty one under its id (``empty``)."""
    start = time.perf_counter()
    check_output(output_path)
    fmt = input_format or EXTENSIONS.get(Path(input_path).suffix.lower(), "text")
    if baseline is not None:
        if plot_attention:
            raise ConfigError("--plot-attention needs a model's attention: it does not go with --baseline")
        reader = open_reader(reader_options(fmt))
        rows = scan_rows(input_path, reader, on_bad_row)
        examples = list(read_examples(input_path, reader.options, need_target=False))
        ids, texts = [e.id for e in examples], [reader.lead(e) for e in examples]
    else:
        if plot_attention:
            require("PIL", "plot", "--plot-attention")  # before the work, not after
        summarizer = Summarizer.load(checkpoint, device)
        search_options = summarizer.options(**(options or {}), **_predict_overrides(overrides))
        with_attention = plot_attention is not None
        rows = None
        if str(input_path) == "-":
            lines = [line.rstrip("\r\n") for line in sys.stdin]
            ids = [str(i) for i in range(1, len(lines) + 1)]
            summaries = summarizer.summaries(lines, search_options, with_attention, progress=True)
            reader = open_reader(reader_options("text"))
        else:
            data = summarizer.cfg.data
            reader = open_reader(data if data.format == fmt else retype(data, READERS, fmt))
            rows = scan_rows(input_path, reader, on_bad_row)
            cfg = dataclasses.replace(summarizer.cfg, data=dataclasses.replace(reader.options, on_bad_row="skip"))
            corpus = tokenize_file(input_path, cfg, need_target=False)
            _warn_truncated(corpus.stats.truncated_sources, cfg)
            ids = corpus.ids
            summaries = summarizer.decode(corpus.sources, search_options, with_attention, progress=True)
        texts = [s.text for s in summaries]
        if plot_attention is not None:
            _plot_attention(Path(plot_attention), ids, summaries)
    if on_bad_row == "empty" and rows is not None:
        ids, texts = with_empty_rows(rows, ids, texts)
    _write(reader, ids, texts, output_path)
    seconds = time.perf_counter() - start
    log.info(
        "%d summaries in %.1f s (%.1f sents/s) -> %s",
        len(texts),
        seconds,
        len(texts) / max(seconds, 1e-9),
        output_path or "stdout",
    )
    return len(texts)


def check_output(output_path: str | Path | None) -> None:
    """``ConfigError`` unless ``output_path`` can be written: checked before the decoding."""
    if output_path is None:
        return
    path = Path(output_path)
    if path.is_dir():
        raise ConfigError(f"--output {path}: is a directory; name a file in it")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"--output {path}: the folder {folder} does not exist (create it, or name another file)")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--output {path}: not writable (permission denied)")


def scan_rows(path: str | Path, reader: Reader, on_bad_row: str) -> list[tuple[str, bool]]:
    """(id, unreadable) of every row of ``path``, in order; with ``on_bad_row=error`` an
    unreadable row is a ``DataError`` that names it and the alternatives."""
    rows = []
    for item in reader.read(Path(path), need_target=False):
        bad = isinstance(item, BadRow)
        if bad and on_bad_row == "error":
            raise DataError(
                f"{path}:{item.line}: {item.reason}; a submission needs a row for every input: fix the row, or "
                f"pass --on-bad-row empty (an empty prediction under its id) or --on-bad-row skip (none)"
            )
        rows.append((item.id or str(item.line), bad))
    return rows


def with_empty_rows(rows: list[tuple[str, bool]], ids: list[str], texts: list[str]) -> tuple[list[str], list[str]]:
    """The predictions of the readable rows, with an empty one for each unreadable row, in file order."""
    found = iter(zip(ids, texts))
    merged = [(ident, "") if bad else next(found) for ident, bad in rows]
    if bad_count := sum(bad for _, bad in rows):
        log.warning("%d unreadable row%s: empty predictions", bad_count, "s" if bad_count > 1 else "")
    return [i for i, _ in merged], [t for _, t in merged]


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but no CUDA device is available (use auto or cpu)")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def _plot_attention(folder: Path, ids: list[str], summaries: list[Summary]) -> None:
    """One heatmap PNG per summary in ``folder``, named by the input's id."""
    folder.mkdir(parents=True, exist_ok=True)
    for id_, summary in zip(ids, summaries):
        name = re.sub(r"[^\w.-]", "_", id_).lstrip(".") or "input"
        save_attention_png(
            folder / f"{name}.png", summary.attention, summary.tokens, summary.source_tokens, summary.p_gen
        )
    log.info("%d attention heatmaps written to %s", len(summaries), folder)


def _predict_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """``predict.key=value`` command-line overrides as a mapping of search options."""
    changes: dict[str, Any] = {}
    for text in overrides:
        nested = parse_override(text)
        if set(nested) != {"predict"}:
            raise ConfigError(f"command line: {text}: only predict.* options can change at prediction time")
        changes |= nested["predict"]
    return changes


def _replace_unk(words: list[str], attention: Tensor, source: list[str]) -> list[str]:
    """Each <unk> becomes the source word it attended to most."""
    focus = attention.argmax(-1).tolist()  # (len(words),)
    return [source[focus[i]] if word == UNK else word for i, word in enumerate(words)]


def _warn_truncated(count: int, cfg: Config) -> None:
    if count:
        log.warning(
            "%d input%s longer than data.max_source_len=%d tokens truncated",
            count,
            "s" if count > 1 else "",
            cfg.data.max_source_len,
        )


def _write(reader: Reader, ids: list[str], texts: list[str], output_path: str | Path | None) -> None:
    out = open(output_path, "w", encoding="utf-8", newline="") if output_path else sys.stdout
    try:
        reader.write_predictions(ids, texts, out)
    finally:
        if out is not sys.stdout:
            out.close()
