"""The `probe:` section of a site: one reader per probe type (snmp, icmp, tcp, http, dns, mqtt).

Each reader validates its mapping and returns the probe and the credential it refers to, if
any, placed so that the inventory's second pass can check it against credentials.yaml.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from monitor.config.addresses import is_address, is_dns_name, is_ip
from monitor.config.fields import Fields, Located, or_default
from monitor.config.mqtt import read_mqtt_probe
from monitor.core.model import DnsProbe, HttpProbe, IcmpProbe, Probe, SnmpProbe, TcpProbe

_SNMP_KEYS = (
    "address",
    "port",
    "credential",
    "interval_seconds",
    "timeout_seconds",
    "retries",
    "profile",
)


def _read_snmp(snmp: Fields) -> tuple[Probe, Located[str] | None]:
    snmp.expect(_SNMP_KEYS, required=("address", "credential"))
    address = snmp.text("address")
    if address is not None and not is_address(address):
        snmp.problem("address", f"must be an IP address or a host name, got {address!r}")
    credential = snmp.located("credential")
    profile = snmp.slug("profile") if snmp.has("profile") else None
    probe = SnmpProbe(
        address=address or "",
        port=or_default(snmp.integer("port", 1, 65535), 161),
        credential=credential.value if credential else "",
        timeout_seconds=snmp.number("timeout_seconds", positive=True),
        retries=snmp.integer("retries", 0),
        interval_seconds=snmp.number("interval_seconds", positive=True),
        profile=profile,
    )
    return probe, credential


_ICMP_KEYS = (
    "address",
    "count",
    "packet_interval_seconds",
    "max_loss_ratio",
    "slow_seconds",
    "timeout_seconds",
    "interval_seconds",
)


_TCP_KEYS = ("address", "port", "slow_seconds", "timeout_seconds", "interval_seconds")


_HTTP_KEYS = (
    "url",
    "expect_status",
    "body_matches",
    "header_matches",
    "follow_redirects",
    "verify_tls",
    "ca_file",
    "cert_expiry_days",
    "slow_seconds",
    "timeout_seconds",
    "interval_seconds",
)


_DNS_KEYS = (
    "server",
    "port",
    "name",
    "type",
    "expect",
    "slow_seconds",
    "timeout_seconds",
    "retries",
    "interval_seconds",
)


DNS_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT")


_HTTP_ONLY_TLS = ("verify_tls", "ca_file", "cert_expiry_days")


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _address(fields: Fields, key: str = "address") -> str:
    address = fields.text(key)
    if address is not None and not is_address(address):
        fields.problem(key, f"must be an IP address or a host name, got {address!r}")
    return address or ""


def _timing(fields: Fields) -> dict[str, float | None]:
    """The keys every reachability probe shares."""
    return {
        "slow_seconds": fields.number("slow_seconds", positive=True),
        "timeout_seconds": fields.number("timeout_seconds", positive=True),
        "interval_seconds": fields.number("interval_seconds", positive=True),
    }


def _regex(fields: Fields, key: str, text: str | None, line_key: str | None = None) -> str | None:
    """A Python regular expression, compiled once here so that a typo is a config error."""
    if text is None:
        return None
    try:
        re.compile(text)
    except re.error as exc:
        fields.problem(line_key or key, f"not a valid regular expression ({exc})")
        return None
    return text


def _read_icmp(icmp: Fields) -> tuple[Probe, None]:
    icmp.expect(_ICMP_KEYS, required=("address",))
    probe = IcmpProbe(
        address=_address(icmp),
        count=or_default(icmp.integer("count", 1, 100), 3),
        packet_interval_seconds=or_default(
            icmp.number("packet_interval_seconds", positive=True), 0.2
        ),
        max_loss_ratio=icmp.number("max_loss_ratio", 0, 1),
        **_timing(icmp),
    )
    return probe, None


def _read_tcp(tcp: Fields) -> tuple[Probe, None]:
    tcp.expect(_TCP_KEYS, required=("address", "port"))
    probe = TcpProbe(
        address=_address(tcp), port=or_default(tcp.integer("port", 1, 65535), 1), **_timing(tcp)
    )
    return probe, None


def _read_http_probe(http: Fields) -> tuple[Probe, None]:
    http.expect(_HTTP_KEYS, required=("url",))
    url = _http_url(http)
    if url is not None and url.startswith("http:"):
        for key in _HTTP_ONLY_TLS:
            if http.has(key):
                http.problem(key, "applies to https:// URLs only")
    ca_file = http.text("ca_file")
    if ca_file is not None:
        path = (http.sink.file.parent / ca_file).absolute()  # relative to the file it is in
        if not path.is_file():
            http.problem("ca_file", f"file not found: {path}")
        ca_file = str(path)
    probe = HttpProbe(
        url=url or "",
        expect_status=_http_statuses(http),
        body_matches=_regex(http, "body_matches", http.text("body_matches")),
        header_matches=_http_headers(http),
        follow_redirects=or_default(http.boolean("follow_redirects"), False),
        verify_tls=or_default(http.boolean("verify_tls"), True),
        ca_file=ca_file,
        cert_expiry_days=or_default(http.number("cert_expiry_days", 0, 3650), 14.0),
        **_timing(http),
    )
    return probe, None


def _http_url(http: Fields) -> str | None:
    url = http.text("url")
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        http.problem("url", f"not a valid URL: {url!r}")
        return None
    if parts.scheme not in ("http", "https"):
        http.problem("url", f"must be an http:// or https:// URL, got {url!r}")
        return None
    if parts.username is not None or parts.password is not None:
        # the inventory is shared and URLs appear in logs: credentials have no place there
        http.problem("url", "must not carry a user name or password")
        return None
    if not parts.hostname or not is_address(parts.hostname):
        http.problem("url", f"must name a host (IP address or host name), got {url!r}")
        return None
    return url


def _http_statuses(http: Fields) -> tuple[int, ...]:
    """One status or a list; none given means any 2xx."""
    if not http.has("expect_status"):
        return ()
    if not isinstance(http.get("expect_status"), list):
        single = http.integer("expect_status", 100, 599)
        return () if single is None else (single,)
    statuses: list[int] = []
    for item in http.items("expect_status") or ():
        value = item.value
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            message = f"must be an HTTP status 100..599, got {http.sink.show(value)}"
            http.sink.add(item.line, item.key, message + http.subject)
            continue
        statuses.append(value)
    return tuple(statuses)


def _http_headers(http: Fields) -> tuple[tuple[str, str], ...]:
    headers = http.mapping("header_matches")
    if headers is None:
        return ()
    found: list[tuple[str, str]] = []
    for name in headers.node:
        if not _HEADER_NAME.fullmatch(name):
            headers.problem(name, f"not a valid HTTP header name: {name!r}")
            continue
        pattern = _regex(headers, name, headers.text(name))
        if pattern is not None:
            found.append((name, pattern))
    return tuple(found)


def _read_dns(dns: Fields) -> tuple[Probe, None]:
    dns.expect(_DNS_KEYS, required=("server", "name"))
    server = dns.text("server")
    if server is not None and not is_ip(server):
        dns.problem(
            "server", f"must be an IP address (a resolver is asked by address), got {server!r}"
        )
    name = dns.text("name")
    if name is not None and not is_dns_name(name):
        dns.problem("name", f"not a valid DNS name: {name!r}")
    chosen = dns.choice("type", DNS_TYPES)
    rdtype = or_default(chosen, "A")
    expect = dns.texts("expect") or []
    if rdtype in ("A", "AAAA") and (chosen is not None or not dns.has("type")):
        family = ipaddress.IPv4Address if rdtype == "A" else ipaddress.IPv6Address
        for item in expect:
            if not is_ip(item.value) or not isinstance(ipaddress.ip_address(item.value), family):
                message = f"must be an IPv{4 if rdtype == 'A' else 6} address for type {rdtype}"
                dns.sink.add(item.line, item.key, f"{message}, got {item.value!r}{dns.subject}")
    probe = DnsProbe(
        server=server or "",
        name=name or "",
        type=rdtype,
        port=or_default(dns.integer("port", 1, 65535), 53),
        expect=tuple(item.value for item in expect),
        retries=dns.integer("retries", 0),
        **_timing(dns),
    )
    return probe, None


def _read_mqtt(mqtt: Fields) -> tuple[Probe, Located[str] | None]:
    return read_mqtt_probe(mqtt), None


# One reader per probe type: it validates the probe's mapping and returns the probe and the
# credential it refers to (checked against credentials.yaml in pass 2), if any.
PROBE_READERS: dict[str, Callable[[Fields], tuple[Probe, Located[str] | None]]] = {
    "snmp": _read_snmp,
    "icmp": _read_icmp,
    "tcp": _read_tcp,
    "http": _read_http_probe,
    "dns": _read_dns,
    "mqtt": _read_mqtt,
}
