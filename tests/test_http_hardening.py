"""The HTTP port as an attacker or a careless client meets it: idle connections by the
hundred, a request that never ends, no password or a wrong one; and as Prometheus meets it
over TLS with basic authentication, configured in the exporters' web configuration format."""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from broker import make_tls_files
from harness import Daemon, free_tcp_port, wait_for
from promstack import Prometheus
from test_config import edit, errors, load, write_config

from monitor.config.settings import HttpSettings
from monitor.core.model import Site, SnmpProbe
from monitor.expose.http import HttpServer
from monitor.expose.self_metrics import build_registry
from monitor.state.live import LiveState

PASSWORD = "scrape-Zq7-password"


def serve(timeout: float) -> HttpServer:
    sites = {"a": Site("a", "bts", "A", "c", "o", 0, 0, SnmpProbe("127.0.0.1"))}
    settings = HttpSettings("127.0.0.1", 0, max_connections=8, timeout_seconds=timeout)
    running = HttpServer("127.0.0.1", 0, build_registry()[0], LiveState(sites), settings=settings)
    running.start()
    return running


@pytest.fixture
def server() -> Iterator[HttpServer]:
    running = serve(timeout=1.0)
    yield running
    running.stop()


@pytest.fixture
def patient_server() -> Iterator[HttpServer]:
    """Time enough (5 s) for 200 connections to be opened on a busy machine first."""
    running = serve(timeout=5.0)
    yield running
    running.stop()


