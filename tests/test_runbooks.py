"""The runbooks the daemon serves: the page at /runbooks, a section per alert anchored by its
name lower-cased, /runbooks/<alertname> leading there, the file shipped in the package being
config/prometheus/runbooks.md."""

from __future__ import annotations

import html
import http.client
import re
import urllib.parse
from collections.abc import Iterator
from importlib import resources

import pytest
from alerting import RUNBOOKS, alert_rules
from harness import Daemon, free_tcp_port, wait_for, write_settings

from monitor.expose.runbooks import Runbooks, load_packaged


def test_the_package_ships_the_runbooks_of_config_prometheus() -> None:
    packaged = resources.files("monitor.expose").joinpath("runbooks.md").read_bytes()
    assert packaged == RUNBOOKS.read_bytes()


def test_sections_are_split_at_their_headings_and_found_in_any_case() -> None:
    book = Runbooks.parse("# Title\n\nIntro <b>.\n\n## BtsDown\n\nA & B.\n\n## GatewayDown\nC\n")
    assert book.intro == "# Title\n\nIntro <b>."
    assert [(s.alert, s.anchor) for s in book.sections] == [
        ("BtsDown", "btsdown"),
        ("GatewayDown", "gatewaydown"),
    ]
    assert book.sections[0].text == "## BtsDown\n\nA & B."
    found = book.find("btsdown")
    assert found is not None and found.alert == "BtsDown"
    assert book.find("BTSDOWN") is found and book.find("SiteDown") is None
    page = book.html()
    assert '<section id="btsdown"><pre>## BtsDown\n\nA &amp; B.</pre></section>' in page
    assert "Intro &lt;b&gt;." in page and '<a href="#gatewaydown">GatewayDown</a>' in page


def test_every_alert_has_its_section_in_the_packaged_runbooks() -> None:
    book = load_packaged()
    assert book is not None
    names = {rule["alert"] for rule in alert_rules()}
    assert {s.alert for s in book.sections} == names


# --- on a running daemon ----------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("runbooks") / "config"
    port = free_tcp_port()
    write_settings(root, port, {})
    (root / "inventory" / "district.yaml").write_text(
        """
communes:
  - {id: thanh-nua, name: Thanh Nưa, lat: 21.45, lon: 103.0}
owners:
  - {id: district-it, name: Trung tâm Văn hóa - Thông tin huyện, kind: agency}
sites:
  - {id: gw-loopback, kind: gateway, name: Cổng mạng thử, commune: thanh-nua,
     owner: district-it, lat: 21.45, lon: 103.0, probe: {icmp: {address: 127.0.0.1}}}
""",
        encoding="utf-8",
    )
    running = Daemon(root, port)
    try:
        wait_for("the daemon answers", lambda: _answers(running), running)
        yield running
    finally:
        running.kill()


def _answers(daemon: Daemon) -> bool:
    try:
        return daemon.get("/healthz")[0] in (200, 503)
    except OSError:
        return False


def request(daemon: Daemon, path: str) -> tuple[int, dict[str, str], str]:
    """One GET, redirects not followed."""
    host = urllib.parse.urlsplit(daemon.url)
    connection = http.client.HTTPConnection(host.hostname or "", host.port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


def sections_of(page: str) -> dict[str, str]:
    """Anchor -> the text of that section of the page, unescaped."""
    found = re.findall(r'<section id="([a-z]+)"><pre>(.*?)</pre></section>', page, re.S)
    return {anchor: html.unescape(text) for anchor, text in found}


def test_the_page_has_a_section_per_alert_anchored_by_its_name(daemon: Daemon) -> None:
    status, headers, page = request(daemon, "/runbooks")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    sections = sections_of(page)
    for name in {rule["alert"] for rule in alert_rules()}:
        assert sections[name.lower()].startswith(f"## {name}\n"), name


@pytest.mark.parametrize("asked", ["BtsDown", "btsdown", "BTSDOWN"])
def test_an_alerts_link_leads_to_its_section(daemon: Daemon, asked: str) -> None:
    status, headers, body = request(daemon, f"/runbooks/{asked}")
    assert (status, headers["location"], body) == (302, "/runbooks#btsdown", "")


def test_an_unknown_alert_is_a_clear_404(daemon: Daemon) -> None:
    status, headers, body = request(daemon, "/runbooks/NoSuchAlert")
    assert status == 404 and headers["content-type"].startswith("application/json")
    assert "no runbook for NoSuchAlert" in body
