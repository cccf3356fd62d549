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
server are answered (DNS rebinding). FastAPI and uvicorn are the optional extra ``s2s-summarizer[serve]``,
imported only inside the functions that need them. The parts: ``serve_requests`` (reading and
checking requests), ``serve_batching`` (model calls shared by requests), ``serve_guards`` (Host
check, internal errors).
"""

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2s.config import DataConfig
from s2s.errors import S2SError
from s2s.extras import require
from s2s.options import retype
from s2s.predict import Summarizer
from s2s.readers import read_examples
from s2s.registry import READERS
from s2s.serve_batching import Batcher
from s2s.serve_guards import LOOPBACK, HostCheck, InternalErrors, allowed_host_names
from s2s.serve_requests import (
    LIMITS,
    SEARCH_OPTIONS,
    RequestError,
    check_work,
    input_fields,
    parse_request,
    read_json,
    source_tokens,
    summary_json,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
DEV_SPLITS = ("dev_split.csv", "dev_split.jsonl", "dev_split.tsv")  # what training writes beside its checkpoints


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


@dataclass
class Examples:
    """What ``GET /examples`` offers: the first rows of a file, and how many rows it holds."""

    rows: list[dict[str, str]]
    total: int


def create_app(
    summarizer: Summarizer,
    *,
    max_chars: int = 10_000,
    max_body_bytes: int = 256 * 1024,
    max_work: int = 500_000,
    large_work: int = 50_000,
    max_batch: int = 16,
    max_wait_ms: float = 10,
    examples: Examples | None = None,
    allowed_hosts: Sequence[str] = LOOPBACK,
    api_docs: bool = False,
) -> Any:
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
        app.state.lanes = {
            "small": Batcher(summarizer, max_batch, max_wait_ms, max_work),
            "large": Batcher(summarizer, max_batch, 0, max_work),
        }
        workers = [asyncio.create_task(lane.run()) for lane in app.state.lanes.values()]
        yield
        for worker, lane in zip(workers, app.state.lanes.values()):
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            lane.close()

    docs = (
        {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"}
        if api_docs
        else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    )
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

    limits = {
        "max_chars": max_chars,
        "max_body_bytes": max_body_bytes,
        "max_work": max_work,
        "large_work": large_work,
        **LIMITS,
    }

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """The model, its input fields, vocabularies, device, defaults, limits and requests served."""
        return health_json(summarizer, fields, limits, request.app.state.lanes.values())

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
        work = check_work(len(source), options, max_work)
        lane = request.app.state.lanes["large" if work > large_work else "small"]
        summary, batch_size = await lane.submit(source, options, work)
        return summary_json(summary, batch_size, time.perf_counter() - start)

    return app


def health_json(
    summarizer: Summarizer, fields: Sequence[str], limits: dict[str, int], lanes: Iterable[Batcher]
) -> dict:
    """What ``GET /health`` answers: the model (its family and, for the RNN family, its parts), the
    input fields, vocabularies, tokenizer, device, default search options, limits, requests served."""
    model = summarizer.cfg.model
    parts = {name: getattr(model, name).type for name in ("encoder", "attention", "decoder") if hasattr(model, name)}
    lanes = list(lanes)
    return {
        "status": "ok",
        "model": {"type": model.type, **parts, "coverage": summarizer.coverage, "copies": summarizer.model.copies},
        "input": list(fields),
        "vocab": {"source": len(summarizer.src_vocab), "target": len(summarizer.tgt_vocab)},
        "tokenizer": summarizer.cfg.tokenizer.type,
        "device": str(summarizer.device),
        "options": {name: getattr(summarizer.cfg.predict, name) for name in SEARCH_OPTIONS},
        "limits": limits,
        "served": {
            "requests": sum(lane.requests for lane in lanes),
            "model_calls": sum(lane.model_calls for lane in lanes),
        },
    }


def load_examples(
    path: str | Path, summarizer: Summarizer, limit: int = 12, *, data: DataConfig | None = None
) -> Examples:
    """The first ``limit`` rows of a CSV/TSV/JSONL file as ``/examples`` offers them, and the
    file's row count; read with ``data`` (default: the checkpoint's, the format from the extension)."""
    cfg = data or dataclasses.replace(summarizer.cfg.data, format=None)
    rows, total = [], 0
    for example in read_examples(path, cfg, need_target=False):
        total += 1
        if len(rows) < limit:
            raw = example.raw or {}
            fields = (
                {"question": raw["Question"], "dialogue": raw["Dialogue"]}
                if {"Question", "Dialogue"} <= raw.keys()
                else {"text": example.source}
            )
            rows.append({"id": example.id, **fields, "reference": example.target or ""})
    return Examples(rows, total)


def dev_split_examples(checkpoint: str | Path, summarizer: Summarizer, limit: int = 12) -> Examples | None:
    """The dev rows that training carved from the training file and wrote into the run's folder,
    beside ``checkpoint`` (``dev_split.csv``/``.jsonl`` in the input's layout, or ``dev_split.tsv``:
    source, tab, target); None where there is none. Nothing else the checkpoint names is read."""
    for name in DEV_SPLITS:
        path = Path(checkpoint).with_name(name)
        if path.is_file():
            tsv = dataclasses.replace(retype(summarizer.cfg.data, READERS, "tsv"), source_column=0, target_column=1)
            return load_examples(path, summarizer, limit, data=tsv if path.suffix == ".tsv" else None)
    return None


def serve(
    checkpoint: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "auto",
    *,
    examples: str | Path | None = None,
    allow_hosts: Iterable[str] = (),
    api_docs: bool = False,
    quantize: str | None = None,
    **app_options: Any,
) -> None:
    """``s2s serve``: load ``checkpoint`` and serve the page and API until interrupted.
    ``examples`` (default: the run's ``dev_split.*`` beside the checkpoint, where present) feed
    ``GET /examples``; ``allow_hosts``: Host names answered besides the bound one;
    ``quantize``: ``Summarizer.load``'s (``int8``); ``app_options`` go to ``create_app``."""
    require("fastapi", "serve", "s2s serve")
    uvicorn = require("uvicorn", "serve", "s2s serve")
    summarizer = Summarizer.load(checkpoint, device, quantize)
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
    log.info(
        "serving %s on http://%s:%d (%d examples; Ctrl-C stops)",
        checkpoint,
        host,
        port,
        len(offered.rows) if offered else 0,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
