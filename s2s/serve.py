"""``s2s serve``: a web page and a JSON API to try a checkpoint, with attention heatmaps.

    app = create_app(Summarizer.load("runs/quickstart/best.pt"))  # a FastAPI app
    serve("runs/quickstart/best.pt", port=8000)                    # the same, run by uvicorn

    POST /summarize  {"question": .., "dialogue": ..} (AutoMaster models) or {"text": ..}, plus
                     search options (beam_size, search, max_length, ...): the summary, its tokens,
                     the source tokens, attention (output x source), p_gen (pointer-generator), timing
    GET  /health     the model, the input fields it takes, its vocabularies, device, defaults, limits
    GET  /examples   a few dev rows to try, and how many the file holds
    GET  /           the page (s2s/static/)

One request cannot stall the others. A body is read up to ``max_body_bytes`` (413 beyond); a
request's work, source tokens x beam x output length, is held to ``max_work`` (413 beyond, saying
what to lower). Requests are batched: a ``Batcher`` queues them and runs one model call per
search options for up to ``max_batch`` of them and ``max_work`` of work together, in a thread of
its own so the event loop keeps serving; requests over ``large_work`` go to a lane of their own,
a second ``Batcher`` with its own thread, so they never hold up the small ones. Bad input gets a
4xx with ``{"error": "one line"}``; a failure of the server's own is a 500 that says "internal
error" and no more (the traceback goes to the log). Only requests whose Host header names the
server are answered (DNS rebinding). FastAPI and uvicorn are the optional extra ``s2s[serve]``,
imported only inside the functions that need them.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence

from torch import Tensor

from s2s.config import DataConfig, PredictConfig
from s2s.data import read_examples
from s2s.errors import S2SError
from s2s.extras import require
from s2s.predict import Summarizer, Summary, _trained_on_automaster

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")  # bind addresses that listen on every interface
AUTOMASTER_FIELDS = ("question", "dialogue")
# Search options a request may set; batch_size is the server's (max_batch), n_best is always 1.
SEARCH_OPTIONS = tuple(f.name for f in dataclasses.fields(PredictConfig) if f.name not in ("batch_size", "n_best"))
LIMITS = {"beam_size": 16, "max_length": 500}  # one request must not hold the model for minutes
DEV_SPLITS = ("dev_split.csv", "dev_split.jsonl", "dev_split.tsv")  # what training writes beside its checkpoints

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


class RequestError(S2SError):
    """A request the server cannot answer: ``status`` is its 4xx HTTP status."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def input_fields(summarizer: Summarizer) -> tuple[str, ...]:
    """The text fields a request gives the model: question and dialogue for a model trained on
    AutoMaster (``text`` is taken too), else ``text`` alone."""
    return AUTOMASTER_FIELDS if _trained_on_automaster(summarizer.cfg.data) else ("text",)


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
        fields = [repr(key) for key, value in body.items() if not _valid_unicode([key, value])] \
            if isinstance(body, dict) else []
        where = f" in {fields[0]}" if fields else ""
        raise RequestError(f"bad text{where}: a lone surrogate (a \\ud800-\\udfff escape without its pair) "
                           "is not a character; send valid Unicode", status=400)
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


def parse_request(body: Any, max_chars: int,
                  fields: Sequence[str] = AUTOMASTER_FIELDS) -> tuple[str | dict[str, str], dict[str, Any]]:
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
        raise RequestError(f"unknown field {', '.join(map(repr, unknown))} "
                           f"(expected {expected}, and search options: {', '.join(SEARCH_OPTIONS)})")
    texts = {name: body[name] for name in text_fields if body.get(name) is not None}
    for name, value in texts.items():
        if not isinstance(value, str):
            raise RequestError(f"{name}: expected a string, got {type(value).__name__}")
    if "text" in texts and len(texts) > 1:
        raise RequestError(f"give either {expected}, not both")
    if not any(value.strip() for value in texts.values()):
        shapes = ["{" + ", ".join(f'"{name}": ...' for name in names) + "}" for names in (row_fields, ["text"])
                  if names]
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
    source: list[str]  # tokens, as ``source_tokens`` gives them
    options: PredictConfig
    work: int  # as ``request_work`` counts it
    arrived: float  # event-loop time
    future: asyncio.Future  # -> (Summary, batch size)


