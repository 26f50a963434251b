"""The probes for what speaks no SNMP (ICMP, TCP, HTTP, DNS), wired into the daemon together.

They share the daemon's poll defaults (timeout, and retries where a retry makes sense: DNS over
UDP) and take new ones on a reload, as the SNMP poller does. None of them holds a resource
between polls, so there is nothing to close.
"""

from __future__ import annotations

from monitor.config.settings import PollSettings
from monitor.core.model import DnsProbe, HttpProbe, IcmpProbe, TcpProbe
from monitor.probes.reach.dns import DnsPoller
from monitor.probes.reach.http import HttpPoller
from monitor.probes.reach.icmp import IcmpPoller
from monitor.probes.reach.tcp import TcpPoller
from monitor.probes.router import ProbeRouter


class ReachabilityPollers:
    def __init__(self, poll: PollSettings) -> None:
        self.icmp = IcmpPoller(poll.timeout_seconds)
        self.tcp = TcpPoller(poll.timeout_seconds)
        self.http = HttpPoller(poll.timeout_seconds)
        self.dns = DnsPoller(poll.timeout_seconds, poll.retries)

    def register(self, router: ProbeRouter) -> None:
        router.register(IcmpProbe, self.icmp)
        router.register(TcpProbe, self.tcp)
        router.register(HttpProbe, self.http)
        router.register(DnsProbe, self.dns)

    def configure(self, poll: PollSettings) -> None:
        """A reload's new defaults; polls in flight finish with the old ones."""
        self.icmp.configure(poll.timeout_seconds)
        self.tcp.configure(poll.timeout_seconds)
        self.http.configure(poll.timeout_seconds)
        self.dns.configure(poll.timeout_seconds, poll.retries)
