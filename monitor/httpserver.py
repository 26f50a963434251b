"""The HTTP endpoint: /metrics (prometheus-client's WSGI app) and /healthz.

It runs in its own thread (prometheus-client's collectors are synchronous), so it only reads
the in-memory snapshot and never awaits anything of the event loop.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from monitor.livestate import LiveState

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the journal."""


class _DualStackServer(ThreadingWSGIServer):
    """Binds IPv6 literals too (wsgiref's server is IPv4-only by default)."""

    def __init__(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, *args, **kwargs)


def health_report(live: LiveState, stall_seconds: float) -> tuple[bool, dict[str, object]]:
    """The daemon is healthy while its event loop ticks and its ledger commits."""
    now = time.monotonic()
    health = live.health
    loop_age = now - health.loop_tick
    ledger_age = now - health.ledger_commit
    problems = []
    if loop_age > stall_seconds:
        problems.append(f"event loop has not ticked for {loop_age:.1f} s")
    if ledger_age > stall_seconds * 4:
        problems.append(f"ledger has not committed for {ledger_age:.1f} s")
    body: dict[str, object] = {
        "status": "ok" if not problems else "unhealthy",
        "problems": problems,
        "sites": len(live.sites),
        "started": health.started,
    }
    return not problems, body


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        live: LiveState,
        stall_seconds: float = 10.0,
    ) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._live = live
        self._stall_seconds = stall_seconds
        self._server: WSGIServer = make_server(
            host, port, self._app, server_class=_DualStackServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="districtmon-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            result: Iterable[bytes] = self._metrics_app(environ, start_response)
            return result
        if path == "/healthz":
            ok, body = health_report(self._live, self._stall_seconds)
            return _json(start_response, "200 OK" if ok else "503 Service Unavailable", body)
        if path == "/":
            return _json(start_response, "200 OK", {"endpoints": ["/metrics", "/healthz"]})
        return _json(start_response, "404 Not Found", {"error": f"no such path: {path}"})


def _json(start_response: StartResponse, status: str, body: object) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode()
    start_response(
        status,
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]
