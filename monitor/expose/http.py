"""The HTTP endpoint: /metrics, /metrics/availability, /healthz, the JSON API
(/api/v1/sites[/{id}], api.py), the alert runbooks (/runbooks, /runbooks/{alertname},
runbooks.py), the status page (status.html, with the API it reads: summary, communes,
timelines) and the monthly report (/report).

It runs in its own thread (prometheus-client's collectors are synchronous), so it only reads
the in-memory snapshot and never awaits anything of the event loop.

/metrics is the daemon's own instruments rendered by prometheus-client, the device values and
the groups' availability (which render themselves, textformat.py) and the per-site families
from monitor/expose/exposition.py; /metrics/availability is each site's availability, which
changes once a minute (availability_metrics.py). Both are in the text format 0.0.4 (Prometheus
takes it whatever it asked for), gzip-compressed at ISA-L's level 1 when the client accepts
it: a province's body compresses 10:1 at that level, where zlib's level 9 costs many times the
CPU for a body a third smaller. The parts that did not change since the last scrape are not
compressed again (gzipparts.py).

An open port meets more than Prometheus. At most `http.max_connections` connections are served
at once, each in a thread of its own; one more is closed at once (counted as `busy`), so 200
idle clients cost neither 200 threads nor the memory they leave behind. Every read and write
of a connection waits at most `http.timeout_seconds` (the TLS handshake included), so an idle
or slow client frees its place by then. With `http.web_config_file` (webconfig.py) the port
speaks TLS and asks for basic authentication as a Prometheus exporter does: bcrypt is checked
once per (user, password) and the answer kept (a bcrypt check costs tens of milliseconds,
scrapes come every few seconds); a wrong or unknown user costs the same check as a right one.
Refusals are counted by reason in `districtmon_http_refused_total` (busy, timeout, tls,
unauthorized); none writes a traceback.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import ssl
import threading
import typing
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

import bcrypt
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, gzip_accepted
from prometheus_client.registry import Collector

from monitor.config.settings import HttpSettings
from monitor.config.webconfig import WebConfig, server_context
from monitor.core.ratelimit import RateLimitedLog
from monitor.expose.api import health_report, site_report, sites_report, summary_report
from monitor.expose.availability_metrics import AVAILABILITY_PATH
from monitor.expose.commune import WindowTallies, commune_report
from monitor.expose.exposition import SiteExposition
from monitor.expose.gzipparts import PartsGzip
from monitor.expose.keptbody import KeptBody
from monitor.expose.runbooks import Runbooks, load_packaged
from monitor.expose.textformat import MetricsRegistry, exposition_parts
from monitor.expose.timeline import WINDOWS, site_timeline
from monitor.probes.mqtt.counts import MqttCounts
from monitor.state.live import LiveState

log = logging.getLogger(__name__)
REFUSALS = ("busy", "timeout", "tls", "unauthorized")
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
# compared against when the user is unknown, so that it costs what a known one costs
_DUMMY_HASH = b"$2b$10$" + b"." * 53
_KEPT_LOGINS = 64

API_SITES = "/api/v1/sites"
API_SUMMARY = "/api/v1/summary"  # what the status page draws
API_COMMUNES = "/api/v1/communes"  # API_COMMUNES/{id}?window=1d|7d|30d: a commune's page
REPORT = "/report"  # ?month=YYYY-MM: the monthly report, as `districtmon report --format html`
TIMELINE = "/timeline"  # API_SITES/{id}/timeline?window=1d|7d|30d: from the ledger
RUNBOOKS = "/runbooks"
STATUS = "/status"  # also "/" for a browser (one that accepts text/html)
GZIP_LEVEL = 1

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
#: Renders the monthly report of "YYYY-MM" ("" for the month so far) as one HTML page; raises
#: ValueError for a month it cannot make. Given by the runtime: the report is not this layer's.
MonthlyReport = Callable[[str], str]


class _Quiet(ServerHandler):
    """A client that went away or stalled is its own business: no traceback on stderr."""

    def log_exception(self, exc_info: Any) -> None:
        if isinstance(exc_info[1], OSError):  # timeouts, resets, TLS errors
            return
        _errors.log(logging.ERROR, "app", "error answering a request", exc_info=exc_info)


_errors = RateLimitedLog(log, period=60.0, burst=3)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the journal."""

    def handle(self) -> None:
        """wsgiref's own, with the quiet ServerHandler."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        # wsgiref's handler writes to a buffered socket file, typed more narrowly than it is
        wfile = typing.cast(typing.IO[bytes], self.wfile)
        handler = _Quiet(self.rfile, wfile, self.get_stderr(), self.get_environ())
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]


class _BoundedServer(WSGIServer):
    """A thread per connection, at most `max_connections` of them; IPv6 literals bind too
    (wsgiref's server is IPv4-only by default). Set `limits` before serving."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 makes a burst of clients wait for SYN retries
    max_connections = 32
    timeout_seconds = 10.0
    tls: ssl.SSLContext | None = None

    def __init__(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, *args, **kwargs)
        self.refused = dict.fromkeys(REFUSALS, 0)
        self._slots: threading.BoundedSemaphore | None = None

    def limits(self, settings: HttpSettings, tls: ssl.SSLContext | None) -> None:
        self.max_connections = settings.max_connections
        self.timeout_seconds = settings.timeout_seconds
        self.tls = tls
        self._slots = threading.BoundedSemaphore(settings.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._slots is None:
            self._slots = threading.BoundedSemaphore(self.max_connections)
        if not self._slots.acquire(blocking=False):
            self.refused["busy"] += 1
            with contextlib.suppress(OSError):
                request.setblocking(False)
                if self.tls is None:
                    request.send(_BUSY)
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve, args=(request, client_address), name="districtmon-http-conn"
        )
        thread.daemon = True
        thread.start()

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        assert self._slots is not None
        conn: socket.socket = request
        try:
            request.settimeout(self.timeout_seconds)
            if self.tls is not None:
                conn = self.tls.wrap_socket(
                    request, server_side=True, do_handshake_on_connect=False
                )
                try:
                    conn.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    self.refused["timeout" if isinstance(exc, TimeoutError) else "tls"] += 1
                    return
            self.finish_request(conn, client_address)
        except TimeoutError:
            self.refused["timeout"] += 1
        except OSError:
            pass  # the client went away
        except Exception:
            _errors.log(logging.ERROR, "conn", "error serving a connection", exc_info=True)
        finally:
            self.shutdown_request(conn)
            self._slots.release()


class HttpRefusals(Collector):
    """`districtmon_http_refused_total{reason}`."""

    def __init__(self, refused: dict[str, int]) -> None:
        self._refused = refused

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "districtmon_http_refused",
            "HTTP connections or requests refused: busy (http.max_connections were served), "
            "timeout (http.timeout_seconds), tls (a failed handshake), unauthorized.",
            labels=["reason"],
        )
        for reason, count in list(self._refused.items()):
            family.add_metric([reason], float(count))
        yield family


