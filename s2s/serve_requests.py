"""Requests to ``s2s serve``: reading a body within its limit, checking it, and the answer.

A body is read up to ``max_body_bytes`` (413 beyond, from Content-Length before reading where it
is given); JSON that is not UTF-8, holds NaN/Infinity, nests too deep or holds a lone surrogate is
a 400; unknown fields, wrong types and out-of-range search options are 422s that say which.
"""

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from s2s.config import PredictConfig
from s2s.errors import S2SError
from s2s.predict import Summarizer, Summary

AUTOMASTER_FIELDS = ("question", "dialogue")
# Search options a request may set; batch_size is the server's (max_batch), n_best is always 1.
SEARCH_OPTIONS = tuple(f.name for f in dataclasses.fields(PredictConfig) if f.name not in ("batch_size", "n_best"))
LIMITS = {"beam_size": 16, "max_length": 500}  # one request must not hold the model for minutes


class RequestError(S2SError):
    """A request the server cannot answer: ``status`` is its 4xx HTTP status."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def input_fields(summarizer: Summarizer) -> tuple[str, ...]:
    """The text fields a request gives the model: question and dialogue for a model whose reader
    takes them (AutoMaster's; ``text`` is taken too), else ``text`` alone."""
    return AUTOMASTER_FIELDS if set(AUTOMASTER_FIELDS) <= set(summarizer.reader.input_fields) else ("text",)


async def read_json(request: Any, max_bytes: int) -> Any:
    """The JSON body of a Starlette ``request``, refused (413) beyond ``max_bytes``: at once where
    Content-Length says so, else as soon as the bytes streamed in pass the limit (uvicorn discards
    the rest). Raises ``RequestError`` for a body that is not JSON, not UTF-8 or not valid Unicode."""
    from starlette.requests import ClientDisconnect

    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise RequestError("send a JSON object with Content-Type: application/json", status=415)
    too_large = f"request body too large: at most {max_bytes:,} bytes on this server"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(f"{too_large}, got {int(declared):,}", status=413)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise RequestError(too_large, status=413)
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError("the client went away before the body ended", status=400) from None
    return parse_json(b"".join(chunks))


def parse_json(raw: bytes) -> Any:
    """A request body as JSON: strict UTF-8, no NaN or Infinity, no lone surrogates (``RequestError``, 400)."""
    if not raw.strip():
        raise RequestError("no request body: send a JSON object", status=400)
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as err:
        raise RequestError(f"malformed JSON: not UTF-8 (byte {err.start})", status=400) from None
    except json.JSONDecodeError as err:
        raise RequestError(f"malformed JSON: {err.msg} (line {err.lineno}, column {err.colno})", status=400) from None
    except RecursionError:
        raise RequestError("malformed JSON: nested too deeply", status=400) from None
    if not _valid_unicode(body):
        fields = (
            [repr(key) for key, value in body.items() if not _valid_unicode([key, value])]
            if isinstance(body, dict)
            else []
        )
        where = f" in {fields[0]}" if fields else ""
        raise RequestError(
            f"bad text{where}: a lone surrogate (a \\ud800-\\udfff escape without its pair) "
            "is not a character; send valid Unicode",
            status=400,
        )
    return body


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _no_constant(name: str) -> None:
    raise RequestError(f"malformed JSON: {name} is not a JSON number", status=400)


def _valid_unicode(value: Any) -> bool:
    """False where a string in ``value`` holds a lone surrogate: JSON's ``"\\ud800"`` escape
    without its pair parses into one, and no UTF-8 text (the tokenizer's, the answer's) can hold it."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_request(
    body: Any, max_chars: int, fields: Sequence[str] = AUTOMASTER_FIELDS
) -> tuple[str | dict[str, str], dict[str, Any]]:
    """A ``/summarize`` body -> (the input for ``Summarizer.summaries``, search option changes).
    ``fields``: the model's ``input_fields`` (``text`` is always taken). Raises ``RequestError``
    for anything but a text (or question/dialogue) and known options."""
    if not isinstance(body, dict):
        raise RequestError(f"expected a JSON object, got {type(body).__name__}")
    row_fields = [name for name in fields if name != "text"]  # question, dialogue; or none
    text_fields = ["text", *row_fields]
    expected = "text" + (f", or {' and '.join(row_fields)}" if row_fields else "")
    unknown = sorted(set(body) - set(text_fields) - set(SEARCH_OPTIONS))
    if unknown:
        raise RequestError(
            f"unknown field {', '.join(map(repr, unknown))} "
            f"(expected {expected}, and search options: {', '.join(SEARCH_OPTIONS)})"
        )
    texts = {name: body[name] for name in text_fields if body.get(name) is not None}
    for name, value in texts.items():
        if not isinstance(value, str):
            raise RequestError(f"{name}: expected a string, got {type(value).__name__}")
    if "text" in texts and len(texts) > 1:
        raise RequestError(f"give either {expected}, not both")
    if not any(value.strip() for value in texts.values()):
        shapes = [
            "{" + ", ".join(f'"{name}": ...' for name in names) + "}" for names in (row_fields, ["text"]) if names
        ]
        raise RequestError(f"empty text: send {' or '.join(shapes)} with some words")
    length = sum(len(value) for value in texts.values())
    if length > max_chars:
        raise RequestError(f"text too long: {length} characters, at most {max_chars}", status=413)
    for name, limit in LIMITS.items():
        value = body.get(name)
        if isinstance(value, int) and value > limit:
            raise RequestError(f"{name}: at most {limit} on this server, got {value}")
    changes = {name: body[name] for name in SEARCH_OPTIONS if name in body}
    if "text" in texts:
        return texts["text"], changes
    return {"Question": texts.get("question", ""), "Dialogue": texts.get("dialogue", "")}, changes


def source_tokens(summarizer: Summarizer, item: str | Mapping[str, str]) -> list[str]:
    """The source tokens the model reads for ``item``: cleaned, tokenized, truncated to ``max_source_len``."""
    tokens = summarizer.tokenize(item)
    limit = summarizer.cfg.data.max_source_len
    return tokens[:limit] if limit else tokens


def request_work(n_source: int, options: PredictConfig) -> tuple[int, int, int]:
    """What decoding one source of ``n_source`` tokens costs, in the units of ``max_work``:
    (work, beam, output length limit), where work = source tokens x beam x output length limit
    (each step of each beam attends over the source)."""
    length = options.max_length
    if options.max_length_ratio > 0:  # as search.max_lengths
        length = min(length, max(math.ceil(n_source * options.max_length_ratio), options.min_length, 1))
    beam = 1 if options.search == "greedy" else options.beam_size
    return max(n_source, 1) * beam * length, beam, length


def check_work(n_source: int, options: PredictConfig, max_work: int) -> int:
    """The work of a request (``request_work``); over ``max_work`` a 413 that says what to lower."""
    work, beam, length = request_work(n_source, options)
    if work > max_work:
        raise RequestError(
            f"too much work for one request: {n_source} source tokens x beam {beam} x {length} output "
            f"tokens = {work:,}, at most {max_work:,} on this server; lower beam_size or max_length, "
            "or send a shorter text",
            status=413,
        )
    return work


def summary_json(summary: Summary, batch_size: int, seconds: float) -> dict[str, Any]:
    """What ``/summarize`` answers (weights rounded to 4 places)."""
    return {
        "summary": summary.text,
        "tokens": summary.tokens,
        "source_tokens": summary.source_tokens,
        "score": round(summary.score, 4),
        "attention": _rounded(summary.attention),  # (len(tokens), len(source_tokens))
        "p_gen": _rounded(summary.p_gen),  # (len(tokens),): pointer-generator, else None
        "batch_size": batch_size,  # requests answered by the same model call
        "seconds": round(seconds, 4),
    }


def _rounded(values: Tensor | None) -> list | None:
    return None if values is None else values.double().cpu().round(decimals=4).tolist()