class Batcher:
    """Answers concurrent requests with shared model calls. A worker waits for the first queued
    request, then up to ``max_wait_ms`` after its arrival for more (or until ``max_batch`` are
    queued), takes those that arrived first, up to ``max_batch`` of them and ``max_work`` of work
    together (the first one whatever its work), and runs one ``Summarizer.decode`` call per
    distinct search options in a thread of its own (always the same one: the allocator keeps a
    pool of freed memory per thread, so calls spread over many threads would each keep a peak's
    worth). ``close`` ends it."""

    def __init__(self, summarizer: Summarizer, max_batch: int, max_wait_ms: float, max_work: float = math.inf) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be at least 1 and max_wait_ms not negative, "
                             f"got {max_batch}, {max_wait_ms}")
        self.summarizer, self.max_batch, self.max_wait = summarizer, max_batch, max_wait_ms / 1000
        self.max_work = max_work
        self.requests = 0  # answered or failed
        self.model_calls = 0
        self._pending: list[_Job] = []
        self._arrived = asyncio.Event()  # set while requests are pending
        self._full = asyncio.Event()  # set while max_batch or more are pending
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="s2s-model")

    async def submit(self, source: list[str], options: PredictConfig, work: int = 0) -> tuple[Summary, int]:
        """The summary of the tokens ``source`` and how many requests shared its model call;
        ``work``: what it costs (``request_work``)."""
        loop = asyncio.get_running_loop()
        job = _Job(source, options, work, loop.time(), loop.create_future())
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
            jobs = self._take()
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
            summaries = await asyncio.get_running_loop().run_in_executor(
                self._thread, self.summarizer.decode, [j.source for j in jobs], options, True)
        except Exception as err:  # noqa: BLE001 - each request gets the error; the worker goes on
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(err)
            return
        for job, summary in zip(jobs, summaries):
            if not job.future.done():
                job.future.set_result((summary, len(jobs)))

    def _take(self) -> list[_Job]:
        """The next batch off the queue: the first jobs, up to max_batch and max_work (one at least)."""
        count, work = 1, self._pending[0].work
        for job in self._pending[1 : self.max_batch]:
            work += job.work
            if work > self.max_work:
                break
            count += 1
        jobs, self._pending = self._pending[:count], self._pending[count:]
        self._sync()
        return jobs

    def close(self) -> None:
        """Let the model thread go once its call, if any, is done."""
        self._thread.shutdown(wait=False)

    def _sync(self) -> None:
        for event, on in ((self._arrived, bool(self._pending)), (self._full, len(self._pending) >= self.max_batch)):
            if on:
                event.set()
            else:
                event.clear()


# --------------------------------------------------------------------------------------------
# Middleware (plain ASGI)
# --------------------------------------------------------------------------------------------


def host_name(header: str) -> str:
    """The name a Host header gives, without its port: ``"LocalHost.:8000"`` -> ``"localhost"``,
    ``"[::1]:8000"`` -> ``"::1"``."""
    header = header.strip()
    name = header[1:].partition("]")[0] if header.startswith("[") else header.partition(":")[0]
    return _bare(name)


def _bare(name: str) -> str:
    """A host name as compared: lower case, no brackets, no final dot."""
    return name.strip().strip("[]").rstrip(".").lower()


