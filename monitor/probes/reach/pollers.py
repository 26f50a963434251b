"""The probes for what speaks no SNMP (ICMP, TCP, HTTP, DNS), made together for the router.

None of them holds a resource between polls, so there is nothing to close.
"""

from __future__ import annotations

from typing import Any

from monitor.config.settings import PollSettings
from monitor.probes.measure import ProbePoller
from monitor.probes.reach.dns import DnsPoller
from monitor.probes.reach.http import HttpPoller
from monitor.probes.reach.icmp import IcmpPoller
from monitor.probes.reach.tcp import TcpPoller


def reach_pollers(settings: PollSettings) -> list[ProbePoller[Any]]:
    return [IcmpPoller(settings), TcpPoller(settings), HttpPoller(settings), DnsPoller(settings)]
