"""The TCP, HTTP(S) and DNS probes against real peers on 127.0.0.1 (tests/reachpeers.py): a
listener and a closed port, a threaded HTTP server with TLS certificates made by the test, and
Debian's dnsmasq."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reachpeers import (
    DOMAIN,
    SLOW_SECONDS,
    Dnsmasq,
    HttpPeer,
    TcpListener,
    closed_port,
    make_tls,
    silent_udp_port,
)

from monitor.config.settings import PollSettings
from monitor.core.model import DnsProbe, HttpProbe, Observation, Probe, Site, TcpProbe
from monitor.probes.reach.dns import DnsPoller
from monitor.probes.reach.http import HttpPoller
from monitor.probes.reach.tcp import TcpPoller


def site(probe: Probe) -> Site:
    return Site("portal-huyen", "portal", "Cổng thông tin", "thanh-xuong", "it", 0, 0, probe)


def number(obs: Observation, name: str) -> float:
    """An unlabelled value the test expects to be a number, not text."""
    value = obs.values[name]
    assert isinstance(value, int | float), f"{name} is {value!r}"
    return value


# --- TCP ---------------------------------------------------------------------------------------


async def test_an_open_port_is_up_with_its_connect_time() -> None:
    with TcpListener() as listener:
        obs = await TcpPoller(PollSettings(timeout_seconds=1.0)).poll(
            site(TcpProbe("127.0.0.1", listener.port))
        )
    assert obs.ok and obs.probe == "tcp" and obs.degraded_reason is None
    assert 0 < number(obs, "connect_seconds") < 1.0


async def test_a_closed_port_is_refused() -> None:
    with closed_port() as port:
        obs = await TcpPoller(PollSettings(timeout_seconds=1.0)).poll(
            site(TcpProbe("127.0.0.1", port))
        )
    assert not obs.ok
    assert obs.error_reason == "refused"
    assert obs.error == f"tcp refused: connection refused (127.0.0.1:{port})"


async def test_a_port_that_stops_listening_is_refused_from_then_on() -> None:
    poller = TcpPoller(PollSettings(timeout_seconds=1.0))
    with TcpListener() as listener:
        probe = TcpProbe("127.0.0.1", listener.port)
        assert (await poller.poll(site(probe))).ok
        listener.close()
        assert (await poller.poll(site(probe))).error_reason == "refused"


async def test_a_slow_connect_is_degraded() -> None:
    with TcpListener() as listener:
        obs = await TcpPoller(PollSettings(timeout_seconds=1.0)).poll(
            site(TcpProbe("127.0.0.1", listener.port, 1e-9))
        )
    assert obs.ok and (obs.degraded_reason or "").startswith("tcp connect ")
    assert obs.codes == ("slow",)


# --- HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def web() -> Iterator[HttpPeer]:
    with HttpPeer() as peer:
        yield peer


async def http(probe: HttpProbe, timeout_seconds: float = 2.0) -> Observation:
    return await HttpPoller(PollSettings(timeout_seconds=timeout_seconds)).poll(site(probe))


async def test_a_page_with_the_expected_status_and_content_is_up(web: HttpPeer) -> None:
    obs = await http(
        HttpProbe(
            f"{web.url}/",
            body_matches="Cổng thông tin điện tử huyện Điện Biên",
            header_matches=(("Content-Type", "^text/html"),),
        )
    )
    assert obs.ok and obs.probe == "http" and obs.degraded_reason is None
    assert obs.values["http_status"] == 200
    assert 0 < number(obs, "response_seconds") < 2
    assert "cert_expiry_timestamp_seconds" not in obs.values  # plain http


async def test_an_unexpected_status_is_down_with_the_status_kept(web: HttpPeer) -> None:
    obs = await http(HttpProbe(f"{web.url}/status/503"))
    assert not obs.ok
    assert (obs.error_reason, obs.error) == ("status", "http status: status 503, expected 2xx")
    assert obs.values["http_status"] == 503


async def test_a_listed_status_is_accepted_and_redirects_are_not_followed_by_default(
    web: HttpPeer,
) -> None:
    assert (await http(HttpProbe(f"{web.url}/redirect", expect_status=(301,)))).ok
    obs = await http(HttpProbe(f"{web.url}/redirect"))
    assert obs.error_reason == "status" and obs.values["http_status"] == 301
    followed = await http(HttpProbe(f"{web.url}/redirect", follow_redirects=True))
    assert followed.ok and followed.values["http_status"] == 200


async def test_a_body_without_the_expected_text_is_down(web: HttpPeer) -> None:
    obs = await http(HttpProbe(f"{web.url}/", body_matches="Dịch vụ công"))
    assert not obs.ok
    assert obs.error_reason == "content"
    assert obs.error == "http content: body does not match 'Dịch vụ công'"


async def test_a_header_without_the_expected_value_is_down(web: HttpPeer) -> None:
    obs = await http(HttpProbe(f"{web.url}/", header_matches=(("Content-Type", "json"),)))
    assert obs.error_reason == "content" and "header Content-Type" in (obs.error or "")


async def test_a_slow_response_is_degraded(web: HttpPeer) -> None:
    obs = await http(HttpProbe(f"{web.url}/slow", slow_seconds=SLOW_SECONDS / 2))
    assert obs.ok
    assert number(obs, "response_seconds") >= SLOW_SECONDS
    assert (obs.degraded_reason or "").startswith("http response ")
    assert obs.codes == ("slow",)


async def test_a_response_slower_than_the_timeout_is_down(web: HttpPeer) -> None:
    started = time.monotonic()
    obs = await http(HttpProbe(f"{web.url}/slow"), timeout_seconds=SLOW_SECONDS / 3)
    assert not obs.ok and obs.error_reason == "timeout"
    assert time.monotonic() - started < SLOW_SECONDS  # the probe gave up, did not wait


async def test_a_refused_connection_is_down() -> None:
    with closed_port() as port:
        obs = await http(HttpProbe(f"http://127.0.0.1:{port}/"))
    assert (obs.ok, obs.error_reason) == (False, "refused")


async def test_https_to_a_plain_http_server_is_a_tls_failure(web: HttpPeer) -> None:
    obs = await http(HttpProbe(f"https://127.0.0.1:{web.port}/"))
    assert (obs.ok, obs.error_reason) == (False, "tls")


# --- HTTPS and certificates --------------------------------------------------------------------


async def test_a_certificate_near_expiry_is_degraded_and_its_expiry_reported(
    tmp_path: Path,
) -> None:
    tls = make_tls(tmp_path, days_left=5)
    with HttpPeer(tls) as peer:
        obs = await http(HttpProbe(f"{peer.url}/", ca_file=str(tls.ca), cert_expiry_days=14))
    assert obs.ok
    assert obs.values["cert_expiry_timestamp_seconds"] == tls.not_after.timestamp()
    assert obs.degraded_reason is not None
    assert obs.degraded_reason.startswith("certificate expires in 5.0 days (< 14)")
    assert obs.codes == ("cert_expiring",)


async def test_a_certificate_with_time_left_is_healthy(tmp_path: Path) -> None:
    tls = make_tls(tmp_path, days_left=90)
    with HttpPeer(tls) as peer:
        obs = await http(HttpProbe(f"{peer.url}/", ca_file=str(tls.ca), cert_expiry_days=14))
    assert obs.ok and obs.degraded_reason is None
    assert obs.values["cert_expiry_timestamp_seconds"] == tls.not_after.timestamp()


async def test_cert_expiry_days_zero_turns_the_rule_off(tmp_path: Path) -> None:
    tls = make_tls(tmp_path, days_left=1)
    with HttpPeer(tls) as peer:
        obs = await http(HttpProbe(f"{peer.url}/", ca_file=str(tls.ca), cert_expiry_days=0))
    assert obs.ok and obs.degraded_reason is None


async def test_an_expired_certificate_fails_the_handshake(tmp_path: Path) -> None:
    tls = make_tls(tmp_path, days_left=-1)
    with HttpPeer(tls) as peer:
        obs = await http(HttpProbe(f"{peer.url}/", ca_file=str(tls.ca)))
    assert not obs.ok and obs.error_reason == "tls"
    assert "certificate has expired" in (obs.error or "")


async def test_an_untrusted_certificate_fails_unless_verification_is_off(tmp_path: Path) -> None:
    tls = make_tls(tmp_path, days_left=5)
    with HttpPeer(tls) as peer:
        untrusted = await http(HttpProbe(f"{peer.url}/"))  # the system store lacks our CA
        unverified = await http(HttpProbe(f"{peer.url}/", verify_tls=False))
    assert (untrusted.ok, untrusted.error_reason) == (False, "tls")
    assert untrusted.error == "http tls: unable to get local issuer certificate"
    # without verification the expiry is still read, and still judged
    assert unverified.ok
    assert unverified.values["cert_expiry_timestamp_seconds"] == tls.not_after.timestamp()
    assert (unverified.degraded_reason or "").startswith("certificate expires in 5.0 days")


# --- DNS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsmasq]:
    with Dnsmasq(tmp_path_factory.mktemp("dnsmasq") / "dnsmasq.log") as server:
        yield server


async def dns(
    server: Dnsmasq,
    name: str,
    rdtype: str = "A",
    *,
    expect: tuple[str, ...] = (),
    slow_seconds: float | None = None,
) -> Observation:
    probe = DnsProbe(
        "127.0.0.1", name, rdtype, server.port, expect=expect, slow_seconds=slow_seconds
    )
    return await DnsPoller(PollSettings(timeout_seconds=1.0, retries=0)).poll(site(probe))


async def test_a_name_with_the_expected_address_is_up(dnsmasq: Dnsmasq) -> None:
    obs = await dns(dnsmasq, f"portal.{DOMAIN}", expect=("127.4.0.1",))
    assert obs.ok and obs.probe == "dns" and obs.degraded_reason is None
    assert obs.values["dns_answer"] == "127.4.0.1"
    assert 0 < number(obs, "response_seconds") < 1


async def test_records_compare_by_value_not_spelling(dnsmasq: Dnsmasq) -> None:
    assert (await dns(dnsmasq, f"dichvucong.{DOMAIN}", "AAAA", expect=("0::1",))).ok
    assert (await dns(dnsmasq, DOMAIN, "MX", expect=(f"10 MAIL.{DOMAIN.upper()}",))).ok
    assert (await dns(dnsmasq, DOMAIN, "TXT", expect=("v=spf1 -all",))).ok


async def test_a_cname_is_followed_to_the_address(dnsmasq: Dnsmasq) -> None:
    obs = await dns(dnsmasq, f"www.{DOMAIN}", expect=("127.4.0.1",))
    assert obs.ok and obs.values["dns_answer"] == "127.4.0.1"


async def test_a_different_answer_is_down(dnsmasq: Dnsmasq) -> None:
    obs = await dns(dnsmasq, f"portal.{DOMAIN}", expect=("127.4.0.9",))
    assert not obs.ok and obs.error_reason == "answer"
    assert obs.error == f"dns answer: portal.{DOMAIN} A is 127.4.0.1; expected 127.4.0.9"


async def test_an_unknown_name_is_down_with_its_rcode(dnsmasq: Dnsmasq) -> None:
    obs = await dns(dnsmasq, f"khong-co.{DOMAIN}")
    assert not obs.ok and obs.error_reason == "rcode"
    assert "NXDOMAIN" in (obs.error or "")


async def test_a_name_without_a_record_of_the_type_is_down(dnsmasq: Dnsmasq) -> None:
    obs = await dns(dnsmasq, f"portal.{DOMAIN}", "AAAA")
    assert (obs.ok, obs.error_reason) == (False, "answer")


async def test_a_slow_answer_is_degraded(dnsmasq: Dnsmasq) -> None:
    obs = await dns(dnsmasq, f"portal.{DOMAIN}", slow_seconds=1e-9)
    assert obs.ok and (obs.degraded_reason or "").startswith("dns answer ")


async def test_a_server_that_never_answers_times_out_after_its_retries() -> None:
    with silent_udp_port() as port:
        probe = DnsProbe("127.0.0.1", f"portal.{DOMAIN}", port=port, retries=1)
        started = time.monotonic()
        obs = await DnsPoller(PollSettings(timeout_seconds=0.2, retries=0)).poll(site(probe))
    assert not obs.ok and obs.error_reason == "timeout"
    assert 2 * 0.2 <= time.monotonic() - started < 2 * 0.2 + 1.0  # two tries of 0.2 s