class HostCheck:
    """Answers 400 to a request whose Host header names none of ``allowed`` (any port). A page of
    another site can reach a loopback server through DNS rebinding, but its requests name that site."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app, self.allowed = app, {_bare(name) for name in allowed}

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed:
                await _send_json(send, 400, {"error": f"Host {host!r} is not a name this server answers to "
                                             "(start it with --allow-host NAME to add one)"})
                return
        await self.app(scope, receive, send)


class InternalErrors:
    """Turns an exception no handler took into a 500 ``{"error": "internal error"}``: the traceback
    goes to the log, never to the client, and the connection stays open for the next request
    (an exception that leaves the app makes uvicorn drop the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched_send(message: Mapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            log.exception("internal error answering %s %s", scope.get("method"), scope.get("path"))
            if started:  # half an answer is out: only closing the connection ends it
                raise
            await _send_json(send, 500, {"error": "internal error (the server's log has the details)"})


async def _send_json(send: Callable, status: int, body: Mapping[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


@dataclass
class Examples:
    """What ``GET /examples`` offers: the first rows of a file, and how many rows it holds."""

    rows: list[dict[str, str]]
    total: int


def create_app(summarizer: Summarizer, *, max_chars: int = 10_000, max_body_bytes: int = 256 * 1024,
               max_work: int = 500_000, large_work: int = 50_000, max_batch: int = 16, max_wait_ms: float = 10,
               examples: Examples | None = None, allowed_hosts: Sequence[str] = LOOPBACK,
               api_docs: bool = False) -> Any:
    """A FastAPI app serving ``summarizer``.

    Limits: texts of at most ``max_chars`` characters in bodies of at most ``max_body_bytes``;
    a request's work (``request_work``) at most ``max_work``. Requests of at most ``large_work``
    share model calls of up to ``max_batch`` of them and ``max_work`` together (each waiting at
    most ``max_wait_ms`` for company); larger ones go to a lane of their own, batched alike
    but without waiting. ``examples``: what ``GET /examples``
    offers. ``allowed_hosts``: the Host names answered (``"*"``: any). ``api_docs``: serve
    FastAPI's /docs, /redoc and /openapi.json."""
    require("fastapi", "serve", "s2s serve")
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    fields = input_fields(summarizer)
    examples = examples or Examples([], 0)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.lanes = {"small": Batcher(summarizer, max_batch, max_wait_ms, max_work),
                           "large": Batcher(summarizer, max_batch, 0, max_work)}
        workers = [asyncio.create_task(lane.run()) for lane in app.state.lanes.values()]
        yield
        for worker, lane in zip(workers, app.state.lanes.values()):
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            lane.close()

    docs = {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"} if api_docs \
        else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="s2s", summary="Try a sequence-to-sequence summarizer", lifespan=lifespan, **docs)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(InternalErrors)
    if "*" not in allowed_hosts:
        app.add_middleware(HostCheck, allowed=allowed_hosts)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """The model, its input fields, vocabularies, device, defaults, limits and requests served."""
        model = summarizer.cfg.model
        lanes = request.app.state.lanes.values()
        return {
            "status": "ok",
            "model": {"decoder": model.decoder.type, "encoder": model.encoder.type, "attention": model.attention.type,
                      "coverage": model.decoder.coverage, "copies": summarizer.model.copies},
            "input": list(fields),
            "vocab": {"source": len(summarizer.src_vocab), "target": len(summarizer.tgt_vocab)},
            "tokenizer": summarizer.cfg.tokenizer.type,
            "device": str(summarizer.device),
            "options": {name: getattr(summarizer.cfg.predict, name) for name in SEARCH_OPTIONS},
            "limits": {"max_chars": max_chars, "max_body_bytes": max_body_bytes, "max_work": max_work,
                       "large_work": large_work, **LIMITS},
            "served": {"requests": sum(lane.requests for lane in lanes),
                       "model_calls": sum(lane.model_calls for lane in lanes)},
        }

    @app.get("/examples")
    async def list_examples() -> dict[str, Any]:
        """A few dev rows to try (id, question and dialogue or text, reference) and the file's row count."""
        return {"examples": examples.rows, "total": examples.total}

    @app.post("/summarize")
    async def summarize(request: Request) -> dict[str, Any]:
        """Summarize ``{"question", "dialogue"}`` or ``{"text"}`` with optional search options."""
        start = time.perf_counter()
        item, changes = parse_request(await read_json(request, max_body_bytes), max_chars, fields)
        try:
            options = summarizer.options(**changes, batch_size=max_batch)
        except S2SError as err:
            raise RequestError(str(err)) from None
        source = await asyncio.to_thread(source_tokens, summarizer, item)
        work, beam, length = request_work(len(source), options)
        if work > max_work:
            raise RequestError(
                f"too much work for one request: {len(source)} source tokens x beam {beam} x {length} output "
                f"tokens = {work:,}, at most {max_work:,} on this server; lower beam_size or max_length, "
                "or send a shorter text", status=413)
        lane = request.app.state.lanes["large" if work > large_work else "small"]
        summary, batch_size = await lane.submit(source, options, work)
        return summary_json(summary, batch_size, time.perf_counter() - start)

    return app


def load_examples(path: str | Path, summarizer: Summarizer, limit: int = 12, *,
                  data: DataConfig | None = None) -> Examples:
    """The first ``limit`` rows of a CSV/TSV/JSONL file as ``/examples`` offers them, and the
    file's row count; read with ``data`` (default: the checkpoint's, the format from the extension)."""
    cfg = data or dataclasses.replace(summarizer.cfg.data, format=None)
    rows, total = [], 0
    for example in read_examples(path, cfg, need_target=False):
        total += 1
        if len(rows) < limit:
            raw = example.raw or {}
            fields = {"question": raw["Question"], "dialogue": raw["Dialogue"]} \
                if {"Question", "Dialogue"} <= raw.keys() else {"text": example.source}
            rows.append({"id": example.id, **fields, "reference": example.target or ""})
    return Examples(rows, total)


def dev_split_examples(checkpoint: str | Path, summarizer: Summarizer, limit: int = 12) -> Examples | None:
    """The dev rows that training carved from the training file and wrote into the run's folder,
    beside ``checkpoint`` (``dev_split.csv``/``.jsonl`` in the input's layout, or ``dev_split.tsv``:
    source, tab, target); None where there is none. Nothing else the checkpoint names is read."""
    for name in DEV_SPLITS:
        path = Path(checkpoint).with_name(name)
        if path.is_file():
            data = dataclasses.replace(summarizer.cfg.data, format=None, source_column=0, target_column=1)
            return load_examples(path, summarizer, limit, data=data)
    return None


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host names a server bound to ``host`` answers to: every loopback name for a loopback
    or wildcard address (0.0.0.0, ::), else ``host`` itself; and ``extra``."""
    return [*(LOOPBACK if host in LOOPBACK or host in WILDCARDS else (host,)), *extra]


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000, device: str = "auto", *,
          examples: str | Path | None = None, allow_hosts: Iterable[str] = (), api_docs: bool = False,
          **app_options: Any) -> None:
    """``s2s serve``: load ``checkpoint`` and serve the page and API until interrupted.
    ``examples`` (default: the run's ``dev_split.*`` beside the checkpoint, where present) feed
    ``GET /examples``; ``allow_hosts``: Host names answered besides the bound one;
    ``app_options`` go to ``create_app``."""
    require("fastapi", "serve", "s2s serve")
    uvicorn = require("uvicorn", "serve", "s2s serve")
    summarizer = Summarizer.load(checkpoint, device)
    offered = load_examples(examples, summarizer) if examples else dev_split_examples(checkpoint, summarizer)
    if offered is None:
        trained_with = f" (the model's dev file was {summarizer.cfg.data.dev})" if summarizer.cfg.data.dev else ""
        log.info("no examples to offer: --examples FILE names rows to try%s", trained_with)
    names = allowed_host_names(host, allow_hosts)
    app = create_app(summarizer, examples=offered, allowed_hosts=names, api_docs=api_docs, **app_options)
    if host not in LOOPBACK:
        log.warning("listening on %s: anyone who can reach this machine can use the model", host)
    if "*" not in names:
        log.info("answering requests for host %s (--allow-host NAME adds one)", ", ".join(names))
    log.info("serving %s on http://%s:%d (%d examples; Ctrl-C stops)", checkpoint, host, port,
             len(offered.rows) if offered else 0)
    uvicorn.run(app, host=host, port=port, log_level="warning")
