"""What every poller shares: one poll's clocks, its failures, and the catch of the unexpected.

A poll is dated on the wall clock (what the ledger stores) and timed on the monotonic clock
(what durations are). It ends in an answer or in a failure with a fixed reason word (a metric
label) and a detail for people. A fault of ours or of a library must cost one poll, never the
daemon: whatever a poller raises is an `internal` failure, logged with its traceback.

Each poller says only what is its own: which probe type it takes and how it measures
(`ProbePoller.measure`); its defaults come from `poll:` in districtmon.yaml, through
`configure`, the same way for every probe type.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from monitor.config.settings import PollSettings
from monitor.core.model import Observation, Sample, Site
from monitor.core.reasons import Finding, joined

log = logging.getLogger(__name__)


class ProbeFailed(Exception):
    """A poll that got no usable answer. `reason` is a short fixed word (a metric label);
    `detail` is for people, and never holds a secret."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Poll:
    """One poll under way: when it began, its timeout, and the values measured so far (kept
    in a failed observation too: an HTTP status or an ICMP loss says why)."""

    site: str
    probe: str
    timeout: float
    wall: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    values: dict[str, float | str] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def failed(self, reason: str, detail: str) -> Observation:
        return Observation(
            self.site,
            self.wall,
            False,
            self.elapsed(),
            self.values,
            error=f"{self.probe} {reason}: {detail}",
            error_reason=reason,
            probe=self.probe,
        )

    def answered(
        self,
        *,
        findings: Sequence[Finding] = (),
        samples: Sequence[Sample] = (),
        duration: float | None = None,
    ) -> Observation:
        """An answer; `findings` say why it is unhealthy (each a code and a text), if it is."""
        reason, codes = joined(tuple(findings))
        return Observation(
            self.site,
            self.wall,
            True,
            self.elapsed() if duration is None else duration,
            self.values,
            probe=self.probe,
            samples=tuple(samples),
            degraded_reason=reason,
            codes=codes,
        )


class TimedProbe(Protocol):
    @property
    def timeout_seconds(self) -> float | None: ...


P = TypeVar("P", bound=TimedProbe)


class ProbePoller(Generic[P]):
    """A poller for one probe type: `kind` is the probe's class, `name` its word in metrics
    and messages (snmp, icmp, tcp, http, dns)."""

    def __init__(self, kind: type[P], name: str, settings: PollSettings) -> None:
        self.kind = kind
        self.name = name
        self.settings = settings

    def configure(self, settings: PollSettings) -> None:
        """New defaults (a reload); polls in flight finish with the old ones."""
        self.settings = settings

    async def poll(self, site: Site) -> Observation:
        probe = site.probe
        if not isinstance(probe, self.kind):
            raise TypeError(f"site {site.id}: not a {self.name} probe")  # the router's mistake
        timeout = probe.timeout_seconds
        poll = Poll(
            site.id, self.name, self.settings.timeout_seconds if timeout is None else timeout
        )
        try:
            return await self.measure(site, probe, poll)
        except ProbeFailed as failure:
            return poll.failed(failure.reason, failure.detail)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("site=%s %s probe raised", site.id, self.name)
            return poll.failed("internal", type(exc).__name__)

    async def measure(self, site: Site, probe: P, poll: Poll) -> Observation:
        """Ask the site; return the observation, or raise ProbeFailed."""
        raise NotImplementedError


async def resolve(address: str, socktype: int) -> str:
    """An IP literal as is; a host name through the loop's resolver (never blocking the loop).
    Raises OSError (socket.gaierror) when the name does not resolve."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        return address
    infos = await asyncio.get_running_loop().getaddrinfo(address, None, type=socktype)
    return str(infos[0][4][0])
