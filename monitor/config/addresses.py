"""Addresses as the configuration writes them: IP literals, host names, DNS names.

Shared by every reader that takes an address (SNMP, ICMP, TCP, HTTP, DNS probes, the MQTT
broker, the HTTP listener), so that one rule decides what is an address everywhere.
"""

from __future__ import annotations

import ipaddress
import re

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


_DNS_LABEL = re.compile(r"[A-Za-z0-9_*](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


# A dotted quad as ipaddress takes it (0-255, no leading zero): most addresses of an
# inventory, checked without building an address object for each (a province has 100,000).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def is_ip(text: str) -> bool:
    if _IPV4.fullmatch(text):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_dns_name(text: str) -> bool:
    """Looser than a host name: service labels (`_sip._tcp`) and wildcards are names too."""
    name = text.removesuffix(".")
    return 0 < len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in name.split("."))


def is_address(text: str) -> bool:
    """An IPv4/IPv6 literal, or a syntactically valid DNS host name (RFC 1123; an all-numeric
    last label is refused, so that a mistyped IPv4 like 10.0.0.300 is not taken for a name)."""
    if _IPV4.fullmatch(text):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return True
    name = text.removesuffix(".")
    labels = name.split(".")
    return (
        0 < len(name) <= 253
        and all(_HOST_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )


def is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False
