"""``s2s serve``: a web page and a JSON API to try a checkpoint, with attention heatmaps.

    app = create_app(Summarizer.load("runs/quickstart/best.pt"))  # a FastAPI app
    serve("runs/quickstart/best.pt", port=8000)                    # the same, run by uvicorn

    POST /summarize  {"question": .., "dialogue": ..} or {"text": ..}, plus search options
                     (beam_size, search, max_length, ...): the summary, its tokens, the source
                     tokens, attention (output x source), p_gen (pointer-generator) and timing
    GET  /health     the model, its vocabularies, device and default search options
    GET  /examples   a few dev rows to try
    GET  /           the page (s2s/static/)

Concurrent requests are batched: a ``Batcher`` queues them and runs one ``summaries`` call per
search options for up to ``max_batch`` of them, in a worker thread so the event loop keeps
serving. Bad input gets a 4xx with ``{"error": "one line"}``. FastAPI and uvicorn are the
optional extra ``s2s[serve]``, imported only here, inside the functions that need them.
"""

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from s2s.config import PredictConfig
from s2s.errors import S2SError
from s2s.extras import require
from s2s.predict import Summarizer, Summary
from s2s.readers import read_examples

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
TEXT_FIELDS = ("text", "question", "dialogue")
# Search options a request may set; batch_size is the server's (max_batch), n_best is always 1.
SEARCH_OPTIONS = tuple(f.name for f in dataclasses.fields(PredictConfig) if f.name not in ("batch_size", "n_best"))
LIMITS = {"beam_size": 16, "max_length": 500}  # one request must not hold the model for minutes


