"""Answers the shipped inventory's web and TCP sites on their loopback addresses, for the demo.

`./dev demo` runs it beside the SNMP agents: every `http` site gets a page that shows its name
(what its `body_matches` looks for), served over TLS for https URLs with a self-signed
certificate that expires in 10 days, so a site warning 30 days ahead shows degraded; every
`tcp` site gets a listener (an SMTP greeting on port 25). Sites in SILENT are left unanswered
so that the demo shows a service down. ICMP sites need nothing: 127.x.y.z answers pings by
itself. Ports below 1024 need root, as the demo has; without it those sites show down.

Usage: python -m monitor.simulator.services CONFIG_DIR WORK_DIR   (runs until killed)
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import sys
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.config.load import load_config
from monitor.core.model import HttpProbe, Site, TcpProbe

SILENT = {"vanban-huyen"}
CERT_DAYS = 10


async def answer_http(
    site: Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        async with asyncio.timeout(5):
            await reader.readuntil(b"\r\n\r\n")  # the request head; the path does not matter
        body = f"<!doctype html><title>{site.name}</title><h1>{site.name}</h1>\n".encode()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def answer_tcp(port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        if port == 25:
            writer.write(b"220 mail.dienbien.example ESMTP districtmon demo\r\n")
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def self_signed(directory: Path, addresses: list[str]) -> ssl.SSLContext:
    """A certificate for `addresses`, valid for CERT_DAYS more days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "districtmon demo")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=80))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "demo-cert.pem", directory / "demo-key.pem"
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


async def main(config_dir: Path, work_dir: Path) -> None:
    sites = load_config(config_dir).sites.values()
    https_hosts = [
        urlsplit(s.probe.url).hostname or ""
        for s in sites
        if isinstance(s.probe, HttpProbe) and s.probe.url.startswith("https:")
    ]
    tls = self_signed(work_dir / "tls", https_hosts) if https_hosts else None
    servers = []
    for site in sites:
        probe = site.probe
        if site.id in SILENT:
            print(f"{site.id}: left unanswered (shows down)")
            continue
        if isinstance(probe, HttpProbe):
            url = urlsplit(probe.url)
            secure = url.scheme == "https"
            host, port = url.hostname or "", url.port or (443 if secure else 80)
            handler = partial(answer_http, site)
            context = tls if secure else None
        elif isinstance(probe, TcpProbe):
            host, port = probe.address, probe.port
            handler, context = partial(answer_tcp, port), None
        else:
            continue
        try:
            servers.append(await asyncio.start_server(handler, host, port, ssl=context))
        except OSError as exc:
            print(f"{site.id}: cannot listen on {host}:{port} ({exc.strerror}): shows down")
            continue
        print(f"{site.id}: answering on {host}:{port}")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
