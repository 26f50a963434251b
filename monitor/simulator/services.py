"""The TCP and HTTP(S) sites of the inventory, served by the simulator while the world says they
answer, and refused while it says they do not.

Each such site gets a listening socket on the address and port its probe names: an `http` site
a small web server whose page shows what its `body_matches` looks for (TLS with a self-signed
certificate for https URLs), a `tcp` site a plain listener (an SMTP greeting on port 25). When
the site stops answering (it dies, loses its link or power, or a site it hangs off does) the
listener is closed at once and open connections are reset: a probe gets "connection refused"
until the world brings the site back. Listening sockets are plain non-blocking sockets watched
by the event loop, so opening and closing happen in the same loop turn as the world's change.

Several http sites may share one address and port (one server, several paths): the listener is
open while any of them answers, and a request to the path of a site that does not answer is
reset. A slow site (`slow` action) delays its HTTP answers by its delay; a TCP connect cannot
be slowed (the kernel accepts it).

Ports below 1024 need root (or CAP_NET_BIND_SERVICE): a site whose port cannot be bound stops
the simulator before it starts, naming the site, rather than being recorded as answering while
nothing listens. Only loopback literals are served, as for the SNMP agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import html
import ipaddress
import logging
import re
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.core.model import HttpProbe, TcpProbe
from monitor.simulator.agent import SimulatorError
from monitor.simulator.world import SiteSim, World

log = logging.getLogger(__name__)

CERT_DAYS = 397  # the longest a public CA may issue: no probe's expiry warning fires
REQUEST_TIMEOUT = 5.0
BACKLOG = 128


@dataclass(eq=False)
class _Endpoint:
    """One address and port, and the sites served on it."""

    host: str
    port: int
    family: socket.AddressFamily
    http: bool
    tls: bool
    sites: list[SiteSim] = field(default_factory=list)
    sock: socket.socket | None = None
    transports: set[asyncio.BaseTransport] = field(default_factory=set)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def wanted(self) -> bool:
        return any(sim.reachable for sim in self.sites)


class Services:
    """Listeners for every tcp and http site, opened and closed as the world changes."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.endpoints: dict[tuple[str, int], _Endpoint] = {}
        self._by_site: dict[str, _Endpoint] = {}
        self._tls: ssl.SSLContext | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refused = 0  # requests reset because their site does not answer
        problems: list[str] = []
        for sim in world.sites.values():
            probe = sim.site.probe
            if isinstance(probe, HttpProbe):
                url = urlsplit(probe.url)
                secure = url.scheme == "https"
                where = (url.hostname or "", url.port or (443 if secure else 80))
                self._add(sim, where, http=True, tls=secure, problems=problems)
            elif isinstance(probe, TcpProbe):
                self._add(
                    sim, (probe.address, probe.port), http=False, tls=False, problems=problems
                )
        if problems:
            raise SimulatorError(problems)
        world.change_listeners.append(self._on_change)

    def _add(
        self, sim: SiteSim, where: tuple[str, int], *, http: bool, tls: bool, problems: list[str]
    ) -> None:
        host, port = where
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            problems.append(
                f"site '{sim.id}': address {host!r} is a host name; the simulator serves "
                "loopback IP literals only (127.x.y.z or ::1)"
            )
            return
        if not address.is_loopback:
            problems.append(
                f"site '{sim.id}': address {address} is not a loopback address; the simulator "
                "serves 127.x.y.z and ::1 only, so that it sends nothing off the machine"
            )
            return
        key = (str(address), port)
        endpoint = self.endpoints.get(key)
        if endpoint is None:
            family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            endpoint = self.endpoints[key] = _Endpoint(str(address), port, family, http, tls)
        elif not (http and endpoint.http and tls == endpoint.tls):
            problems.append(
                f"site '{sim.id}': {address} port {port} is already the address of site "
                f"'{endpoint.sites[0].id}' (only http sites of one scheme may share one)"
            )
            return
        endpoint.sites.append(sim)
        self._by_site[sim.id] = endpoint

    def start(self) -> None:
        """Open the listener of every site that answers; SimulatorError (nothing left open)
        if one cannot be bound."""
        self._loop = asyncio.get_running_loop()
        if any(e.tls for e in self.endpoints.values()):
            self._tls_dir = tempfile.TemporaryDirectory(prefix="districtmon-sim-tls-")
            addresses = sorted({e.host for e in self.endpoints.values() if e.tls})
            self._tls = self_signed(Path(self._tls_dir.name), addresses)
        problems = []
        for endpoint in self.endpoints.values():
            if endpoint.wanted():
                try:
                    self._open(endpoint)
                except OSError as exc:
                    problems.append(_bind_problem(endpoint, exc))
        if problems:
            self._close_all()
            raise SimulatorError(problems)

    async def aclose(self) -> None:
        self._close_all()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None

    def listening(self) -> int:
        return sum(1 for e in self.endpoints.values() if e.sock is not None)

    # --- following the world ------------------------------------------------------------------

    def _on_change(self, sim: SiteSim) -> None:
        endpoint = self._by_site.get(sim.id)
        if endpoint is None or self._loop is None:
            return
        wanted = endpoint.wanted()
        if wanted and endpoint.sock is None:
            try:
                self._open(endpoint)
            except OSError as exc:  # someone took the port meanwhile: say so, loudly
                log.error(
                    "%s: the world says it answers, but nothing does", _bind_problem(endpoint, exc)
                )
        elif not wanted and endpoint.sock is not None:
            self._close(endpoint)

    def _open(self, endpoint: _Endpoint) -> None:
        sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((endpoint.host, endpoint.port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        endpoint.sock = sock
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._accept, endpoint)

    def _close(self, endpoint: _Endpoint) -> None:
        """Stop listening and reset what is open: the site is gone."""
        sock, endpoint.sock = endpoint.sock, None
        if sock is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()
        for transport in list(endpoint.transports):
            _abort(transport)
        endpoint.transports.clear()

    def _close_all(self) -> None:
        for endpoint in self.endpoints.values():
            self._close(endpoint)

    def _accept(self, endpoint: _Endpoint) -> None:
        sock = endpoint.sock
        while sock is not None:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("accept on %s: %s", endpoint.where, exc)
                return
            task = asyncio.create_task(self._serve(endpoint, conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, endpoint: _Endpoint, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self._tls if endpoint.tls else None
            )
        except (OSError, ssl.SSLError, TimeoutError):
            conn.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        endpoint.transports.add(transport)
        try:
            if endpoint.http:
                await self._answer_http(endpoint, reader, writer)
            elif endpoint.port == 25:
                writer.write(b"220 mail.dienbien.example ESMTP districtmon-sim\r\n")
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            endpoint.transports.discard(transport)
            writer.close()

    async def _answer_http(
        self, endpoint: _Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        path = urlsplit(parts[1].decode("latin-1")).path if len(parts) > 1 else "/"
        sim = _site_for(endpoint, path or "/")
        if not sim.reachable:
            self.refused += 1
            _abort(writer.transport)
            return
        if sim.slow_delay > 0:
            await asyncio.sleep(sim.slow_delay)
        probe = sim.site.probe
        assert isinstance(probe, HttpProbe)
        status = (
            200 if not probe.expect_status or 200 in probe.expect_status else probe.expect_status[0]
        )
        writer.write(http_page(sim.site.name, probe.body_matches, status))
        await writer.drain()


def _site_for(endpoint: _Endpoint, path: str) -> SiteSim:
    """The site whose URL path is the request's, else the first on the endpoint."""
    for sim in endpoint.sites:
        probe = sim.site.probe
        if isinstance(probe, HttpProbe) and (urlsplit(probe.url).path or "/") == path:
            return sim
    return endpoint.sites[0]


def http_page(name: str, body_matches: str | None, status: int) -> bytes:
    """A page that shows the site's name, and the text its probe looks for when that is plain
    text (a pattern that matches itself)."""
    shown = [html.escape(name)]
    if body_matches and re.search(body_matches, body_matches) and body_matches not in name:
        shown.append(html.escape(body_matches))
    body = (
        f"<!doctype html><title>{shown[0]}</title>" + "".join(f"<h1>{s}</h1>" for s in shown) + "\n"
    ).encode()
    reason = {200: "OK", 204: "No Content"}.get(status, "Status")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _abort(transport: asyncio.BaseTransport) -> None:
    with contextlib.suppress(Exception):
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()


def _bind_problem(endpoint: _Endpoint, exc: OSError) -> str:
    names = ", ".join(f"'{s.id}'" for s in endpoint.sites)
    hint = " (ports below 1024 need root)" if endpoint.port < 1024 else ""
    return f"site {names}: cannot listen on {endpoint.where}: {exc.strerror or exc}{hint}"


def self_signed(directory: Path, addresses: list[str]) -> ssl.SSLContext:
    """A server context with a certificate for `addresses`, valid CERT_DAYS more days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "districtmon simulator")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context
