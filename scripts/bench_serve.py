"""Load test of `s2s serve` on loopback: latency and throughput with and without request batching.

    python scripts/bench_serve.py --checkpoint runs/quickstart/best.pt [--requests 200] [--concurrency 16]

For each mode a real uvicorn server runs the same checkpoint in a child process on 127.0.0.1;
``--concurrency`` clients send ``--requests`` POST /summarize requests (the rows of
``--inputs``, cycled) after a short warm-up. Prints a Markdown table: p50/p95 latency, requests/s
and the mean number of requests answered by one model call.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import sys
import time
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


async def load(url: str, bodies: list[dict[str, str]], n_requests: int, concurrency: int) -> tuple[list[float], float]:
    """Send ``n_requests`` bodies (cycled) from ``concurrency`` clients: (latencies in s, wall time in s)."""
    latencies: list[float] = []
    queue = iter(range(n_requests))

    async def client(http: httpx.AsyncClient) -> None:
        for i in queue:
            start = time.perf_counter()
            response = await http.post(f"{url}/summarize", json=bodies[i % len(bodies)])
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return latencies, time.perf_counter() - start


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


def bench(args: argparse.Namespace, app_options: dict[str, Any], bodies: list[dict[str, str]]) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = multiprocessing.get_context("spawn").Process(
        target=run_server, args=(args.checkpoint, port, args.device, args.threads, app_options), daemon=True
    )
    server.start()
    try:
        wait_until_up(url, server)
        asyncio.run(load(url, bodies, args.concurrency, args.concurrency))  # warm-up
        before = httpx.get(f"{url}/health").json()["served"]
        latencies, seconds = asyncio.run(load(url, bodies, args.requests, args.concurrency))
        after = httpx.get(f"{url}/health").json()["served"]
    finally:
        os.kill(server.pid, signal.SIGINT)  # uvicorn shuts down cleanly
        server.join(30)
    latencies.sort()
    calls = after["model_calls"] - before["model_calls"]
    return {
        "p50": statistics.median(latencies) * 1000,
        "p95": latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)] * 1000,
        "rps": len(latencies) / seconds,
        "batch": (after["requests"] - before["requests"]) / max(calls, 1),
    }


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
    args = parser.parse_args()

    rows = read_examples(args.inputs, reader_options("automaster"), need_target=False)
    bodies = [{"question": e.raw["Question"], "dialogue": e.raw["Dialogue"]} for e in rows]
    print(
        f"{args.requests} requests, {args.concurrency} concurrent, {len(bodies)} distinct inputs; "
        f"{os.cpu_count()} CPU cores ({platform.machine()}), "
        f"server torch threads {args.threads or torch.get_num_threads()}, "
        f"device {args.device}"
    )
    print("\n| mode | p50 ms | p95 ms | requests/s | requests per model call |\n|---|---:|---:|---:|---:|")
    for name, options in MODES.items():
        r = bench(args, options, bodies)
        print(f"| {name} | {r['p50']:.0f} | {r['p95']:.0f} | {r['rps']:.1f} | {r['batch']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
