"""The demo's web and TCP services: every http and tcp site of the shipped inventory answered on
its loopback address as its probe expects, but the one the demo leaves down."""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509

from monitor.config.load import load_config
from monitor.core.model import HttpProbe, Site, TcpProbe
from monitor.simulator.services import CERT_DAYS, SILENT

CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Site]]:
    work = tmp_path_factory.mktemp("services")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.simulator.services", str(CONFIG), str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sites = [
        site
        for site in load_config(CONFIG).sites.values()
        if isinstance(site.probe, HttpProbe | TcpProbe)
    ]
    assert proc.stdout is not None
    answered = 0
    deadline = time.monotonic() + 20
    while answered + len(SILENT) < len(sites) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"the services stopped: exit {proc.poll()}"
        answered += "answering on" in line
    try:
        yield sites
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def _context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_every_web_site_shows_what_its_probe_looks_for(services: list[Site]) -> None:
    checked = 0
    for site in services:
        probe = site.probe
        if not isinstance(probe, HttpProbe) or site.id in SILENT:
            continue
        with urllib.request.urlopen(probe.url, timeout=5, context=_context()) as response:
            body = response.read().decode()
        assert response.status == 200
        assert probe.body_matches is None or probe.body_matches in body, site.id
        checked += 1
    assert checked >= 2


def test_the_https_certificate_expires_inside_the_warning(services: list[Site]) -> None:
    secure = [
        s for s in services if isinstance(s.probe, HttpProbe) and s.probe.url.startswith("https")
    ]
    assert secure
    for site in secure:
        assert isinstance(site.probe, HttpProbe)
        url = urlsplit(site.probe.url)
        with (
            socket.create_connection((url.hostname, url.port or 443), timeout=5) as raw,
            _context().wrap_socket(raw) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        left = x509.load_der_x509_certificate(der).not_valid_after_utc - datetime.datetime.now(
            datetime.UTC
        )
        assert datetime.timedelta(days=CERT_DAYS - 1) < left <= datetime.timedelta(days=CERT_DAYS)
        assert left.days < site.probe.cert_expiry_days  # so the probe shows it degraded


def test_tcp_services_accept_and_the_mail_server_greets(services: list[Site]) -> None:
    tcp = [s for s in services if isinstance(s.probe, TcpProbe)]
    assert tcp
    for site in tcp:
        assert isinstance(site.probe, TcpProbe)
        with socket.create_connection((site.probe.address, site.probe.port), timeout=5) as conn:
            if site.probe.port == 25:
                assert conn.recv(100).startswith(b"220 ")


def test_the_site_left_down_refuses(services: list[Site]) -> None:
    for site in services:
        if site.id not in SILENT:
            continue
        assert isinstance(site.probe, HttpProbe)
        url = urlsplit(site.probe.url)
        with pytest.raises(OSError):
            socket.create_connection((url.hostname, url.port or 80), timeout=2).close()
