"""`s2s serve` on a real uvicorn server on loopback: bad requests leave the connection usable,
bodies over the limit are refused before they are read, and a load test of 200 requests with bad
ones mixed in (lone surrogates, huge bodies, maximal requests, wrong types) that keeps the server
fast and its memory flat."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 's2s-summarizer[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 's2s-summarizer[serve]'")
httpx = pytest.importorskip("httpx", reason="httpx is not installed: pip install 's2s-summarizer[dev]'")

from s2s.predict import Summarizer  # noqa: E402
from s2s.serve import create_app  # noqa: E402

TEXTS = [
    "刹车异响",
    "发动机抖动怎么办",
    "空调不制冷，加了氟还是不行",
    "车主说：变速箱顿挫|技师说：换油",
    "轮胎鼓包还能开吗",
    "方向盘跑偏",
    "机油灯亮了",
    "技师说：你好|车主说：电瓶没电了打不着火",
]
JSON = {"Content-Type": "application/json"}


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` by uvicorn on a free loopback port in a thread: its URL; stopped afterwards."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def connect(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=20)


def exchange(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, dict]:
    """POST /summarize on a kept-alive connection: (status, JSON answer)."""
    conn.request("POST", "/summarize", body=body, headers=JSON)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def summarizer(pointer_generator: Path) -> Summarizer:
    return Summarizer.load(pointer_generator, "cpu")


def test_bad_requests_leave_the_connection_usable(summarizer: Summarizer, monkeypatch) -> None:
    good = json.dumps({"text": "刹车异响"}).encode()
    decode, calls = summarizer.decode, iter([RuntimeError("boom"), None])

    def fail_once(*args):
        error = next(calls)
        if error:
            raise error
        return decode(*args)

    with serving(create_app(summarizer)) as url:
        conn = connect(url)
        status, answer = exchange(conn, b'{"text": "\\ud800 lone"}')
        assert status == 400 and "lone surrogate" in answer["error"]
        assert exchange(conn, good)[0] == 200  # the same connection: not reset
        monkeypatch.setattr(summarizer, "decode", fail_once)
        assert exchange(conn, good) == (500, {"error": "internal error (the server's log has the details)"})
        assert exchange(conn, good)[0] == 200
        conn.close()


def test_bodies_over_the_limit_are_refused_before_they_are_read(summarizer: Summarizer) -> None:
    """The client sends only the start of a body: the answer must not wait for the rest."""
    with serving(create_app(summarizer, max_body_bytes=64 * 1024)) as url:
        conn = connect(url)
        conn.putrequest("POST", "/summarize")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(100 * 2**20))  # 100 MB announced, 1 KB sent
        conn.endheaders(b'{"text": "' + b"x" * 1024)
        response = conn.getresponse()
        assert response.status == 413 and "got 104,857,600" in json.loads(response.read())["error"]
        conn.close()

        conn = connect(url)
        conn.putrequest("POST", "/summarize")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")  # no length: the server counts
        conn.endheaders()
        chunk = b" " * 40 * 1024
        for _ in range(2):  # 80 KB of an endless body
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = conn.getresponse()
        assert response.status == 413 and "at most 65,536 bytes" in json.loads(response.read())["error"]
        conn.close()


# --------------------------------------------------------------------------------------------
# The load test: a server in a child process, so that its memory is its own
# --------------------------------------------------------------------------------------------

SERVER = """
import json, socket, sys
import uvicorn
from s2s.predict import Summarizer
from s2s.serve import create_app
checkpoint, fd, options = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
app = create_app(Summarizer.load(checkpoint, "cpu"), **options)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[socket.socket(fileno=fd)])
"""
# small limits, so that a maximal request (the tiny model reads 120 source tokens at most) takes
# many times as long as a small one: 120 x beam 16 x 200 output tokens = 384,000
LIMITS = {"max_chars": 2000, "max_body_bytes": 64 * 1024, "max_work": 384_000, "large_work": 20_000}
MAXIMAL = {"text": "，".join(TEXTS * 8), "search": "beam", "beam_size": 16, "max_length": 200, "min_length": 200}
HUGE = b'{"text": "' + b"x" * (20 * 2**20) + b'"}'  # 20 MB
# kind -> (request, expected status)
BAD = {
    "lone surrogate": ({"content": b'{"text": "\\ud800\\udc00 ok, \\udbff not"}'}, 400),
    "huge body": ({"content": HUGE}, 413),
    "huge body, chunked": ({"content": "chunks"}, 413),
    "maximal": ({"json": MAXIMAL}, 200),
    "over the work budget": ({"json": {**MAXIMAL, "max_length": 201}}, 413),
    "text too long": ({"json": {"text": "长" * 2001}}, 413),
    "wrong type": ({"json": {"text": ["刹车异响"]}}, 422),
    "wrong option type": ({"json": {"text": "刹车异响", "beam_size": "16"}}, 422),
    "not an object": ({"json": "刹车异响"}, 422),
    "malformed JSON": ({"content": '{"text": "刹车'.encode()}, 400),
    "nested too deeply": ({"content": b"[" * 20_000 + b"]" * 20_000}, 400),
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@contextlib.contextmanager
def server_process(checkpoint: Path, **options: Any) -> Iterator[tuple[str, subprocess.Popen]]:
    """``create_app(**options)`` served by uvicorn in a child process on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(checkpoint), str(sock.fileno()), json.dumps(options)],
        pass_fds=[sock.fileno()],
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert child.poll() is None and time.monotonic() < deadline, "the server did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url, child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        sock.close()