class RequestError(S2SError):
    """A request the server cannot answer: ``status`` is its 4xx HTTP status."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def parse_request(body: Any, max_chars: int) -> tuple[str | dict[str, str], dict[str, Any]]:
    """A ``/summarize`` body -> (the input for ``Summarizer.summaries``, search option changes).
    Raises ``RequestError`` for anything but a text (or question/dialogue) and known options."""
    if isinstance(body, bytes):  # FastAPI passes a body it was not told is JSON as it came
        raise RequestError("send a JSON object with Content-Type: application/json", status=415)
    if not isinstance(body, dict):
        raise RequestError(f"expected a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(TEXT_FIELDS) - set(SEARCH_OPTIONS))
    if unknown:
        raise RequestError(
            f"unknown field {', '.join(map(repr, unknown))} "
            f"(expected text, or question and dialogue, and search options: {', '.join(SEARCH_OPTIONS)})"
        )
    texts = {name: body[name] for name in TEXT_FIELDS if body.get(name) is not None}
    for name, value in texts.items():
        if not isinstance(value, str):
            raise RequestError(f"{name}: expected a string, got {type(value).__name__}")
    if "text" in texts and len(texts) > 1:
        raise RequestError("give either text, or question and dialogue, not both")
    if not any(value.strip() for value in texts.values()):
        raise RequestError('empty text: send {"question": ..., "dialogue": ...} or {"text": ...} with some words')
    length = sum(len(value) for value in texts.values())
    if length > max_chars:
        raise RequestError(f"text too long: {length} characters, at most {max_chars}", status=413)
    for name, limit in LIMITS.items():
        value = body.get(name)
        if isinstance(value, int) and value > limit:
            raise RequestError(f"{name}: at most {limit} on this server, got {value}")
    item = (
        texts["text"]
        if "text" in texts
        else {"Question": texts.get("question", ""), "Dialogue": texts.get("dialogue", "")}
    )
    return item, {name: body[name] for name in SEARCH_OPTIONS if name in body}


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


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------


@dataclass
class _Job:
    item: str | Mapping[str, str]
    options: PredictConfig
    arrived: float  # event-loop time
    future: asyncio.Future  # -> (Summary, batch size)


class Batcher:
    """Answers concurrent requests with shared model calls. A worker waits for the first queued
    request, then up to ``max_wait_ms`` after its arrival for more (or until ``max_batch`` are
    queued), and runs one ``summaries`` call per distinct search options in a worker thread."""

    def __init__(self, summarizer: Summarizer, max_batch: int, max_wait_ms: float) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(
                f"max_batch must be at least 1 and max_wait_ms not negative, got {max_batch}, {max_wait_ms}"
            )
        self.summarizer, self.max_batch, self.max_wait = summarizer, max_batch, max_wait_ms / 1000
        self.requests = 0  # answered or failed
        self.model_calls = 0
        self._pending: list[_Job] = []
        self._arrived = asyncio.Event()  # set while requests are pending
        self._full = asyncio.Event()  # set while max_batch or more are pending

    async def submit(self, item: str | Mapping[str, str], options: PredictConfig) -> tuple[Summary, int]:
        """The summary of ``item`` and how many requests shared its model call."""
        loop = asyncio.get_running_loop()
        job = _Job(item, options, loop.time(), loop.create_future())
        self._pending.append(job)
        self._sync()
        return await job.future

    async def run(self) -> None:
        """The worker loop (cancel it to stop)."""
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            wait = self._pending[0].arrived + self.max_wait - loop.time()
            if wait > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._full.wait(), wait)
            jobs, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._sync()
            groups: dict[tuple, list[_Job]] = {}
            for job in jobs:
                if not job.future.done():  # done: its client went away
                    groups.setdefault(dataclasses.astuple(job.options), []).append(job)
            for group in groups.values():
                await self._answer(group[0].options, group)

    async def _answer(self, options: PredictConfig, jobs: list[_Job]) -> None:
        self.model_calls += 1
        self.requests += len(jobs)
        try:
            summaries = await asyncio.to_thread(self.summarizer.summaries, [j.item for j in jobs], options, True)
        except Exception as err:  # noqa: BLE001 - each request gets the error; the worker goes on
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(err)
            return
        for job, summary in zip(jobs, summaries):
            if not job.future.done():
                job.future.set_result((summary, len(jobs)))

    def _sync(self) -> None:
        for event, on in ((self._arrived, bool(self._pending)), (self._full, len(self._pending) >= self.max_batch)):
            if on:
                event.set()
            else:
                event.clear()


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


def create_app(
    summarizer: Summarizer,
    *,
    max_chars: int = 10_000,
    max_batch: int = 16,
    max_wait_ms: float = 10,
    examples: Sequence[Mapping[str, str]] = (),
) -> Any:
    """A FastAPI app serving ``summarizer``: texts longer than ``max_chars`` are refused;
    concurrent requests share model calls of up to ``max_batch`` (each waiting at most
    ``max_wait_ms`` for company); ``examples`` are what ``GET /examples`` offers."""
    require("fastapi", "serve", "s2s serve")
    from fastapi import Body, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.batcher = Batcher(summarizer, max_batch, max_wait_ms)
        worker = asyncio.create_task(app.state.batcher.run())
        yield
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    app = FastAPI(title="s2s", summary="Try a sequence-to-sequence summarizer", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        if first.get("type") == "json_invalid":
            reason = first.get("ctx", {}).get("error", "cannot parse it")
            return JSONResponse({"error": f"malformed JSON: {reason}"}, status_code=400)
        if first.get("type") == "missing":
            return JSONResponse({"error": "no request body: send a JSON object"}, status_code=400)
        return JSONResponse({"error": f"bad request: {first.get('msg', 'cannot read it')}"}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:  # logged by uvicorn too
        return JSONResponse({"error": f"internal error: {type(err).__name__}: {err}"}, status_code=500)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """The model, its vocabularies, device, defaults, limits and requests served."""
        model = summarizer.cfg.model
        batcher: Batcher = request.app.state.batcher
        return {
            "status": "ok",
            "model": {
                "decoder": model.decoder.type,
                "encoder": model.encoder.type,
                "attention": model.attention.type,
                "coverage": model.decoder.coverage,
                "copies": summarizer.model.copies,
            },
            "vocab": {"source": len(summarizer.src_vocab), "target": len(summarizer.tgt_vocab)},
            "tokenizer": summarizer.cfg.tokenizer.type,
            "device": str(summarizer.device),
            "options": {name: getattr(summarizer.cfg.predict, name) for name in SEARCH_OPTIONS},
            "limits": {"max_chars": max_chars, **LIMITS},
            "served": {"requests": batcher.requests, "model_calls": batcher.model_calls},
        }

    @app.get("/examples")
    async def list_examples() -> list[Mapping[str, str]]:
        """A few dev rows to try: id, question, dialogue (or text) and the reference."""
        return list(examples)

    @app.post("/summarize")
    async def summarize(request: Request, body: Any = Body(...)) -> dict[str, Any]:  # noqa: B008 - FastAPI's idiom
        """Summarize ``{"question", "dialogue"}`` or ``{"text"}`` with optional search options."""
        start = time.perf_counter()
        item, changes = parse_request(body, max_chars)
        try:
            options = summarizer.options(**changes, batch_size=max_batch)
        except S2SError as err:
            raise RequestError(str(err)) from None
        summary, batch_size = await request.app.state.batcher.submit(item, options)
        return summary_json(summary, batch_size, time.perf_counter() - start)

    return app


def load_examples(path: str | Path, summarizer: Summarizer, limit: int = 12) -> list[dict[str, str]]:
    """The first ``limit`` rows of a CSV/TSV/JSONL file as ``/examples`` offers them."""
    cfg = dataclasses.replace(summarizer.cfg.data, format=None)  # the format of ``path``'s extension
    rows = []
    for example in read_examples(path, cfg, need_target=False):
        raw = example.raw or {}
        fields = (
            {"question": raw["Question"], "dialogue": raw["Dialogue"]}
            if {"Question", "Dialogue"} <= raw.keys()
            else {"text": example.source}
        )
        rows.append({"id": example.id, **fields, "reference": example.target or ""})
        if len(rows) == limit:
            break
    return rows


def serve(
    checkpoint: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "auto",
    *,
    examples: str | Path | None = None,
    **app_options: Any,
) -> None:
    """``s2s serve``: load ``checkpoint`` and serve the page and API until interrupted.
    ``examples`` (default: the checkpoint's dev file, where present) feed ``GET /examples``;
    ``app_options`` go to ``create_app``."""
    require("fastapi", "serve", "s2s serve")
    uvicorn = require("uvicorn", "serve", "s2s serve")
    summarizer = Summarizer.load(checkpoint, device)
    dev = summarizer.cfg.data.dev
    if examples is None and dev and Path(dev).is_file():
        examples = dev
    rows = load_examples(examples, summarizer) if examples else []
    app = create_app(summarizer, examples=rows, **app_options)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach this machine can use the model", host)
    log.info("serving %s on http://%s:%d (%d examples; Ctrl-C stops)", checkpoint, host, port, len(rows))
    uvicorn.run(app, host=host, port=port, log_level="warning")