def get(url: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def test_two_hundred_idle_clients_hold_neither_threads_nor_the_port(
    patient_server: HttpServer,
) -> None:
    server = patient_server
    url = f"http://127.0.0.1:{server.port}"
    assert get(url + "/healthz")[0] == 200
    before = threading.active_count()
    idle = []
    try:
        for _ in range(200):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        deadline = time.monotonic() + 5
        while server.refused["busy"] < 192 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.refused["busy"] == 192  # the 9th and every later one, closed at once
        assert threading.active_count() <= before + 8
        # the 8 that were taken are dropped after the timeout (5 s), then the port serves
        for conn in idle[:8]:
            conn.settimeout(10)
            assert conn.recv(100) == b"", "closed by the server"
        deadline = time.monotonic() + 5
        while server.refused["timeout"] < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.refused["timeout"] == 8
    finally:
        for conn in idle:
            conn.close()
    assert get(url + "/healthz")[0] == 200
    assert threading.active_count() <= before + 1


def test_a_request_that_never_ends_is_dropped_after_the_timeout(server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        assert slow.recv(100) == b""
        assert time.monotonic() - started < 3
    assert server.refused["timeout"] == 1


def write_web_config(directory: Path) -> tuple[Path, Path]:
    """TLS with a private authority and one bcrypt user; (web.yml, the authority)."""
    ca, cert, key = make_tls_files(directory / "tls")
    # cost 4: a wrong password is checked at every scrape, and a loaded test machine must not
    # make that outlast Prometheus' scrape timeout (a deployment uses 10 or more)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    web = directory / "web.yml"
    web.write_text(
        f"""
tls_server_config:
  cert_file: tls/{cert.name}
  key_file: tls/{key.name}
basic_auth_users:
  prometheus: {hashed.replace("$2b$", "$2y$")}
http_server_config:
  headers: {{X-Content-Type-Options: nosniff}}
""",
        encoding="utf-8",
    )
    return web, ca


def write_daemon_config(root: Path, port: int) -> Path:
    (root / "inventory").mkdir(parents=True)
    web, _ca = write_web_config(root)
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{port}", web_config_file: {web.name}, timeout_seconds: 2}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: 0.5, timeout_seconds: 0.3, retries: 0}}
""",
        encoding="utf-8",
    )
    (root / "credentials.yaml").write_text("snmp: {}\n", encoding="utf-8")
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-xuong, name: Thanh Xương, lat: 21.346, lon: 103.03}}
owners:
  - {{id: district-it, name: Trung tâm Văn hóa - Thông tin huyện Điện Biên, kind: agency}}
sites:
  - {{id: web-self, kind: portal, name: 'Cổng', commune: thanh-xuong, owner: district-it,
      lat: 21.35, lon: 103.03, probe: {{tcp: {{address: 127.0.0.1, port: {port}}}}}}}
""",
        encoding="utf-8",
    )
    return root


def scrape_job(name: str, port: int, ca: Path, password: str) -> dict[str, object]:
    """A scrape job as written for any exporter with a web config: nothing districtmon's own."""
    return {
        "job_name": name,
        "scheme": "https",
        "tls_config": {"ca_file": str(ca)},
        "basic_auth": {"username": "prometheus", "password": password},
        "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
    }


def test_prometheus_scrapes_over_tls_with_basic_auth_and_a_wrong_password_is_refused(
    tmp_path: Path,
) -> None:
    port = free_tcp_port()
    config = write_daemon_config(tmp_path / "config", port)
    ca = config / "tls" / "ca.pem"
    daemon = Daemon(config, port)
    jobs = [
        scrape_job("districtmon", port, ca, PASSWORD),
        scrape_job("wrong-password", port, ca, "not-" + PASSWORD),
    ]
    prometheus = Prometheus([], scrape_interval="1s", scrape_configs=jobs)
    try:
        context = ssl.create_default_context(cafile=str(ca))
        url = f"https://127.0.0.1:{port}"

        def answer(path: str, **headers: str) -> tuple[int, bytes, str]:
            request = urllib.request.Request(url + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=5, context=context) as response:
                    return (
                        response.status,
                        response.read(),
                        response.headers.get("X-Content-Type-Options", ""),
                    )
            except urllib.error.HTTPError as exc:
                with exc:
                    return exc.code, exc.read(), exc.headers.get("WWW-Authenticate", "")

        def reachable() -> bool:
            with contextlib.suppress(OSError):
                return answer("/healthz")[0] == 401
            return False

        wait_for("the TLS port", reachable, daemon)
        good = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
        bad = base64.b64encode(b"prometheus:guess").decode()
        stranger = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        assert answer("/healthz") == (401, b"Unauthorized\n", 'Basic realm="districtmon"')
        assert answer("/healthz", Authorization=f"Basic {bad}")[0] == 401
        assert answer("/healthz", Authorization=f"Basic {stranger}")[0] == 401
        status, body, header = answer("/healthz", Authorization=f"Basic {good}")
        assert status == 200 and json.loads(body)["status"] == "ok" and header == "nosniff"
        # the status page is guarded as /metrics is; the page reads the API it is served with
        html = "text/html,application/xhtml+xml"
        assert answer("/", Accept=html)[0] == 401 and answer("/status")[0] == 401
        assert answer("/metrics")[0] == answer("/metrics/availability")[0] == 401
        status, page, _ = answer("/", Accept=html, Authorization=f"Basic {good}")
        assert status == 200 and b'fetch("/api/v1/summary"' in page and b"<html" in page
        assert answer("/status", Authorization=f"Basic {good}")[1] == page
        status, listing, _ = answer("/", Authorization=f"Basic {good}")
        assert "/status" in json.loads(listing)["endpoints"]
        with pytest.raises(OSError):  # plain HTTP on the TLS port: no answer
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).close()

        prometheus.start()

        def up(job: str) -> float | None:
            found = prometheus.query(f'up{{job="{job}"}}')
            return float(found[0]["value"][1]) if found else None

        wait_for("scraped over TLS", lambda: up("districtmon") == 1.0, daemon, limit=30)
        wait_for("refused", lambda: up("wrong-password") == 0.0, daemon, limit=30)
        # what was scraped is the daemon's: a site state, through TLS and basic auth
        wait_for(
            "a site's state in Prometheus",
            lambda: bool(prometheus.query('districtmon_site_up{site="web-self"} == 1')),
            daemon,
            limit=30,
        )

        def wrong_error() -> str:
            with urllib.request.urlopen(prometheus.url + "/api/v1/targets", timeout=5) as r:
                targets = json.loads(r.read())["data"]["activeTargets"]
            return str(
                next(t for t in targets if t["labels"]["job"] == "wrong-password")["lastError"]
            )

        wait_for("refused with 401", lambda: "401" in wrong_error(), daemon, limit=30)
        refused = daemon.metric("districtmon_http_refused_total", reason="unauthorized")
        assert refused is None  # plain HTTP gets nothing from the TLS port: read it over TLS
        _, text, _ = answer("/metrics", Authorization=f"Basic {good}")
        line = next(
            x
            for x in text.decode().splitlines()
            if x.startswith('districtmon_http_refused_total{reason="unauthorized"}')
        )
        assert float(line.rsplit(" ", 1)[1]) >= 4
        assert (
            float(
                next(
                    x
                    for x in text.decode().splitlines()
                    if x.startswith('districtmon_http_refused_total{reason="tls"}')
                ).rsplit(" ", 1)[1]
            )
            >= 1
        )
        assert daemon.stop() == 0
    finally:
        prometheus.close()
        daemon.kill()
    log = daemon.log.read_text()
    assert "Traceback" not in log and PASSWORD not in log


