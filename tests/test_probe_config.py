"""Reading the icmp, tcp, http and dns probes: defaults, and every error placed by file, line,
key and site. Each test puts one probe in place of the loudspeaker's SNMP probe (line 36 of the
valid configuration of test_config), written as a block so that each key has its own line:
the probe type's key is line 36, its first key line 37, and so on."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import LOA, SHIPPED, broken, errors, load

from monitor.config.load import load_config
from monitor.core.model import DnsProbe, HttpProbe, IcmpProbe, TcpProbe

SNMP_LINE = "      snmp: {address: loa-01.thanh-nua.example, port: 1162, credential: district-ro}"


def with_probe(root: Path, probe: str) -> Path:
    """The valid configuration with the loudspeaker probed by `probe` (YAML lines, unindented)."""
    lines = probe.strip("\n").splitlines()
    block = "\n".join("      " + line for line in lines)
    return broken(root, "inventory/sites.yaml", SNMP_LINE, block)


def probe_of(root: Path) -> object:
    return load(root).sites["loa-thanh-nua-01"].probe


# --- valid probes --------------------------------------------------------------------------


def test_icmp_probe_with_defaults(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "icmp:\n  address: 127.4.1.1")
    assert probe_of(root) == IcmpProbe(address="127.4.1.1", count=3, packet_interval_seconds=0.2)


def test_icmp_probe_with_every_key(tmp_path: Path) -> None:
    root = with_probe(
        tmp_path,
        """
icmp:
  address: vc-thanh-nua.example
  count: 5
  packet_interval_seconds: 0.5
  max_loss_ratio: 0.2
  slow_seconds: 0.15
  timeout_seconds: 1
  interval_seconds: 30
""",
    )
    assert probe_of(root) == IcmpProbe("vc-thanh-nua.example", 5, 0.5, 0.2, 0.15, 1.0, 30.0)


def test_tcp_probe(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "tcp:\n  address: 127.4.0.3\n  port: 25\n  slow_seconds: 0.5")
    assert probe_of(root) == TcpProbe("127.4.0.3", 25, slow_seconds=0.5)


def test_http_probe_with_defaults(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "http:\n  url: http://127.4.0.1:8080/")
    probe = probe_of(root)
    assert probe == HttpProbe("http://127.4.0.1:8080/")
    assert isinstance(probe, HttpProbe)
    assert (probe.expect_status, probe.verify_tls, probe.cert_expiry_days) == ((), True, 14.0)


def test_http_probe_with_every_key(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "district-ca.pem").write_text("not read at load time\n")
    root = with_probe(
        tmp_path,
        """
http:
  url: https://[::1]:8443/dich-vu-cong
  expect_status: [200, 301]
  body_matches: 'Dịch vụ công\\s+trực tuyến'
  header_matches: {Content-Type: ^text/html, Server: nginx}
  follow_redirects: true
  verify_tls: false
  ca_file: district-ca.pem
  cert_expiry_days: 30
  slow_seconds: 1.5
  timeout_seconds: 5
  interval_seconds: 120
""",
    )
    assert probe_of(root) == HttpProbe(
        url="https://[::1]:8443/dich-vu-cong",
        expect_status=(200, 301),
        body_matches="Dịch vụ công\\s+trực tuyến",
        header_matches=(("Content-Type", "^text/html"), ("Server", "nginx")),
        follow_redirects=True,
        verify_tls=False,
        ca_file=str(tmp_path / "inventory" / "district-ca.pem"),  # relative to its file
        cert_expiry_days=30.0,
        slow_seconds=1.5,
        timeout_seconds=5.0,
        interval_seconds=120.0,
    )


def test_http_expect_status_may_be_a_single_code(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "http:\n  url: http://127.4.0.1/\n  expect_status: 302")
    probe = probe_of(root)
    assert isinstance(probe, HttpProbe) and probe.expect_status == (302,)


def test_dns_probe(tmp_path: Path) -> None:
    root = with_probe(
        tmp_path,
        """
dns:
  server: 127.0.0.1
  port: 5353
  name: _sip._tcp.dienbien.example
  type: SRV
  expect: [10 60 5060 sip.dienbien.example.]
  retries: 0
