"""The runbooks the daemon serves: the page at /runbooks, a section per alert anchored by its
name lower-cased, /runbooks/<alertname> leading there, the file shipped in the package being
config/prometheus/runbooks.md; and every rule's runbook link, as promtool renders it in the
rule tests, resolving on a running daemon to a section that names the alert."""

from __future__ import annotations

import html
import http.client
import re
import urllib.parse
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from alerting import RULE_TESTS, RUNBOOKS, alert_rules, load_yaml
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


def rendered_links() -> list[tuple[str, dict[str, Any], str]]:
    """(alertname, expected labels, runbook_url) of every firing alert the rule tests
    expect: the link as promtool rendered it from the rule's template, since each test
    asserts every annotation."""
    found = []
    for path in RULE_TESTS:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    url = alert["exp_annotations"]["runbook_url"]
                    found.append((case["alertname"], alert.get("exp_labels", {}), url))
    return found


def test_every_rules_runbook_link_resolves_on_the_daemon(daemon: Daemon) -> None:
    links = rendered_links()
    assert {name for name, _, _ in links} == {rule["alert"] for rule in alert_rules()}
    _, _, page = request(daemon, "/runbooks")
    sections = sections_of(page)
    for name, labels, url in links:
        if url.startswith("file://"):  # DistrictmonDown when Prometheus knows no daemon
            assert url == "file:///opt/districtmon/share/prometheus/runbooks.md", name
            continue
        link = urllib.parse.urlsplit(url)
        assert link.scheme == "http" and link.path == f"/runbooks/{name.lower()}", url
        if "instance" in labels:  # the daemon that raised it
            assert link.netloc == labels["instance"], (name, url)
        # the link's host is the daemon's listener: ask this daemon for the same path
        status, headers, _ = request(daemon, link.path)
        assert status == 302, (name, url)
        anchor = headers["location"].removeprefix("/runbooks#")
        assert sections[anchor].startswith(f"## {name}\n"), (name, url)