async def _chunks():
    for _ in range(20 * 16):  # 20 MB
        yield b" " * 65536


async def send_all(url: str, requests: list[tuple[str, dict, int]], concurrency: int) -> list[tuple[str, Any, float]]:
    """Send ``requests`` (kind, httpx arguments, expected status) from ``concurrency`` clients:
    (kind, status or the transport error, seconds) each."""
    results, queue = [], iter(requests)

    async def client(http: httpx.AsyncClient) -> None:
        for kind, args, _ in queue:
            if args.get("content") == "chunks":
                args = {"content": _chunks()}
            start = time.perf_counter()
            try:
                response = await http.post(f"{url}/summarize", headers=JSON, **args)
                outcome = response.status_code
            except httpx.TransportError as err:  # a reset, a refused or dropped connection
                outcome = err
            results.append((kind, outcome, time.perf_counter() - start))

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    return results


def p95(seconds: list[float]) -> float:
    seconds = sorted(seconds)
    return seconds[min(len(seconds) - 1, round(0.95 * len(seconds)) - 1)]


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the server's memory from /proc")
def test_load_with_bad_requests_mixed_in(pointer_generator: Path) -> None:
    rng = random.Random(0)
    bad = [(kind, request, status) for kind, (request, status) in BAD.items() for _ in range(7)]
    small = [("small", {"json": {"text": rng.choice(TEXTS)}}, 200) for _ in range(200 - len(bad))]
    mixed = small + bad
    rng.shuffle(mixed)
    with server_process(pointer_generator, **LIMITS) as (url, child):
        warm_up = [(kind, request, status) for kind, (request, status) in BAD.items()] + small[:32]
        asyncio.run(send_all(url, warm_up, 16))
        rss_start = rss_kib(child.pid)
        idle_before = asyncio.run(send_all(url, small[:96], 16))
        results = asyncio.run(send_all(url, mixed, 16))
        idle_after = asyncio.run(send_all(url, small[:96], 16))  # the machine's load may change meanwhile
        health = httpx.get(f"{url}/health", timeout=10)
        rss_end = rss_kib(child.pid)

    expected = {kind: status for kind, _, status in mixed}
    wrong = [(kind, outcome) for kind, outcome, _ in results if outcome != expected[kind]]
    assert not wrong, wrong  # no 5xx, no connection reset, each bad request its 4xx
    assert health.status_code == 200
    idle_p95 = (p95([s for _, _, s in idle_before]) + p95([s for _, _, s in idle_after])) / 2
    mixed_p95 = p95([s for kind, _, s in results if kind == "small"])
    maximal = sorted(s for kind, _, s in results if kind == "maximal")
    print(
        f"small p95 idle {idle_p95 * 1000:.0f} ms, with bad requests {mixed_p95 * 1000:.0f} ms; maximal median "
        f"{maximal[len(maximal) // 2] * 1000:.0f} ms; RSS {rss_start // 1024} -> {rss_end // 1024} MiB"
    )
    # Small requests do not queue behind the big ones (before the fix their p95 was the big ones'
    # time, 40x the idle p95). The figure, p95 within 2x of idle, is a speed claim that a
    # loaded CI machine cannot time fairly: scripts/bench_serve.py measures it.
    assert mixed_p95 < maximal[len(maximal) // 2] / 2
    assert rss_end <= 1.2 * rss_start
