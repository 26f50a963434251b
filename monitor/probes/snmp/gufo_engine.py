"""SNMP engine on gufo_snmp: BER encoding and decoding in Rust, one UDP socket per agent.

Why this engine is the default: it spends about a twentieth of pysnmp's CPU per GET
(bench/snmp_bench.py), and the CPU per poll is what decides whether one core carries a
province. gufo_snmp is a client only; traps stay on pysnmp (`monitor.probes.snmp.trap_receiver`).

A session is a socket connected to one agent, and it is kept between polls, for every version:
opening one per request (a socket, a connect, an epoll registration and their undoing) was
about a fifth of the daemon's event loop. Each kept session registers its socket with the event
loop once, for its life, instead of once per request (`_KeptSession`). A late reply to a request
that timed out cannot be taken for the answer to the next one: gufo's core drops any datagram
whose request id (and community) is not the one it waits for, and a datagram that comes while
nothing waits is read and dropped. For SNMPv3 the session also holds the agent's engine id,
boots and time, which would otherwise cost a discovery round trip per poll. A session is
dropped after a failed request (a re-resolved name or a rebooted agent gets a fresh one), and
beyond a bound derived from the file-descriptor limit, least recently used first (20,000 agents
keep 20,000 sockets where the limit allows; the daemon raises its soft limit to the hard one).
Requests on one session never overlap: they wait for each other on its lock, since one socket
waits for one request id at a time. `close()` closes every socket at once.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

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

_SessionKey = tuple[str, int, SnmpCredential]
T = TypeVar("T")


class _KeptSession(SnmpSession):
    """An SnmpSession whose socket stays registered with the event loop from open to close.

    gufo's own `_recv` adds a reader before each wait and removes it after (two epoll_ctl calls
    and the loop's bookkeeping per request); here the reader is added once, and a readable
    socket wakes whoever waits. A datagram that arrives while nobody waits (the late answer to
    a request that timed out or was cancelled) is read and dropped at once, so that the
    level-triggered loop does not call back forever. Everything else (encoding, request ids,
    GETBULK iteration, SNMPv3 discovery) is gufo's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = self._timeout  # per request: set by the engine before each one
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._loop.add_reader(self._fd, self._readable)
        self._open = True

    def close(self) -> None:
        """Unregister the socket and close it now. gufo has no close: its socket closes when
        the session is collected, which a traceback holding a frame can put off for long. So
        the descriptor is pointed at /dev/null instead (dup2 closes the socket atomically);
        the number stays gufo's, closed by gufo when it lets go, never reused meanwhile."""
        if not self._open:
            return
        self._open = False
        self._loop.remove_reader(self._fd)
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            os.dup2(null, self._fd)
        finally:
            os.close(null)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(OSError("session closed"))

    def _readable(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        while True:  # nobody waits: a late or stray datagram, dropped unread
            try:
                os.read(self._fd, 65536)
            except OSError:  # BlockingIOError: drained; or a pending ICMP error, now cleared
                return

    async def _recv(self, receiver: Callable[[], T]) -> T:
        deadline = self._loop.time() + self.timeout
        while True:
            if not self._open:
                raise OSError("session closed")
            waiter = self._loop.create_future()
            self._waiter = waiter
            timer = self._loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
                return receiver()
            except BlockingIOError:
                continue  # a datagram that was not our answer: gufo dropped it; keep waiting
            finally:
                timer.cancel()
                self._waiter = None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


@dataclass(slots=True)
class _Session:
    session: _KeptSession
    v3: bool
    refreshed: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    retired: bool = False  # dropped from the pool: closed as soon as no request holds it

    def retire(self) -> None:
        self.retired = True
        if not self.lock.locked():
            self.session.close()


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
        self._closed = False

    async def close(self) -> None:
        """Close every socket now (a request still waiting on one fails at once)."""
        self._closed = True
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for entry in sessions:
            entry.retired = True
            entry.session.close()

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
        while True:
            entry = await self._session(target)
            async with entry.lock:
                if entry.retired:
                    continue  # dropped while this request waited for it: take a fresh one
                try:
                    return await self._attempts(target, entry, once)
                finally:
                    if entry.retired:
                        entry.session.close()

    async def _attempts(
        self, target: SnmpTarget, entry: _Session, once: Callable[[SnmpSession], Awaitable[T]]
    ) -> T:
        attempt = 0
        while True:
            try:
                entry.session.timeout = target.timeout
                await self._refresh(entry)
                return await once(entry.session)
            except TimeoutError:
                if attempt < target.retries:
                    attempt += 1
                    continue
                self._drop(target, entry)
                raise SnmpError("timeout", f"no answer in {target.timeout:g} s") from None
            except Exception as exc:
                self._drop(target, entry)
                raise _error(exc) from None

    async def _refresh(self, entry: _Session) -> None:
        """SNMPv3: discover the engine id, boots and time; again before they go stale."""
        if entry.v3 and time.monotonic() - entry.refreshed > _V3_REFRESH_SECONDS:
            await entry.session.refresh()
            entry.refreshed = time.monotonic()

    async def _session(self, target: SnmpTarget) -> _Session:
        if self._closed:
            raise SnmpError("internal", "the SNMP engine is closed")
        key = (target.address, target.port, target.credential)
        entry = self._sessions.get(key)
        if entry is not None:
            self._sessions.move_to_end(key)
            return entry
        address = await _resolve(target.address)
        entry = self._sessions.get(key)  # a concurrent opener may have won while resolving
        if entry is not None:
            return entry
        try:
            session = _open(address, target)
        except Exception as exc:  # no socket to be had (out of file descriptors...)
            raise _error(exc) from None
        entry = _Session(session, target.credential.version == "3")
        self._sessions[key] = entry
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)[1].retire()
        return entry

    def _drop(self, target: SnmpTarget, entry: _Session) -> None:
        key = (target.address, target.port, target.credential)
        if self._sessions.get(key) is entry:
            del self._sessions[key]
        entry.retired = True  # closed when the request that failed lets go of it


def _open(address: str, target: SnmpTarget) -> _KeptSession:
    credential = target.credential
    version = _VERSIONS[credential.version]
    if credential.version != "3":
        return _KeptSession(
            address,
            target.port,
            community=credential.community.reveal() if credential.community else "",
            version=version,
            max_repetitions=MAX_REPETITIONS,
        )
    return _KeptSession(
        address,
        target.port,
        user=_user(credential),
        version=version,
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