class _Logins:
    """Basic authentication against bcrypt hashes; logins that passed are kept (as a digest,
    not the password), at most _KEPT_LOGINS of them."""

    def __init__(self, web: WebConfig) -> None:
        self._users = {user: secret.reveal().encode() for user, secret in web.users.items()}
        self._passed: dict[bytes, None] = {}
        self._lock = threading.Lock()

    def check(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = (
                base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        hashed = self._users.get(user)
        digest = hashlib.sha256(f"{user}\0{password}\0".encode() + (hashed or b"")).digest()
        with self._lock:
            if hashed is not None and any(hmac.compare_digest(digest, k) for k in self._passed):
                return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH)
        except ValueError:  # a password bcrypt does not take (over 72 bytes)
            ok = False
        if not ok or hashed is None:
            return False
        with self._lock:
            if len(self._passed) >= _KEPT_LOGINS:
                self._passed.clear()
            self._passed[digest] = None
        return True


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        live: LiveState,
        stall_seconds: float = 10.0,
        runbooks: Runbooks | None = None,
        *,
        settings: HttpSettings | None = None,
        ledger: Path | None = None,
        mqtt: MqttCounts | None = None,
        report: MonthlyReport | None = None,
        availability: CollectorRegistry | None = None,
    ) -> None:
        """`availability`: what AVAILABILITY_PATH serves (each site's availability, which
        changes once a minute), apart from /metrics; without it that path is not served."""
        self._registry = registry
        self._availability = KeptBody(availability, GZIP_LEVEL) if availability else None
        self._runbooks = runbooks if runbooks is not None else load_packaged()
        self._status_page = _packaged_page()
        self._ledger = ledger  # a site's timeline (read-only, beside the writer)
        self._tallies = WindowTallies(ledger) if ledger is not None else None  # communes'
        self._mqtt = mqtt  # the broker as the status page's health panel shows it
        self._report = report
        self._sites = SiteExposition(live)
        self._gzip = PartsGzip(GZIP_LEVEL)
        self._live = live
        self._stall_seconds = stall_seconds
        settings = settings or HttpSettings(host, port)
        self._page_off = not settings.status_page
        web = settings.web
        self._logins = _Logins(web) if web is not None and web.users else None
        self._headers = list(web.headers) if web is not None else []
        tls = server_context(web.tls) if web is not None and web.tls is not None else None
        server = make_server(
            host, port, self._app, server_class=_BoundedServer, handler_class=_QuietHandler
        )
        assert isinstance(server, _BoundedServer)
        server.limits(settings, tls)
        self._server = server
        self.refused = server.refused
        registry.register(HttpRefusals(server.refused))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="districtmon-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        # The first rendering of an inventory builds the kept text (seconds for 20,000 sites):
        # done now, so that Prometheus' first scrape does not wait for it.
        threading.Thread(
            target=self._warm_up, name="districtmon-metrics-warmup", daemon=True
        ).start()

    def _warm_up(self) -> None:
        exposition_parts(self._registry)
        if self._availability is not None:
            self._availability.gzip()
        self._sites.render()

    def update_text(self) -> int:
        """Make the text of the sites polled since the last call (per-site gauges, device
        values), between scrapes: the daemon calls this every second; how many sites' device
        values were made."""
        self._sites.update()
        made = self._registry.update() if isinstance(self._registry, MetricsRegistry) else 0
        self._gzip.forget_replaced()  # the texts that making replaced
        return made

    def use_web(self, web: WebConfig | None) -> None:
        """A reload: the web config's certificates (read again: a renewed certificate under
        the same name is taken), users and headers apply to the connections that follow; the
        port and the limits stay until a restart. A certificate that cannot be loaded keeps
        the running one."""
        try:
            tls = server_context(web.tls) if web is not None and web.tls is not None else None
        except (ssl.SSLError, OSError, ValueError) as exc:
            log.error("http: new certificate not loaded (%s); keeping the running one", exc)
            return
        self._server.tls = tls
        self._logins = _Logins(web) if web is not None and web.users else None
        self._headers = list(web.headers) if web is not None else []

    def use_status_page(self, on: bool) -> None:
        """A reload: `http.status_page` turns the page and its API on or off at once."""
        self._page_off = not on

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self._headers:
            plain = start_response

            def start_response(status: str, headers: list[Any], *rest: Any) -> Any:
                return plain(status, [*headers, *self._headers], *rest)

        if self._logins is not None and not self._logins.check(
            environ.get("HTTP_AUTHORIZATION", "")
        ):
            self.refused["unauthorized"] += 1
            data = b"Unauthorized\n"
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", 'Basic realm="districtmon"'),
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(data))),
                ],
            )
            return [data]
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed", {"error": "only GET"})
        if self._page_off and _of_the_page(path):
            error = f"the status page is off (http.status_page: false): no {path}"
            return _json(start_response, "404 Not Found", {"error": error})
        if path == "/metrics":
            parts = exposition_parts(self._registry) + self._sites.render_parts()
            return self._metrics(parts, self._gzip, environ, start_response)
        if path == AVAILABILITY_PATH and self._availability is not None:
            return self._kept_metrics(self._availability, environ, start_response)
        if path == "/healthz":
            ok, body = health_report(self._live, self._stall_seconds)
            return _json(start_response, "200 OK" if ok else "503 Service Unavailable", body)
        if path == API_SUMMARY:
            body = summary_report(self._live, stall_seconds=self._stall_seconds, mqtt=self._mqtt)
            return _json(start_response, "200 OK", body)
        if path.startswith(API_COMMUNES + "/"):
            commune = urllib.parse.unquote(path.removeprefix(API_COMMUNES + "/"))
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            return self._commune(commune, query.get("window", ["1d"])[0], start_response)
        if path == REPORT:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            return self._monthly(query.get("month", [""])[0], start_response)
        if path == API_SITES:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            return _json(start_response, "200 OK", sites_report(self._live, query))
        if path.startswith(API_SITES + "/") and path.endswith(TIMELINE):
            site_id = urllib.parse.unquote(path.removeprefix(API_SITES + "/")[: -len(TIMELINE)])
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            return self._timeline(site_id, query.get("window", ["1d"])[0], start_response)
        if path.startswith(API_SITES + "/"):
            site_id = urllib.parse.unquote(path.removeprefix(API_SITES + "/"))
            found = site_report(self._live, site_id)
            if found is None:
                return _json(start_response, "404 Not Found", {"error": f"no such site: {site_id}"})
            return _json(start_response, "200 OK", found)
        if path == RUNBOOKS or path.startswith(RUNBOOKS + "/"):
            return self._runbook(path, start_response)
        if path == STATUS or (
            path == "/" and not self._page_off and "text/html" in environ.get("HTTP_ACCEPT", "")
        ):
            return self._status(start_response)
        if path == "/":
            endpoints = ["/metrics"]
            if self._availability is not None:
                endpoints.append(AVAILABILITY_PATH)
            endpoints += ["/healthz", API_SITES, API_SITES + "/{id}"]
            if not self._page_off:
                endpoints += [
                    API_SUMMARY,
                    API_SITES + "/{id}" + TIMELINE + "?window=1d|7d|30d",
                    API_COMMUNES + "/{id}?window=1d|7d|30d",
                    REPORT + "?month=YYYY-MM",
                ]
            endpoints.append(RUNBOOKS)
            endpoints.append(RUNBOOKS + "/{alertname}")
            if not self._page_off:
                endpoints.append(STATUS)
            return _json(start_response, "200 OK", {"endpoints": endpoints})
        return _json(start_response, "404 Not Found", {"error": f"no such path: {path}"})

    def _timeline(self, site_id: str, window: str, start_response: StartResponse) -> list[bytes]:
        if site_id not in self._live.sites:
            return _json(start_response, "404 Not Found", {"error": f"no such site: {site_id}"})
        if window not in WINDOWS:
            return _bad_window(start_response)
        if self._ledger is None or not self._ledger.exists():
            return _json(start_response, "503 Service Unavailable", {"error": "no ledger yet"})
        try:
            body = site_timeline(self._ledger, site_id, window, self._live.timezone)
        except OSError as exc:
            return _unreadable(start_response, exc)
        return _json(start_response, "200 OK", body)

    def _commune(self, commune: str, window: str, start_response: StartResponse) -> list[bytes]:
        if window not in WINDOWS:
            return _bad_window(start_response)
        try:
            body = commune_report(self._live, commune, self._tallies, window)
        except OSError as exc:
            return _unreadable(start_response, exc)
        if body is None:
            return _json(start_response, "404 Not Found", {"error": f"no such commune: {commune}"})
        return _json(start_response, "200 OK", body)

    def _monthly(self, month: str, start_response: StartResponse) -> list[bytes]:
        """The monthly report, made from the ledger at each request (a month of a district
        is read in well under a second; the page is for the office, not for every refresh)."""
        if self._report is None:
            error = "no monthly report here: the daemon was started without its ledger"
            return _json(start_response, "503 Service Unavailable", {"error": error})
        try:
            page = self._report(month).encode()
        except ValueError as exc:
            return _json(start_response, "400 Bad Request", {"error": str(exc)})
        except OSError as exc:
            return _unreadable(start_response, exc)
        return _html(start_response, page)

    def _status(self, start_response: StartResponse) -> list[bytes]:
        """The status page: one file of the package, which reads API_SUMMARY and the
        timelines from this same listener (so the same TLS and logins guard them)."""
        if self._status_page is None:
            return _json(
                start_response,
                "503 Service Unavailable",
                {"error": "status page not installed: monitor/expose/status.html is missing"},
            )
        return _html(start_response, self._status_page, ("Cache-Control", "no-cache"))

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
            return _html(start_response, self._runbooks.html().encode())
        section = self._runbooks.find(name)
        if section is None:
            return _json(start_response, "404 Not Found", {"error": f"no runbook for {name}"})
        start_response(
            "302 Found",
            [("Location", f"{RUNBOOKS}#{section.anchor}"), ("Content-Length", "0")],
        )
        return [b""]

    def _metrics(
        self,
        parts: list[bytes],
        packer: PartsGzip,
        environ: Environ,
        start_response: StartResponse,
    ) -> list[bytes]:
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            return _metrics_body(start_response, packer.compress(parts), gzipped=True)
        return _metrics_body(start_response, b"".join(parts), gzipped=False)

    def _kept_metrics(
        self, kept: KeptBody, environ: Environ, start_response: StartResponse
    ) -> list[bytes]:
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            return _metrics_body(start_response, kept.gzip(), gzipped=True)
        return _metrics_body(start_response, kept.plain(), gzipped=False)