""",
    )
    assert probe_of(root) == DnsProbe(
        server="127.0.0.1",
        name="_sip._tcp.dienbien.example",
        type="SRV",
        port=5353,
        expect=("10 60 5060 sip.dienbien.example.",),
        retries=0,
    )


def test_dns_probe_defaults_to_an_a_record_on_port_53(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "dns:\n  server: '::1'\n  name: portal.dienbien.example")
    assert probe_of(root) == DnsProbe("::1", "portal.dienbien.example", "A", 53)


# --- errors --------------------------------------------------------------------------------


def test_icmp_errors_each_name_their_key_and_site(tmp_path: Path) -> None:
    root = with_probe(
        tmp_path,
        """
icmp:
  address: 10.0.0.300
  count: 0
  packet_interval_seconds: 0
  max_loss_ratio: 1.5
  slow_seconds: -1
""",
    )
    p = "inventory/sites.yaml"
    assert errors(root) == [
        f"{p}:37: sites[2].probe.icmp.address: "
        f"must be an IP address or a host name, got '10.0.0.300'{LOA}",
        f"{p}:38: sites[2].probe.icmp.count: must be an integer 1..100, got 0{LOA}",
        f"{p}:39: sites[2].probe.icmp.packet_interval_seconds: must be a number > 0, got 0{LOA}",
        f"{p}:40: sites[2].probe.icmp.max_loss_ratio: must be a number 0..1, got 1.5{LOA}",
        f"{p}:41: sites[2].probe.icmp.slow_seconds: must be a number > 0, got -1{LOA}",
    ]


def test_icmp_needs_an_address_and_knows_its_keys(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "icmp:\n  adress: 127.4.1.1")
    expected = (
        "address, count, packet_interval_seconds, max_loss_ratio, slow_seconds, "
        "timeout_seconds, interval_seconds"
    )
    assert errors(root) == [
        f"inventory/sites.yaml:37: sites[2].probe.icmp.adress: "
        f"unknown key; did you mean 'address'? (expected one of: {expected}){LOA}",
    ]


def test_tcp_needs_a_port_in_range(tmp_path: Path) -> None:
    assert errors(with_probe(tmp_path, "tcp:\n  address: 127.4.0.3")) == [
        f"inventory/sites.yaml:37: sites[2].probe.tcp.port: is required{LOA}"
    ]


def test_tcp_port_out_of_range(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "tcp:\n  address: 127.4.0.3\n  port: 70000")
    assert errors(root) == [
        f"inventory/sites.yaml:38: sites[2].probe.tcp.port: "
        f"must be an integer 1..65535, got 70000{LOA}"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.4.0.1/", "must be an http:// or https:// URL, got 'ftp://127.4.0.1/'"),
        ("http://127.4.0.1:99999/", "not a valid URL: 'http://127.4.0.1:99999/'"),
        ("http:///path", "must name a host (IP address or host name), got 'http:///path'"),
        ("http://bad_host/", "must name a host (IP address or host name), got 'http://bad_host/'"),
    ],
)
def test_http_url_must_be_http_or_https_with_a_host(tmp_path: Path, url: str, message: str) -> None:
    root = with_probe(tmp_path, f"http:\n  url: '{url}'")
    assert errors(root) == [f"inventory/sites.yaml:37: sites[2].probe.http.url: {message}{LOA}"]


def test_http_url_with_a_password_is_refused_without_showing_it(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "http:\n  url: https://admin:S3cr3t-pw@127.4.0.1/")
    problems = errors(root)
    assert problems == [
        "inventory/sites.yaml:37: sites[2].probe.http.url: "
        f"must not carry a user name or password{LOA}"
    ]
    assert "S3cr3t-pw" not in problems[0]


def test_http_errors_each_name_their_key_and_site(tmp_path: Path) -> None:
    root = with_probe(
        tmp_path,
        """
http:
  url: https://127.4.0.1/
  expect_status: [200, 700]
  body_matches: '(unclosed'
  header_matches:
    Bad Header: x
    Server: '['
  follow_redirects: 'yes'
  ca_file: missing-ca.pem
  cert_expiry_days: -3
