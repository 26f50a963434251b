"""The HTTP endpoint: /metrics, /healthz, the JSON API (/api/v1/sites[/{id}], api.py) and the
alert runbooks (/runbooks, /runbooks/{alertname}, runbooks.py).

It runs in its own thread (prometheus-client's collectors are synchronous), so it only reads
the in-memory snapshot and never awaits anything of the event loop.

/metrics is the daemon's own instruments rendered by prometheus-client followed by the
per-site families from monitor/expose/exposition.py, in the text format 0.0.4 (Prometheus takes it
whatever it asked for), gzip-compressed at level 1 when the client accepts it: the body of a
province (35 MB for 20,000 sites) compresses 11:1 at that level in 75 ms, where level 9 takes
half a second for a body 35% smaller.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    ThreadingWSGIServer,
    gzip_accepted,
)

from monitor.expose.api import health_report, site_report, sites_report
from monitor.expose.exposition import SiteExposition
from monitor.expose.runbooks import Runbooks, load_packaged
from monitor.state.live import LiveState

API_SITES = "/api/v1/sites"
RUNBOOKS = "/runbooks"
GZIP_LEVEL = 1

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


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        live: LiveState,
        stall_seconds: float = 10.0,
        runbooks: Runbooks | None = None,
    ) -> None:
        self._registry = registry
        self._runbooks = runbooks if runbooks is not None else load_packaged()
        self._sites = SiteExposition(live)
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
        # The first rendering of an inventory builds the text cache (1.5 s for 20,000 sites):
        # done now, so that Prometheus' first scrape does not wait for it.
        threading.Thread(
            target=self._sites.render, name="districtmon-metrics-warmup", daemon=True
        ).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed", {"error": "only GET"})
        if path == "/metrics":
            return self._metrics(environ, start_response)
        if path == "/healthz":
            ok, body = health_report(self._live, self._stall_seconds)
            return _json(start_response, "200 OK" if ok else "503 Service Unavailable", body)
        if path == API_SITES:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            return _json(start_response, "200 OK", sites_report(self._live, query))
        if path.startswith(API_SITES + "/"):
            site_id = urllib.parse.unquote(path.removeprefix(API_SITES + "/"))
            found = site_report(self._live, site_id)
            if found is None:
                return _json(start_response, "404 Not Found", {"error": f"no such site: {site_id}"})
            return _json(start_response, "200 OK", found)
        if path == RUNBOOKS or path.startswith(RUNBOOKS + "/"):
            return self._runbook(path, start_response)
        if path == "/":
            endpoints = ["/metrics", "/healthz", API_SITES, API_SITES + "/{id}", RUNBOOKS]
            endpoints.append(RUNBOOKS + "/{alertname}")
            return _json(start_response, "200 OK", {"endpoints": endpoints})
        return _json(start_response, "404 Not Found", {"error": f"no such path: {path}"})

    def _runbook(self, path: str, start_response: StartResponse) -> list[bytes]:
        """The runbooks page, or a redirect from an alert's link to its section there."""
        if self._runbooks is None:
            return _json(
                start_response,
                "503 Service Unavailable",
                {"error": "runbooks not installed: monitor/expose/runbooks.md is missing"},
            )
        name = urllib.parse.unquote(path.removeprefix(RUNBOOKS).strip("/"))
        if not name:
            body = self._runbooks.html().encode()
            start_response(
                "200 OK",
                [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        section = self._runbooks.find(name)
        if section is None:
            return _json(start_response, "404 Not Found", {"error": f"no runbook for {name}"})
        start_response(
            "302 Found",
            [("Location", f"{RUNBOOKS}#{section.anchor}"), ("Content-Length", "0")],
        )
        return [b""]

    def _metrics(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        body = generate_latest(self._registry) + self._sites.render()
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]


def _json(start_response: StartResponse, status: str, body: object) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode()
    start_response(
        status,
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]
