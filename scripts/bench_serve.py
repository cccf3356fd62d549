"""Load test of `s2s serve` on loopback: latency and throughput with and without request batching,
and small requests' latency while large ones run, with and without the lane for large requests.

    python scripts/bench_serve.py --checkpoint runs/quickstart/best.pt [--requests 200] [--concurrency 16]

For each mode a real uvicorn server runs the same checkpoint in a child process on 127.0.0.1;
``--concurrency`` clients send ``--requests`` POST /summarize requests (the rows of
``--inputs``, cycled) after a short warm-up. Prints two Markdown tables:

- batching: p50/p95 latency, requests/s and the mean number of requests answered by one model call;
- large requests mixed in: the small requests' p50/p95 alone and with ``--large`` requests at the
  work budget (longest input, beam 16, the longest output the budget allows) among them, the
  large ones' median, failed answers (5xx or a dropped connection) and the server's RSS before
  and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2s.readers import read_examples, reader_options  # noqa: E402

MODES = {  # name -> create_app options
    "one request per model call": {"max_batch": 1, "max_wait_ms": 0},
    "batched (max_batch 16, max_wait_ms 10)": {"max_batch": 16, "max_wait_ms": 10},
}
LANES = {  # name -> create_app options
    "one lane (large_work above max_work)": {"large_work": 10**12},
    "a lane for large requests (large_work 50,000)": {"large_work": 50_000},
}
MAX_WORK = 500_000  # create_app's default budget


def run_server(checkpoint: str, port: int, device: str, threads: int, app_options: dict[str, Any]) -> None:
    """The child process: serve ``checkpoint`` on 127.0.0.1:``port`` until interrupted."""
    import uvicorn

    from s2s.predict import Summarizer
    from s2s.serve import create_app

    if threads:
        torch.set_num_threads(threads)
    logging.getLogger("s2s.predict").setLevel(logging.ERROR)  # not a line per truncated input
    app = create_app(Summarizer.load(checkpoint, device), **app_options)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def load(url: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[list[tuple[Any, float]], float]:
    """Send ``bodies`` from ``concurrency`` clients: ((status or transport error, seconds) per
    body, in the order sent; wall time in s)."""
    results: list[tuple[Any, float]] = [(None, 0.0)] * len(bodies)
    queue = iter(range(len(bodies)))

    async def client(http: httpx.AsyncClient) -> None:
        for i in queue:
            start = time.perf_counter()
            try:
                outcome = (await http.post(f"{url}/summarize", json=bodies[i])).status_code
            except httpx.TransportError as err:  # a dropped connection
                outcome = err
            results[i] = outcome, time.perf_counter() - start

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return results, time.perf_counter() - start


def answered(results: list[tuple[Any, float]]) -> list[float]:
    """The latencies of the 200 answers, sorted."""
    return sorted(seconds for outcome, seconds in results if outcome == 200)


def failed(results: list[tuple[Any, float]]) -> list[Any]:
    """The outcomes that are not a 200: 4xx/5xx statuses and transport errors."""
    return [outcome for outcome, _ in results if outcome != 200]


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))]


def rss_mib(pid: int) -> float:
    """A process's resident memory (Linux: /proc), or NaN elsewhere."""
    status = Path(f"/proc/{pid}/status")
    lines = status.read_text().splitlines() if status.is_file() else []
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:")), float("nan"))


def wait_until_up(url: str, server: multiprocessing.Process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise SystemExit("the server process died; see its error above")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url}/health within {timeout:.0f} s")