def _metrics_body(start_response: StartResponse, body: bytes, gzipped: bool) -> list[bytes]:
    headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
    if gzipped:
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


def _html(start_response: StartResponse, page: bytes, *headers: tuple[str, str]) -> list[bytes]:
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(page))),
            *headers,
        ],
    )
    return [page]


def _bad_window(start_response: StartResponse) -> list[bytes]:
    error = f"window must be one of {', '.join(WINDOWS)}"
    return _json(start_response, "400 Bad Request", {"error": error})


def _unreadable(start_response: StartResponse, exc: OSError) -> list[bytes]:
    """The ledger's own trouble is /healthz's to report: a page says it and nothing crashes."""
    return _json(
        start_response, "503 Service Unavailable", {"error": f"cannot read the ledger: {exc}"}
    )


def _of_the_page(path: str) -> bool:
    """What `http.status_page: false` turns off: the page, and what only the page reads."""
    return (
        path in (STATUS, API_SUMMARY, REPORT)
        or path.endswith(TIMELINE)
        or path.startswith(API_COMMUNES + "/")
    )


def _packaged_page() -> bytes | None:
    """The status page installed with the package; None when the file is missing (a broken
    install: the daemon still monitors, /status says what is missing)."""
    try:
        return resources.files("monitor.expose").joinpath("status.html").read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
