"""Real peers for the reachability probes, on 127.0.0.1: an HTTP(S) server, a TCP listener, a
closed port, dnsmasq, and test certificates made with `cryptography`.

Each starts on a port the kernel picked and stops cleanly (threads joined, sockets closed,
processes reaped). Nothing here talks to any address but loopback.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PAGE = "<html><body><h1>Cổng thông tin điện tử huyện Điện Biên</h1></body></html>"
SLOW_SECONDS = 0.5  # how long /slow takes to answer


class _Handler(BaseHTTPRequestHandler):
    """/ the portal page, /slow the same late, /status/NNN that status, /redirect to /."""

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
        if self.path.startswith("/status/"):
            self._send(int(self.path.rsplit("/", 1)[1]), "status page")
        elif self.path == "/redirect":
            self.send_response(301)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(200, PAGE)

    def _send(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle(self) -> None:
        # a probe cancelled mid-answer (the daemon stopping) closes its end: not an error here
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def log_message(self, format: str, *args: object) -> None:
        pass


class HttpPeer:
    """A threaded HTTP server; HTTPS when given a server certificate and key."""

    def __init__(self, tls: TlsFiles | None = None) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )

    def __enter__(self) -> HttpPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class TcpListener:
    """Accepts connections and closes them at once; `close()` makes the port refuse."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def __enter__(self) -> TcpListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port bound but never listening: connecting is refused, and nothing else can take it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def silent_udp_port() -> Iterator[int]:
    """A UDP port that receives and never answers: a DNS server that timed out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# --- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path
    not_after: datetime.datetime


def make_tls(directory: Path, days_left: float, name: str = "site") -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1 signed by it, expiring `days_left` days
    from now (negative: already expired)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "districtmon test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + datetime.timedelta(days=days_left)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        directory / f"{name}-ca.pem",
        directory / f"{name}-cert.pem",
        directory / f"{name}-key.pem",
        not_after.replace(microsecond=0),
    )
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# --- dnsmasq ---------------------------------------------------------------------------------

DOMAIN = "dienbien.test"
RECORDS = (
    f"--host-record=portal.{DOMAIN},127.4.0.1",
    f"--host-record=dichvucong.{DOMAIN},127.4.0.2,::1",
    f"--cname=www.{DOMAIN},portal.{DOMAIN}",
    f"--mx-host={DOMAIN},mail.{DOMAIN},10",
    f"--txt-record={DOMAIN},v=spf1 -all",
)


def _free_port_for_udp_and_tcp() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no port free for both UDP and TCP")


class Dnsmasq:
    """Debian's dnsmasq as an authoritative-looking server for dienbien.test on 127.0.0.1:
    names under the domain it does not know get NXDOMAIN, others REFUSED; no upstream, no
    /etc/hosts, no config file."""

    def __init__(self, log: Path) -> None:
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        self.port = _free_port_for_udp_and_tcp()
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                f"--port={self.port}",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--pid-file=",
                "--log-facility=-",
                f"--local=/{DOMAIN}/",
                *RECORDS,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> Dnsmasq:
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import dns.message
        import dns.query

        deadline = time.monotonic() + 10
        query = dns.message.make_query(f"portal.{DOMAIN}", "A")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {self._log.name}")
            with contextlib.suppress(Exception):
                dns.query.udp(query, "127.0.0.1", timeout=0.2, port=self.port)
                return
            time.sleep(0.05)
        raise RuntimeError("dnsmasq did not answer within 10 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()
