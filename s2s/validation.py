"""Validation during training: dev loss and perplexity (teacher forcing), ROUGE of greedy
decodes, and the report of them (log line, metrics.jsonl, TensorBoard)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm import tqdm

from s2s import metrics
from s2s.batching import EncodedExample, example_lengths, plan_batches
from s2s.config import PredictConfig
from s2s.metrics import Metric
from s2s.model import Seq2SeqModel
from s2s.plotting import attention_tensor
from s2s.rundir import RunDirectory
from s2s.search import search, search_examples
from s2s.tokenizers import Tokenizer
from s2s.vocabulary import Vocabulary

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DevSet:
    """The encoded dev examples with their references (detokenized targets)."""

    examples: list[EncodedExample]
    references: list[str]


def validate_model(
    model: Seq2SeqModel,
    dev: DevSet,
    *,
    predict: PredictConfig,
    batch_size: int,
    tgt_vocab: Vocabulary,
    tokenizer: Tokenizer,
    device: torch.device,
    coverage: bool,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress: bool = False,
) -> dict[str, Any]:
    """``{"loss", "ppl", "scores": metrics.score(...), "example": (hypothesis, prediction, reference),
    "example_tokens": (its words, its source words), "seconds"}``; ``progress``: bars for the loss
    and the decoding."""
    started = time.perf_counter()
    model.eval()
    examples = dev.examples
    # greedy decoding; a family that does not write token by token (extractive) decodes as it is set to
    search_name = "greedy" if model.writes_tokens else predict.search
    greedy = dataclasses.replace(predict, search=search_name, batch_size=batch_size)
    nll, tokens = 0.0, 0
    with torch.no_grad(), autocast():
        src_lengths, tgt_lengths = example_lengths(examples)
        plan = plan_batches(src_lengths, tgt_lengths, batch_size=batch_size)
        for indices in tqdm(plan, desc="dev loss", unit="batch", disable=not progress, dynamic_ncols=True, leave=False):
            batch = model.collate(examples, indices)
            tokens += model.loss_units(batch)
            nll += float(model(batch.to(device), coverage=coverage).token_loss.sum())
        hypotheses = search_examples(model, examples, greedy, device=device, coverage=coverage, progress=progress)
        first = model.collate(examples, [0]).to(device)
        shown = search(model, first, greedy, return_attention=True, coverage=coverage)[0][0]
    predictions = [tokenizer.detokenize(tgt_vocab.decode(h[0].tokens, ex.oovs)) for h, ex in zip(hypotheses, examples)]
    loss = nll / max(tokens, 1)
    return {
        "loss": loss,
        "ppl": math.exp(min(loss, 50.0)),
        "scores": metrics.score(predictions, dev.references, levels=("word", "char")),
        "example": (shown, predictions[0], dev.references[0]),
        "example_tokens": (
            tgt_vocab.decode(shown.tokens, examples[0].oovs),
            tgt_vocab.decode(examples[0].src_ext, examples[0].oovs),
        ),
        "seconds": time.perf_counter() - started,
    }


def report(
    result: dict[str, Any],
    *,
    step: int,
    run_dir: RunDirectory,
    writer: Any,
    metric: Metric,
    best: tuple[float | None, int],
    improved: bool,
    stopping: str,
) -> None:
    """One log line, one metrics.jsonl record, TensorBoard scalars, a heatmap and an example."""
    scores = result["scores"]
    record = {"step": step, "dev_loss": result["loss"], "dev_ppl": result["ppl"]}
    for level in ("word", "char"):
        for name, prf in scores[level].items():
            record[f"dev_{name}_{level}"] = prf["f"]
            writer.add_scalar(f"dev/{name}-{level}", 100 * prf["f"], step)
    writer.add_scalar("dev/loss", result["loss"], step)
    writer.add_scalar("dev/ppl", result["ppl"], step)
    record["dev_repeated_trigrams"] = scores["guards"]["repeated_trigrams"]["word"]
    run_dir.append_metrics(record)
    hypothesis, prediction, reference = result["example"]
    if hypothesis.attention is not None and hypothesis.attention.numel():
        words, source = result["example_tokens"]
        writer.add_image("dev/attention", attention_tensor(hypothesis.attention, words, source, hypothesis.p_gen), step)
    writer.add_text("dev/example", f"prediction: {prediction}  \nreference: {reference}", step)
    char = scores["char"]
    best_score, best_step = best
    log.info(
        "step %d | dev loss %.3f ppl %.1f | ROUGE-1/2/L %.1f/%.1f/%.1f (char) | best %s @ %d%s | evaluated in %.1f s%s",
        step,
        result["loss"],
        result["ppl"],
        100 * char["rouge-1"]["f"],
        100 * char["rouge-2"]["f"],
        100 * char["rouge-l"]["f"],
        metric.format(best_score) if best_score is not None else "-",
        best_step,
        " | new best" if improved else "",
        result["seconds"],
        stopping,
    )


def references(targets: Sequence[list[str]], tokenizer: Tokenizer) -> list[str]:
    return [tokenizer.detokenize(t) for t in targets]
