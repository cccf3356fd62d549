"""Plain-ASGI guards in front of the ``s2s serve`` app: only requests whose Host header names the
server are answered (DNS rebinding), and a failure of the server's own is a 500 that says
"internal error" and no more (the traceback goes to the log), answered without closing the
connection."""

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

log = logging.getLogger("s2s.serve")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")  # bind addresses that listen on every interface

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


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
                await _send_json(
                    send,
                    400,
                    {
                        "error": f"Host {host!r} is not a name this server answers to "
                        "(start it with --allow-host NAME to add one)"
                    },
                )
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


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host names a server bound to ``host`` answers to: every loopback name for a loopback
    or wildcard address (0.0.0.0, ::), else ``host`` itself; and ``extra``."""
    return [*(LOOPBACK if host in LOOPBACK or host in WILDCARDS else (host,)), *extra]