""",
    )
    p = "inventory/sites.yaml"
    missing = tmp_path / "inventory" / "missing-ca.pem"
    assert errors(root) == [
        f"{p}:38: sites[2].probe.http.expect_status[1]: "
        f"must be an HTTP status 100..599, got 700{LOA}",
        f"{p}:39: sites[2].probe.http.body_matches: "
        f"not a valid regular expression (missing ), unterminated subpattern at position 0){LOA}",
        f"{p}:41: sites[2].probe.http.header_matches.Bad Header: "
        f"not a valid HTTP header name: 'Bad Header'{LOA}",
        f"{p}:42: sites[2].probe.http.header_matches.Server: "
        f"not a valid regular expression (unterminated character set at position 0){LOA}",
        f"{p}:43: sites[2].probe.http.follow_redirects: must be true or false, got 'yes'{LOA}",
        f"{p}:44: sites[2].probe.http.ca_file: file not found: {missing}{LOA}",
        f"{p}:45: sites[2].probe.http.cert_expiry_days: must be a number 0..3650, got -3{LOA}",
    ]


def test_tls_settings_on_a_plain_http_url_are_a_mistake(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "http:\n  url: http://127.4.0.1/\n  cert_expiry_days: 30")
    assert errors(root) == [
        "inventory/sites.yaml:38: sites[2].probe.http.cert_expiry_days: "
        f"applies to https:// URLs only{LOA}"
    ]


def test_dns_errors_each_name_their_key_and_site(tmp_path: Path) -> None:
    root = with_probe(
        tmp_path,
        """
dns:
  server: ns1.dienbien.example
  name: 'portal..dienbien'
  type: AXFR
  expect: [not-an-address]
""",
    )
    p = "inventory/sites.yaml"
    assert errors(root) == [
        f"{p}:37: sites[2].probe.dns.server: must be an IP address "
        f"(a resolver is asked by address), got 'ns1.dienbien.example'{LOA}",
        f"{p}:38: sites[2].probe.dns.name: not a valid DNS name: 'portal..dienbien'{LOA}",
        f"{p}:39: sites[2].probe.dns.type: "
        f"must be one of A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT; got 'AXFR'{LOA}",
    ]


def test_dns_expected_addresses_must_fit_the_type(tmp_path: Path) -> None:
    root = with_probe(
        tmp_path,
        "dns:\n  server: 127.0.0.1\n  name: portal.example\n  type: AAAA\n  expect:\n"
        "    - 127.4.0.1",
    )
    assert errors(root) == [
        "inventory/sites.yaml:41: sites[2].probe.dns.expect[0]: "
        f"must be an IPv6 address for type AAAA, got '127.4.0.1'{LOA}"
    ]


def test_a_broken_probe_refuses_the_whole_configuration(tmp_path: Path) -> None:
    root = with_probe(tmp_path, "tcp:\n  address: 127.4.0.3\n  port: 0")
    assert len(errors(root)) == 1  # and load_config raised: no half-district is returned


# --- the shipped district ------------------------------------------------------------------


def test_the_shipped_district_watches_its_services_video_endpoints_and_post_points() -> None:
    config = load_config(SHIPPED, {})
    sites = list(config.sites.values())
    video = [site for site in sites if site.kind == "video_endpoint"]
    assert {site.commune for site in video} == set(config.communes)  # one in every commune
    assert all(isinstance(site.probe, IcmpProbe) for site in video)
    portals = {site.id: site.probe for site in sites if site.kind == "portal"}
    assert isinstance(portals["portal-huyen"], HttpProbe)
    assert isinstance(portals["dichvucong-huyen"], HttpProbe)
    assert portals["dichvucong-huyen"].url.startswith("https:")
    assert isinstance(portals["vanban-huyen"], HttpProbe)
    assert isinstance(portals["mail-huyen"], TcpProbe) and portals["mail-huyen"].port == 25
    post = [site for site in sites if site.kind == "post_point"]
    assert len(post) == 16  # the post office and the 15 commune post points with a link
    assert all(isinstance(site.probe, IcmpProbe | TcpProbe) for site in post)
