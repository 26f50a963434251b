"""SNMP engine on gufo_snmp: BER encoding and decoding in Rust, one UDP socket per agent.

Why this engine is the default: it spends about a twentieth of pysnmp's CPU per GET
(bench/snmp_bench.py), and the CPU per poll is what decides whether one core carries a
province. gufo_snmp is a client only; traps stay on pysnmp (`monitor.probes.snmp.trap_receiver`).

A session is a socket bound to one agent. For v1/v2c a fresh one is opened per request: it
costs about 11 us of CPU (measured against keeping one), holds no file descriptor between
polls (20,000 agents would otherwise need 20,000 of them) and can never read a late reply
meant for an earlier request. For SNMPv3 the session also holds the agent's engine id, boots
and time, which would cost a discovery round trip per poll: those sessions are kept, dropped
after a failed request (a re-resolved name or a rebooted agent gets a fresh one) and beyond a
bound derived from the file-descriptor limit, least recently used first. Requests on one
session never overlap: replies are read from its socket, and two readers would steal each
other's.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from gufo.snmp import (
    Aes128Key,
    Aes192Key,
    Aes256Key,
    BaseAuthKey,
    BasePrivKey,
    DesKey,
    Md5Key,
    Sha1Key,
    Sha224Key,
    Sha256Key,
    Sha384Key,
    Sha512Key,
    SnmpAuthError,
    SnmpDecodeError,
    SnmpVersion,
    User,
)
from gufo.snmp import (
    SnmpError as GufoError,
)
from gufo.snmp.aio import SnmpSession

from monitor.config.credentials import SnmpCredential
from monitor.probes.measure import resolve
from monitor.probes.snmp.engine import (
    MAX_REPETITIONS,
    SnmpError,
    SnmpTarget,
    SnmpValue,
    WalkGuard,
    WalkResult,
)

_AUTH_KEYS: dict[str, type[BaseAuthKey]] = {
    "MD5": Md5Key,
    "SHA": Sha1Key,
    "SHA-224": Sha224Key,
    "SHA-256": Sha256Key,
    "SHA-384": Sha384Key,
    "SHA-512": Sha512Key,
}
_PRIV_KEYS: dict[str, type[BasePrivKey]] = {
    "DES": DesKey,
    "AES": Aes128Key,
    "AES-192": Aes192Key,
    "AES-256": Aes256Key,
}
_VERSIONS = {"1": SnmpVersion.v1, "2c": SnmpVersion.v2c, "3": SnmpVersion.v3}

#: An SNMPv3 agent accepts a request only within 150 s of its own clock (RFC 3414 3.2.7);
#: the session re-reads boots and time well before that.
_V3_REFRESH_SECONDS = 100.0
#: File descriptors kept free for everything else (ledger, HTTP, logs, the trap socket).
_FD_RESERVE = 512

_SessionKey = tuple[str, int, SnmpCredential, float]
T = TypeVar("T")


@dataclass(slots=True)
class _Session:
    session: SnmpSession
    v3: bool
    refreshed: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard one; return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class GufoEngine:
    name = "gufo"

    def __init__(self, max_sessions: int | None = None) -> None:
        if max_sessions is None:
            max_sessions = max(64, raise_fd_limit() - _FD_RESERVE)
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[_SessionKey, _Session] = OrderedDict()

    async def close(self) -> None:
        self._sessions.clear()  # each socket closes when its session is collected

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpValue]:
        wanted = list(oids)

        async def once(session: SnmpSession) -> dict[str, SnmpValue]:
            answer = await session.get_many(wanted)
            return {oid: value for oid, value in answer.items() if value is not None}

        return await self._ask(target, once)

    async def walk(self, target: SnmpTarget, oid: str, max_rows: int) -> WalkResult:
        async def once(session: SnmpSession) -> WalkResult:
            guard = WalkGuard(oid, max_rows)  # afresh at each attempt
            async for row_oid, value in session.fetch(oid):
                if not guard.take(row_oid, value):
                    break
            return guard.result()

        return await self._ask(target, once)

    async def _ask(self, target: SnmpTarget, once: Callable[[SnmpSession], Awaitable[T]]) -> T:
        """One request with its retries: a timeout is tried again up to `target.retries`
        times; any other failure, or the last timeout, drops the session and raises."""
        entry = await self._session(target)
        async with entry.lock:
            attempt = 0
            while True:
                try:
                    await self._refresh(entry)
                    return await once(entry.session)
                except TimeoutError:
                    if attempt < target.retries:
                        attempt += 1
                        continue
                    self._drop(target)
                    raise SnmpError("timeout", f"no answer in {target.timeout:g} s") from None
                except Exception as exc:
                    self._drop(target)
                    raise _error(exc) from None

    async def _refresh(self, entry: _Session) -> None:
        """SNMPv3: discover the engine id, boots and time; again before they go stale."""
        if entry.v3 and time.monotonic() - entry.refreshed > _V3_REFRESH_SECONDS:
            await entry.session.refresh()
            entry.refreshed = time.monotonic()

    async def _session(self, target: SnmpTarget) -> _Session:
        if target.credential.version != "3":
            return _Session(_open(await _resolve(target.address), target), False)
        key = (target.address, target.port, target.credential, target.timeout)
        entry = self._sessions.get(key)
        if entry is not None:
            self._sessions.move_to_end(key)
            return entry
        address = await _resolve(target.address)
        entry = _Session(_open(address, target), target.credential.version == "3")
        entry = self._sessions.setdefault(key, entry)  # a concurrent opener may have won
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)
        return entry

    def _drop(self, target: SnmpTarget) -> None:
        self._sessions.pop((target.address, target.port, target.credential, target.timeout), None)


def _open(address: str, target: SnmpTarget) -> SnmpSession:
    credential = target.credential
    version = _VERSIONS[credential.version]
    if credential.version != "3":
        return SnmpSession(
            address,
            target.port,
            community=credential.community.reveal() if credential.community else "",
            version=version,
            timeout=target.timeout,
            max_repetitions=MAX_REPETITIONS,
        )
    return SnmpSession(
        address,
        target.port,
        user=_user(credential),
        version=version,
        timeout=target.timeout,
        max_repetitions=MAX_REPETITIONS,
    )


def _user(credential: SnmpCredential) -> User:
    auth = priv = None
    if credential.auth_protocol is not None and credential.auth_key is not None:
        auth = _AUTH_KEYS[credential.auth_protocol](credential.auth_key.reveal().encode())
        if credential.priv_protocol is not None and credential.priv_key is not None:
            priv = _PRIV_KEYS[credential.priv_protocol](credential.priv_key.reveal().encode())
    return User(credential.user, auth_key=auth, priv_key=priv)


async def _resolve(address: str) -> str:
    try:
        return await resolve(address, socket.SOCK_DGRAM)
    except OSError as exc:
        raise SnmpError("resolve", f"cannot resolve {address!r}: {exc.strerror or exc}") from None


def _error(exc: BaseException) -> SnmpError:
    """gufo_snmp's exceptions as our reasons. Messages are gufo's own words: they never hold
    the community or a key."""
    if isinstance(exc, SnmpAuthError):
        return SnmpError("auth", str(exc) or "authentication failed")
    if isinstance(exc, SnmpDecodeError):
        return SnmpError("malformed", str(exc) or "undecodable answer")
    if isinstance(exc, GufoError):
        return SnmpError("error_status", str(exc) or type(exc).__name__)
    if isinstance(exc, SnmpError):
        return exc
    if isinstance(exc, OSError):
        return SnmpError("request", exc.strerror or type(exc).__name__)
    return SnmpError("internal", type(exc).__name__)