def test_a_reload_takes_a_renewed_certificate_and_new_users_without_a_restart(
    tmp_path: Path,
) -> None:
    """Certificates are renewed under the same names (certbot, an office CA); exporters read
    theirs at every handshake. Here a SIGHUP re-reads them, and the users with them."""
    port = free_tcp_port()
    config = write_daemon_config(tmp_path / "config", port)
    old_ca = config / "tls" / "old-ca.pem"
    (config / "tls" / "ca.pem").rename(old_ca)
    daemon = Daemon(config, port)

    def status(ca: Path, password: str) -> int | str:
        context = ssl.create_default_context(cafile=str(ca))
        token = base64.b64encode(f"prometheus:{password}".encode()).decode()
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/healthz", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code)
        except (urllib.error.URLError, OSError) as exc:
            return type(getattr(exc, "reason", exc)).__name__

    try:
        wait_for("the TLS port", lambda: status(old_ca, PASSWORD) == 200, daemon)
        # renewed in place: a new authority's certificate under the same file names
        new_ca, _, _ = make_tls_files(config / "tls")
        hashed = bcrypt.hashpw(b"renewed-Zq7", bcrypt.gensalt(4)).decode()
        web = config / "web.yml"
        text = web.read_text()
        old_hash = next(
            line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("  prometheus:")
        )
        web.write_text(text.replace(old_hash, hashed))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for("the new certificate", lambda: status(new_ca, "renewed-Zq7") == 200, daemon)
        assert status(new_ca, PASSWORD) == 401
        assert status(old_ca, "renewed-Zq7") == "SSLCertVerificationError"
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert "http (listen, limits) changed" not in daemon.log.read_text()


def test_a_web_config_is_checked_whole_and_what_python_cannot_do_is_refused(
    tmp_path: Path,
) -> None:
    root = write_config(tmp_path)
    _ca, cert, key = make_tls_files(root / "tls")
    edit(root / "districtmon.yaml", "  listen: 127.0.0.1:9877\n", "  listen: 127.0.0.1:9877\n"
         "  web_config_file: web.yml\n")  # fmt: skip
    web = root / "web.yml"
    web.write_text(
        f"""tls_server_config:
  cert_file: tls/{cert.name}
  key_file: tls/missing.key
  client_auth_type: RequireAnyClientCert
  min_version: TLS9
  cipher_suites: [TLS_AES_128_GCM_SHA256]
basic_auth_users:
  prometheus: {PASSWORD}
http_server_config:
  headers: {{"Bad Header": x}}
""",
        encoding="utf-8",
    )
    found = errors(root)
    assert found == [
        f"web.yml:3: tls_server_config.key_file: file not found: {root}/tls/missing.key",
        "web.yml:4: tls_server_config.client_auth_type: RequireAnyClientCert is not supported "
        "(Python's TLS cannot ask for a certificate without verifying it): use "
        "VerifyClientCertIfGiven or RequireAndVerifyClientCert",
        "web.yml:5: tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13",
        "web.yml:6: tls_server_config.cipher_suites: not supported by districtmon (Python's TLS "
        "takes OpenSSL's cipher choice); remove it",
        "web.yml:8: basic_auth_users.prometheus: must be a bcrypt hash ($2y$..., e.g. from "
        "`htpasswd -nBC 10 USER`)",
        "web.yml:10: http_server_config.headers.Bad Header: must be an HTTP header name with a "
        "one-line text value",
    ]
    assert all(PASSWORD not in line for line in found)
    # a certificate and a key that do not belong together: refused with the configuration
    other_ca, _other_cert, other_key = make_tls_files(root / "other")
    web.write_text(
        f"tls_server_config: {{cert_file: tls/{cert.name}, key_file: other/{other_key.name},"
        f" client_auth_type: RequireAndVerifyClientCert}}\n",
        encoding="utf-8",
    )
    assert [line.split(": ", 2)[1:] for line in errors(root)] == [
        ["tls_server_config.client_auth_type", "checking client certificates needs client_ca_file"],
        ["tls_server_config.cert_file", "cannot load the certificate and key: KEY_VALUES_MISMATCH"],
    ]
    web.write_text(
        f"tls_server_config: {{cert_file: tls/{cert.name}, key_file: tls/{key.name},"
        f" client_auth_type: VerifyClientCertIfGiven, client_ca_file: other/{other_ca.name},"
        f" max_version: TLS13}}\n",
        encoding="utf-8",
    )
    web_config = load(root).http.web
    assert web_config is not None and web_config.tls is not None and web_config.users == {}
    assert web_config.tls.client_auth == ssl.CERT_OPTIONAL
    assert web_config.tls.max_version == ssl.TLSVersion.TLSv1_3
