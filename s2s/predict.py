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

import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor

from s2s.config import Config, PredictConfig, from_dict, parse_override, to_dict
from s2s.corpus import TokenizedCorpus, tokenize_file
from s2s.ensemble import load_models
from s2s.errors import ConfigError, DataError
from s2s.extras import require
from s2s.metrics import mbr_rerank
from s2s.model import Seq2SeqModel
from s2s.options import retype
from s2s.oracle import best_segment
from s2s.plotting import save_attention_png
from s2s.quantize import quantize_model
from s2s.readers import EXTENSIONS, BadRow, Example, Reader, open_reader, read_examples, reader_options
from s2s.registry import READERS
from s2s.runtime import tune_cpu
from s2s.search import search_examples
from s2s.segments import ScoredSegment
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
    search: str = ""  # the searcher that found it (beam, greedy, sample, ...)
    segments: list[dict[str, Any]] | None = None  # extractive: every segment's text, score and whether it was picked


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
    def load(
        cls, checkpoint: str | Path | Sequence[str | Path], device: str = "auto", quantize: str | None = None
    ) -> Summarizer:
        """A checkpoint, or a list of them: an ensemble (``s2s.ensemble``) with the first one's config,
        reader, tokenizer and search options. ``quantize="int8"``: its linear layers in int8, on the
        CPU (``s2s.quantize``; default fp32). An entry point: applies the process-wide CPU settings
        (``runtime.tune_cpu``)."""
        tune_cpu()
        model, ckpt, coverage = load_models([checkpoint] if isinstance(checkpoint, (str, Path)) else checkpoint)
        where = pick_device(device)
        return cls(
            quantize_model(model, quantize, where),
            ckpt.config,
            Vocabulary(ckpt.src_vocab),
            Vocabulary(ckpt.tgt_vocab),
            where,
            coverage=coverage,
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
        sources = self.sources([texts] if isinstance(texts, str) else texts)
        return self.decode(sources, options or self.options(), return_attention, progress)

    def sources(self, texts: Sequence[str | Mapping[str, str]]) -> list[list[str]]:
        """Raw inputs as the model's sources: tokenized, truncated to ``data.max_source_len`` (with a warning)."""
        sources = [self.tokenize(t) for t in texts]
        limit = self.cfg.data.max_source_len
        if limit:
            _warn_truncated(sum(len(s) > limit for s in sources), self.cfg)
            sources = [s[:limit] for s in sources]
        return sources

    def decode(
        self, sources: list[list[str]], options: PredictConfig, return_attention: bool = False, progress: bool = False
    ) -> list[Summary]:
        """Summaries of tokenized sources: batched by length, returned in input order."""
        return [found[0] for found in self.candidates(sources, [options], return_attention, progress)]

    def candidates(
        self,
        sources: list[list[str]],
        searches: Sequence[PredictConfig],
        return_attention: bool = False,
        progress: bool = False,
    ) -> list[list[Summary]]:
        """Per tokenized source, the hypotheses of each search of ``searches`` (its ``n_best``, best
        first), one search after the other: an n-best list, samples, or both."""
        corpus = TokenizedCorpus("input", [str(i) for i in range(len(sources))], sources, None)
        examples = self.model.encode_corpus(corpus, self.src_vocab, self.tgt_vocab)
        found: list[list[Summary]] = [[] for _ in sources]
        for options in searches:
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
            for summaries, source, example, hyps in zip(found, sources, examples, hypotheses):
                source = source or [UNK]
                for hyp in hyps:
                    # the batch padded sources to its longest: keep this source's columns
                    attention = None if hyp.attention is None else hyp.attention[:, : len(source)]
                    words = self.tgt_vocab.decode(hyp.tokens, example.oovs)
                    if replace_unk:
                        words = _replace_unk(words, attention, source)
                    text = self.tokenizer.detokenize(words)
                    segments = None if hyp.segments is None else self._segments(hyp.segments, source)
                    summaries.append(
                        Summary(text, words, source, hyp.score, attention, hyp.p_gen, options.search, segments)
                    )
        return found

    def _segments(self, scored: Sequence[ScoredSegment], source: list[str]) -> list[dict[str, Any]]:
        """Every scored source segment as its text, score and whether it was picked."""
        detok = self.tokenizer.detokenize
        return [{"text": detok(source[s.start : s.end]), "score": s.score, "picked": s.picked} for s in scored]


def predict_file(
    checkpoint: str | Path | Sequence[str | Path] | None,
    input_path: str | Path,
    output_path: str | Path | None = None,
    *,
    input_format: str | None = None,
    options: dict[str, Any] | None = None,
    overrides: Iterable[str] = (),
    baseline: str | None = None,
    device: str = "auto",
    plot_attention: str | Path | None = None,
    sample: Mapping[str, Any] | None = None,
    rerank: str | None = None,
    on_bad_row: str = "error",
    quantize: str | None = None,
) -> int:
    """``s2s predict``: summarize every input of a file (``-``: stdin); returns the count.
    ``checkpoint``: one, or several (an ensemble). ``plot_attention``: a folder that gets one attention
    heatmap PNG per input, named by its id. Each input's candidates are the search's ``n_best``, then
    with ``sample`` (options of the ``sample`` searcher: ``n_best`` samples, ``temperature``, ``seed``)
    its samples; ``rerank="mbr"`` picks one by minimum Bayes risk (``metrics.mbr_rerank``). More than
    one candidate per input is written as JSONL (``write_candidates``) unless reranked to a CSV or text.
    ``on_bad_row``: a row that cannot be read stops it before any decoding (``error``), gets no
    prediction (``skip``) or an empty one under its id (``empty``). ``quantize="int8"``: ``Summarizer.load``'s."""
    start = time.perf_counter()
    check_output(output_path)
    fmt = input_format or EXTENSIONS.get(Path(input_path).suffix.lower(), "text")
    if rerank not in (None, "mbr"):
        raise ConfigError(f"--rerank {rerank}: unknown reranking (choices: mbr)")
    ranked = None
    if baseline is not None:
        if plot_attention:
            raise ConfigError("--plot-attention needs a model's attention: it does not go with --baseline")
        if sample or rerank or quantize:
            raise ConfigError("--sample, --rerank and --quantize need a model: they do not go with --baseline")
        reader = open_reader(reader_options(fmt))
        rows = scan_rows(input_path, reader, on_bad_row)
        examples = list(read_examples(input_path, reader.options, need_target=False))
        ids, texts = [e.id for e in examples], baseline_summaries(reader, examples, baseline)
    else:
        if plot_attention:
            require("PIL", "plot", "--plot-attention")  # before the work, not after
        summarizer = Summarizer.load(checkpoint, device, quantize)
        changes = {**(options or {}), **_predict_overrides(overrides)}
        searches = [summarizer.options(**changes)]
        if sample:
            searches.append(summarizer.options(**{**changes, "search": "sample", **sample}))
        as_candidates = _writes_candidates(searches, rerank, output_path)
        if as_candidates and on_bad_row == "empty":
            raise ConfigError("--on-bad-row empty: candidates (JSONL) have no empty form; use --on-bad-row skip")
        rows = None
        if str(input_path) == "-":
            lines = [line.rstrip("\r\n") for line in sys.stdin]
            ids, sources = [str(i) for i in range(1, len(lines) + 1)], summarizer.sources(lines)
            reader = open_reader(reader_options("text"))
        else:
            data = summarizer.cfg.data
            reader = open_reader(data if data.format == fmt else retype(data, READERS, fmt))
            rows = scan_rows(input_path, reader, on_bad_row)
            cfg = dataclasses.replace(summarizer.cfg, data=dataclasses.replace(reader.options, on_bad_row="skip"))
            corpus = tokenize_file(input_path, cfg, need_target=False)
            _warn_truncated(corpus.stats.truncated_sources, cfg)
            ids, sources = corpus.ids, corpus.sources
        found = summarizer.candidates(sources, searches, plot_attention is not None, progress=True)
        ranked = [mbr_order(c) if rerank else [(s, None) for s in c] for c in found]
        texts = [candidates[0][0].text for candidates in ranked]
        if plot_attention is not None:
            _plot_attention(Path(plot_attention), ids, [candidates[0][0] for candidates in ranked])
        if not as_candidates:
            ranked = None
    if on_bad_row == "empty" and rows is not None:
        ids, texts = with_empty_rows(rows, ids, texts)
    with _output(output_path) as out:
        if ranked is not None:
            write_candidates(ids, ranked, out)
        else:
            reader.write_predictions(ids, texts, out)
    seconds = time.perf_counter() - start
    log.info(
        "%d summaries in %.1f s (%.1f sents/s) -> %s",
        len(texts),
        seconds,
        len(texts) / max(seconds, 1e-9),
        output_path or "stdout",
    )
    return len(texts)


def baseline_summaries(reader: Reader, examples: Sequence[Example], baseline: str) -> list[str]:
    """``lead``: the reader's lead (the first sentence; AutoMaster: the first technician turn).
    ``oracle``: the segment (sentence; AutoMaster: dialogue turn) with the highest character
    ROUGE-L F1 against the row's reference, the ceiling of a one-segment extractive summary;
    rows without a reference get an empty summary, counted in a warning."""
    if baseline == "lead":
        return [reader.lead(e) for e in examples]
    if baseline != "oracle":
        raise ConfigError(f"unknown baseline {baseline!r} (choices: lead, oracle)")
    texts, missing = [], 0
    for example in examples:
        segments = reader.segments(example)
        best = best_segment(segments, example.target)
        missing += example.target is None or not example.target.strip()
        texts.append("" if best is None else segments[best])
    if missing:
        log.warning("--baseline oracle: %d of %d rows have no reference: empty summaries", missing, len(texts))
    return texts


def mbr_order(candidates: list[Summary]) -> list[tuple[Summary, float]]:
    """Candidates of one input with their expected character ROUGE-L F1 against the others, the
    minimum Bayes risk one first. Weights are uniform: samples already come as often as the model
    would produce them, and weighting them by probability too would count it twice. A candidate is
    not its own evidence (``mbr_utilities``): with uniform weights that changes no ranking, only
    what the utility means (agreement with the others)."""
    order = mbr_rerank([c.text for c in candidates], level="char")
    return [(candidates[i], utility) for i, utility in order]


def write_candidates(
    ids: Sequence[str], ranked: Sequence[Sequence[tuple[Summary, float | None]]], out: IO[str]
) -> None:
    """JSONL, one object per input: ``{"id", "prediction", "candidates": [{"text", "score", "search"
    (, "mbr": expected ROUGE-L)}]}``, the prediction first; scores are the searches' (log-probabilities,
    with beam search's penalties)."""
    for id_, candidates in zip(ids, ranked):
        listed = [
            {"text": s.text, "score": round(s.score, 4), "search": s.search}
            | ({"mbr": round(utility, 4)} if utility is not None else {})
            for s, utility in candidates
        ]
        out.write(json.dumps({"id": id_, "prediction": listed[0]["text"], "candidates": listed}, ensure_ascii=False))
        out.write("\n")


def _writes_candidates(searches: Sequence[PredictConfig], rerank: str | None, output_path: str | Path | None) -> bool:
    """Whether the output is the candidates' JSONL: more than one per input, not reranked (or to .jsonl).
    Refuses what would otherwise be silently ignored: n_best > 1 with greedy search or into a CSV."""
    first = searches[0]
    if first.n_best > 1 and first.search == "greedy":
        raise ConfigError(
            f"predict.n_best={first.n_best}: greedy search finds one hypothesis per input; "
            "use --search beam (beam_size at least n_best) or --search sample"
        )
    if len(searches) > 1 and first.search == "sample":
        raise ConfigError("--sample N adds samples to the search's candidates: with --search sample, use --n-best N")
    count = sum(options.n_best for options in searches)
    if count == 1:
        if rerank:
            log.warning(
                "--rerank %s over one candidate per input changes nothing: add --n-best N or --sample N", rerank
            )
        return False
    jsonl = output_path is not None and Path(output_path).suffix.lower() == ".jsonl"
    if rerank is None and output_path is not None and not jsonl:
        where = " + ".join(f"{o.n_best} from {o.search}" for o in searches)
        raise ConfigError(
            f"predict: {count} candidates per input ({where}; predict.n_best, --sample) are written as JSONL, one "
            f"object per input: give --output FILE.jsonl, not {output_path} (or --rerank mbr to write the chosen one)"
        )
    return jsonl or rerank is None


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


@contextlib.contextmanager
def _output(output_path: str | Path | None) -> Iterator[IO[str]]:
    """The output file (UTF-8, newlines as written), or stdout."""
    if not output_path:
        yield sys.stdout
        return
    with open(output_path, "w", encoding="utf-8", newline="") as out:
        yield out