@contextlib.contextmanager
def server(args: argparse.Namespace, app_options: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """A fresh server process for ``app_options``: (its URL, its pid); stopped afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = multiprocessing.get_context("spawn").Process(
        target=run_server, args=(args.checkpoint, port, args.device, args.threads, app_options), daemon=True
    )
    process.start()
    try:
        wait_until_up(url, process)
        yield url, process.pid
    finally:
        os.kill(process.pid, signal.SIGINT)  # uvicorn shuts down cleanly
        process.join(30)


def cycled(bodies: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [bodies[i % len(bodies)] for i in range(n)]


def bench(args: argparse.Namespace, app_options: dict[str, Any], bodies: list[dict[str, str]]) -> dict[str, float]:
    with server(args, app_options) as (url, _):
        asyncio.run(load(url, cycled(bodies, args.concurrency), args.concurrency))  # warm-up
        before = httpx.get(f"{url}/health").json()["served"]
        results, seconds = asyncio.run(load(url, cycled(bodies, args.requests), args.concurrency))
        after = httpx.get(f"{url}/health").json()["served"]
    if failed(results):
        raise SystemExit(f"{len(failed(results))} requests failed: {failed(results)[:5]}")
    latencies = answered(results)
    calls = after["model_calls"] - before["model_calls"]
    return {
        "p50": statistics.median(latencies) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
        "rps": len(latencies) / seconds,
        "batch": (after["requests"] - before["requests"]) / max(calls, 1),
    }


def bench_large(
    args: argparse.Namespace, app_options: dict[str, Any], bodies: list[dict[str, str]], large: dict[str, Any]
) -> dict[str, float]:
    """Small requests alone, then with ``args.large`` copies of ``large`` spread among them."""
    mixed = cycled(bodies, args.requests)
    for i in range(args.large):
        mixed.insert(i * len(mixed) // args.large, large)
    with server(args, app_options) as (url, pid):
        asyncio.run(load(url, [*cycled(bodies, args.concurrency), large], args.concurrency))  # warm-up
        rss_before = rss_mib(pid)
        alone = answered(asyncio.run(load(url, cycled(bodies, args.requests), args.concurrency))[0])
        results, _ = asyncio.run(load(url, mixed, args.concurrency))
        rss_after = rss_mib(pid)
    small = answered([r for body, r in zip(mixed, results) if body is not large])
    large_latencies = answered([r for body, r in zip(mixed, results) if body is large])
    return {
        "alone p50": statistics.median(alone) * 1000,
        "alone p95": percentile(alone, 0.95) * 1000,
        "p50": statistics.median(small) * 1000,
        "p95": percentile(small, 0.95) * 1000,
        "large p50": statistics.median(large_latencies) * 1000,
        "failed": len(failed(results)),
        "rss before": rss_before,
        "rss after": rss_after,
    }


def largest_request(checkpoint: str, bodies: list[dict[str, str]]) -> dict[str, Any]:
    """The longest input with beam 16 and the longest output ``MAX_WORK`` allows it."""
    from s2s.predict import Summarizer
    from s2s.serve_requests import source_tokens

    summarizer = Summarizer.load(checkpoint, "cpu")
    lengths = [len(source_tokens(summarizer, {"Question": b["question"], "Dialogue": b["dialogue"]})) for b in bodies]
    longest = max(range(len(bodies)), key=lengths.__getitem__)
    steps = min(MAX_WORK // (lengths[longest] * 16), 500)
    return {**bodies[longest], "search": "beam", "beam_size": 16, "max_length": steps, "min_length": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument(
        "--inputs",
        default=str(ROOT / "data" / "automaster_sample_dev.csv"),
        help="AutoMaster CSV whose Question and Dialogue are sent (default: the dev sample)",
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads of the server (default: torch's choice, one per core)"
    )
    parser.add_argument("--large", type=int, default=8, help="large requests mixed in (second table)")
    args = parser.parse_args()

    rows = read_examples(args.inputs, reader_options("automaster"), need_target=False)
    bodies = [{"question": e.raw["Question"], "dialogue": e.raw["Dialogue"]} for e in rows]
    threads = args.threads or torch.get_num_threads()
    print(
        f"{args.requests} requests, {args.concurrency} concurrent, {len(bodies)} distinct inputs; "
        f"{os.cpu_count()} CPU cores ({platform.machine()}), server torch threads {threads}, device {args.device}"
    )
    print("\n| mode | p50 ms | p95 ms | requests/s | requests per model call |\n|---|---:|---:|---:|---:|")
    for name, options in MODES.items():
        r = bench(args, options, bodies)
        print(f"| {name} | {r['p50']:.0f} | {r['p95']:.0f} | {r['rps']:.1f} | {r['batch']:.1f} |", flush=True)

    large = largest_request(args.checkpoint, bodies)
    print(
        f"\nSmall requests alone, then with {args.large} large ones among them (the longest input, beam 16, "
        f"max_length = min_length = {large['max_length']}: the {MAX_WORK:,} work budget)"
    )
    print(
        "\n| server | alone p50 ms | alone p95 ms | with large p50 ms | with large p95 ms | large p50 ms | failed "
        "| RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|---|"
    )
    for name, options in LANES.items():
        r = bench_large(args, options, bodies, large)
        print(
            f"| {name} | {r['alone p50']:.0f} | {r['alone p95']:.0f} | {r['p50']:.0f} | {r['p95']:.0f} "
            f"| {r['large p50']:.0f} | {r['failed']} | {r['rss before']:.0f} → {r['rss after']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
