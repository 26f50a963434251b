"""DNS probe on dnspython's asyncio queries: the server answers the name, and rightly.

One query straight to the configured server (UDP, TCP when the answer is truncated), not
through a stub resolver: the question is whether *that* server works, so no other server may
answer in its place and no cache may hide it. CNAME chains inside the answer are followed.
A timeout is retried `retries` times, as SNMP's UDP is; a wrong answer is not retried.
"""

from __future__ import annotations

import ipaddress
import time

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
from dns.asyncquery import udp_with_fallback

from monitor.config.settings import PollSettings
from monitor.core.model import DnsProbe, Observation, Site
from monitor.core.reasons import Finding
from monitor.probes.measure import Poll, ProbeFailed, ProbePoller


class DnsPoller(ProbePoller[DnsProbe]):
    def __init__(self, settings: PollSettings) -> None:
        super().__init__(DnsProbe, "dns", settings)

    async def measure(self, site: Site, probe: DnsProbe, poll: Poll) -> Observation:
        retries = probe.retries if probe.retries is not None else self.settings.retries
        answers, elapsed = await _ask(probe, poll.timeout, retries)
        _check(probe, answers)
        findings = []
        if probe.slow_seconds is not None and elapsed > probe.slow_seconds:
            text = f"dns answer {elapsed * 1000:.1f} ms > {probe.slow_seconds * 1000:.1f} ms"
            findings.append(Finding("slow", text))
        poll.values["response_seconds"] = elapsed
        poll.values["dns_answer"] = " ".join(answers)
        return poll.answered(findings=findings)


async def _ask(probe: DnsProbe, timeout_seconds: float, retries: int) -> tuple[list[str], float]:
    """The answer's records in presentation form, and how long the answering try took."""
    response, elapsed = await _query(probe, timeout_seconds, retries)
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        text = dns.rcode.to_text(rcode)
        raise ProbeFailed("rcode", f"{probe.name} {probe.type}: {text} from {probe.server}")
    if not isinstance(response, dns.message.QueryMessage):  # pragma: no cover - not a query
        raise ProbeFailed("malformed", f"not an answer to a query from {probe.server}")
    rrset = response.resolve_chaining().answer
    if rrset is None:
        raise ProbeFailed("answer", f"{probe.name} has no {probe.type} record")
    return [rdata.to_text() for rdata in rrset], elapsed


async def _query(
    probe: DnsProbe, timeout_seconds: float, retries: int
) -> tuple[dns.message.Message, float]:
    query = dns.message.make_query(probe.name, probe.type)
    attempt = 0
    while True:
        sent = time.monotonic()
        try:
            response, _tcp = await udp_with_fallback(
                query, probe.server, timeout=timeout_seconds, port=probe.port
            )
            return response, time.monotonic() - sent
        except dns.exception.Timeout:
            if attempt < retries:
                attempt += 1
                continue
            detail = f"no answer from {probe.server} within {timeout_seconds:g} s"
            raise ProbeFailed("timeout", detail) from None
        except dns.exception.DNSException as exc:  # a reply that does not parse or match
            raise ProbeFailed("malformed", f"{type(exc).__name__}: {exc}") from None
        except ConnectionRefusedError:
            raise ProbeFailed("refused", f"{probe.server}:{probe.port} refused") from None
        except OSError as exc:
            raise ProbeFailed("unreachable", exc.strerror or str(exc)) from None


def _check(probe: DnsProbe, answers: list[str]) -> None:
    got = {_normal(probe.type, text) for text in answers}
    missing = [text for text in probe.expect if _normal(probe.type, text) not in got]
    if missing:
        raise ProbeFailed(
            "answer",
            f"{probe.name} {probe.type} is {', '.join(answers)}; expected {', '.join(missing)}",
        )


def _normal(rdtype: str, text: str) -> str:
    """Compare as the DNS does: addresses by value, names without case or final dot, TXT
    without its quotes."""
    if rdtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text
    if rdtype == "TXT":
        return text.strip('"')
    return text.lower().removesuffix(".")
