"""HTTP(S) probe on httpx: status, body and header match, response time, certificate expiry.

Each poll opens its own client and connection (nothing pooled between polls): a monitor must
see what a citizen's browser sees, connect and TLS handshake included, not a warm keep-alive
connection. TLS contexts, the costly part, are built once per trust setting and shared.
Proxies and netrc from the environment are ignored (`trust_env=False`): the probe measures the
service, not a proxy in front of the daemon.

The certificate is read in binary form and parsed with `cryptography`, so that its expiry is
known even when verification is off (`verify_tls: false`); with verification on, an expired or
untrusted certificate fails the handshake and the site is down (reason `tls`), as a browser
would refuse it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl

import httpx
from cryptography import x509

from monitor import __version__
from monitor.config.settings import PollSettings
from monitor.core.model import HttpProbe, Observation, Site
from monitor.core.reasons import Finding
from monitor.probes.measure import Poll, ProbeFailed, ProbePoller

log = logging.getLogger(__name__)
# httpx logs every request at INFO (URL included) and httpcore every step at DEBUG: polls
# would drown the journal. Their warnings still show.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MAX_BODY_BYTES = 1024 * 1024  # enough to find a marker in any portal's page
USER_AGENT = f"districtmon/{__version__}"


class HttpPoller(ProbePoller[HttpProbe]):
    def __init__(self, settings: PollSettings) -> None:
        super().__init__(HttpProbe, "http", settings)
        self._contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}

    async def measure(self, site: Site, probe: HttpProbe, poll: Poll) -> Observation:
        try:
            async with asyncio.timeout(poll.timeout):
                await self._fetch(probe, poll.timeout, poll.values)
        except (TimeoutError, httpx.TimeoutException):
            detail = f"no complete answer within {poll.timeout:g} s"
            raise ProbeFailed("timeout", detail) from None
        except httpx.HTTPError as exc:
            raise ProbeFailed(*_classify(exc)) from None
        duration = poll.elapsed()
        poll.values["response_seconds"] = duration
        findings = _degraded(probe, duration, poll.values, poll.wall)
        return poll.answered(findings=findings, duration=duration)

    async def _fetch(
        self, probe: HttpProbe, timeout_seconds: float, values: dict[str, float | str]
    ) -> None:
        """GET the URL; fill `values` as facts come in, raise _Failed on a failed check."""
        # a context even for http://: given False, httpx would build a fresh one per client
        verify = self._context(probe.verify_tls, probe.ca_file)
        async with (
            httpx.AsyncClient(
                verify=verify,
                timeout=httpx.Timeout(timeout_seconds),
                follow_redirects=probe.follow_redirects,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            ) as client,
            client.stream("GET", probe.url) as response,
        ):
            not_after = _certificate_expiry(response)
            if not_after is not None:
                values["cert_expiry_timestamp_seconds"] = not_after
            values["http_status"] = response.status_code
            body = await _read_body(response)
        status = response.status_code
        if probe.expect_status and status not in probe.expect_status:
            expected = ", ".join(map(str, probe.expect_status))
            raise ProbeFailed("status", f"status {status}, expected {expected}")
        if not probe.expect_status and not 200 <= status < 300:
            raise ProbeFailed("status", f"status {status}, expected 2xx")
        for name, pattern in probe.header_matches:
            value = response.headers.get(name)
            if value is None or not re.search(pattern, value):
                raise ProbeFailed("content", f"header {name} does not match {pattern!r}")
        if probe.body_matches is not None:
            text = body.decode(_encoding(response), errors="replace")
            if not re.search(probe.body_matches, text):
                raise ProbeFailed("content", f"body does not match {probe.body_matches!r}")

    def _context(self, verify: bool, ca_file: str | None) -> ssl.SSLContext:
        key = (verify, ca_file)
        context = self._contexts.get(key)
        if context is None:
            context = ssl.create_default_context(cafile=ca_file)
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[key] = context
        return context


async def _read_body(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= MAX_BODY_BYTES:
            break
    return bytes(body[:MAX_BODY_BYTES])


def _encoding(response: httpx.Response) -> str:
    encoding = response.charset_encoding or "utf-8"
    try:
        "".encode(encoding)
    except LookupError:
        return "utf-8"
    return encoding


def _certificate_expiry(response: httpx.Response) -> float | None:
    """notAfter of the server's certificate as a Unix time; None for plain HTTP."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        return None
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


def _degraded(
    probe: HttpProbe, duration: float, values: dict[str, float | str], now: float
) -> list[Finding]:
    found = []
    if probe.slow_seconds is not None and duration > probe.slow_seconds:
        found.append(Finding("slow", f"http response {duration:.2f} s > {probe.slow_seconds:g} s"))
    not_after = values.get("cert_expiry_timestamp_seconds")
    if isinstance(not_after, float) and probe.cert_expiry_days > 0:
        days = (not_after - now) / 86400
        if days < probe.cert_expiry_days:
            text = f"certificate expires in {days:.1f} days (< {probe.cert_expiry_days:g})"
            found.append(Finding("cert_expiring", text))
    return found


def _classify(exc: httpx.HTTPError) -> tuple[str, str]:
    """A fixed reason word from the cause httpx wrapped (DNS, refused, TLS...)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return "resolve", cause.strerror or str(cause)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "tls", cause.verify_message or str(cause)
        if isinstance(cause, ssl.SSLError):
            return "tls", f"handshake failed ({cause.reason or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return "refused", "connection refused"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ProtocolError | httpx.DecodingError):
        return "protocol", str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TooManyRedirects):
        return "status", "too many redirects"
    return "connect", str(exc) or type(exc).__name__
