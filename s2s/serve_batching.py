"""Request batching for ``s2s serve``: concurrent requests share model calls.

A ``Batcher`` queues requests and runs one model call per search options for up to ``max_batch``
of them and ``max_work`` of work together, in a thread of its own so that the event loop keeps
serving (one thread per lane: spread over a pool, every thread's memory pool would keep a peak's
worth). The server runs two lanes, so that requests over ``large_work`` never hold up small ones.
"""

import asyncio
import contextlib
import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from s2s.config import PredictConfig
from s2s.predict import Summarizer, Summary


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
            raise ValueError(
                f"max_batch must be at least 1 and max_wait_ms not negative, got {max_batch}, {max_wait_ms}"
            )
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
                self._thread, self.summarizer.decode, [j.source for j in jobs], options, True
            )
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
