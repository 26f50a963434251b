"""The small interface every SNMP client engine offers: GET many OIDs, bulk-walk one subtree.

Two engines implement it (`gufo_engine.GufoEngine`, `pysnmp_engine.PysnmpEngine`, chosen
by engines.py); the poller, the profiles and the tests only see this module. Values are
handed back as plain Python values, the same for both engines, because gufo_snmp does not keep
SNMP types: every integer type (INTEGER, Counter32/64, Gauge32, TimeTicks, Unsigned32) is an
`int`, an OCTET STRING or Opaque is `bytes`, an OBJECT IDENTIFIER or IpAddress is a dotted
`str`. What a value means (a counter of 32 bits, hundredths of a second...) is said by the
device profile, as snmp_exporter's generator says it in its modules.

A value the agent does not have (noSuchObject, noSuchInstance, endOfMibView) is simply absent
from the answer: a missing value is not a failed poll. A failed request raises `SnmpError`
with a short fixed `reason` (a metric label) and a detail for people; neither ever holds a
community or a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor.config.credentials import SnmpCredential
from monitor.probes.measure import ProbeFailed

SnmpValue = int | float | str | bytes

#: Rows per GETBULK response asked of the agent during walks.
MAX_REPETITIONS = 25


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    """One agent and how to ask it. `timeout` is per attempt; `retries` extra attempts."""

    address: str
    port: int
    credential: SnmpCredential
    timeout: float = 2.0
    retries: int = 1


@dataclass(frozen=True, slots=True)
class WalkResult:
    """The rows of a subtree in OID order, and whether the walk was cut short (`max_rows`
    reached, or the agent returned OIDs that did not increase: a broken or hostile agent)."""

    rows: list[tuple[str, SnmpValue]]
    truncated: bool = False
    problem: str | None = None


class SnmpError(ProbeFailed):
    """A request that got no usable answer. `reason` is one of: timeout, auth, malformed,
    error_status, resolve, request, internal."""


class SnmpEngine(Protocol):
    """What the poller needs of an SNMP client library."""

    name: str

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """GET `oids` (numeric, no leading dot) in one request; answered values by OID."""
        ...

    async def walk(self, target: SnmpTarget, oid: str, max_rows: int) -> WalkResult:
        """Every instance under `oid` (GETBULK on v2c/v3, GETNEXT on v1), at most `max_rows`."""
        ...

    async def close(self) -> None:
        """Release sockets (asyncio closes a transport on the loop's next turn, so this is
        awaited in the loop that used them); the engine is not used after this."""
        ...


def oid_key(oid: str) -> tuple[int, ...]:
    """An OID as numbers, for ordering (string order puts .10 before .9)."""
    return tuple(int(part) for part in oid.split("."))


class WalkGuard:
    """Shared walk discipline: stop at `max_rows`, and stop when an agent hands back an OID
    that does not increase (an agent that loops would otherwise be walked forever)."""

    def __init__(self, oid: str, max_rows: int) -> None:
        self.prefix = oid + "."
        self.max_rows = max_rows
        self.rows: list[tuple[str, SnmpValue]] = []
        self._last: tuple[int, ...] = oid_key(oid)
        self.truncated = False
        self.problem: str | None = None

    def take(self, oid: str, value: SnmpValue | None) -> bool:
        """Record one row; False when the walk must stop (end of subtree or a limit)."""
        if not oid.startswith(self.prefix):
            return False
        try:
            key = oid_key(oid)
        except ValueError:
            self.truncated, self.problem = True, "malformed OID in walk"
            return False
        if key <= self._last:
            self.truncated, self.problem = True, "agent returned OIDs out of order"
            return False
        self._last = key
        if len(self.rows) >= self.max_rows:
            self.truncated, self.problem = True, f"more than {self.max_rows} rows"
            return False
        if value is not None:
            self.rows.append((oid, value))
        return True

    def result(self) -> WalkResult:
        return WalkResult(self.rows, self.truncated, self.problem)
