"""Reason codes: why a site is not up, in one bounded word fit for a metric label.

A person reads the reason as text ("battery at 46.2 V, below 47 V"), in the log, the ledger
and the JSON API. A rule, a dashboard or a page needs the same reason as a word it can match
and count, and a label must never carry free text (it would make a new series for every
reading). So every reason that reaches a site's state carries one or more codes beside its
text, and `districtmon_site_reason{reason=...}` exports the codes only.

The vocabulary is closed: the words below, plus the `code` of each health rule and trap of the
profile files (slugs, checked when the configuration is read). So the number of series is
bounded by the configuration, never by what a device sends.

Which codes a state carries:

- `down`: the failed poll's `error_reason` (FAILURE_CODES), or a down trap's `code`;
- `unreachable`: `behind_parent`;
- `unknown`: `no_data` (just started), `broker_lost`, `subscription_lost` (an MQTT probe lost
  its sight), or one of MONITOR_CODES: the monitor's own failure (its SNMP credential
  refused, no ICMP socket allowed, a fault of ours), which never makes a site down;
- `degraded`: one code per failing health rule or trap of the site's profile, and the
  probes' own thresholds (`loss`, `slow`, `cert_expiring`);
- `maintenance`: `maintenance`;
- `up`: none.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: A failed poll's own word (`Observation.error_reason`): the site did not answer as it must.
FAILURE_CODES: dict[str, str] = {
    "timeout": "no answer within the timeout",
    "refused": "connection refused",
    "unreachable": "the network says the address cannot be reached",
    "connect": "the connection failed otherwise",
    "resolve": "the site's name does not resolve",
    "tls": "TLS handshake or certificate refused",
    "protocol": "the answer breaks the protocol",
    "status": "HTTP status not the one expected",
    "content": "HTTP body or header not as expected",
    "rcode": "DNS answered with an error code",
    "answer": "DNS answer without the expected records",
    "malformed": "an answer that could not be decoded",
    "error_status": "the SNMP agent answered with an error status",
    "request": "the request could not be made",
    "silent": "a pushing device fell silent past its heartbeat timeout",
    "offline": "the device's status says offline (its last will)",
    "reported_offline": "the device reports itself out of service",
    "trap": "a trap said the device is down",
    "failed": "a failure without a reason word",
}

#: Failures on the monitor's side: the site answered or may have, the monitor could not ask.
#: They make a site `unknown`, never down, and are not charged to its availability.
MONITOR_CODES: dict[str, str] = {
    "auth": "the site refused the monitor's SNMPv3 credential (wrong user or key)",
    "permission": "the monitor is not allowed to open ICMP sockets",
    "internal": "a fault of the monitor itself",
}

#: Codes the state machine and the overlays give.
STATE_CODES: dict[str, str] = {
    "behind_parent": "the site it depends on is down or unreachable",
    "maintenance": "inside a planned maintenance window",
    "no_data": "no observation yet since the monitor started",
    "broker_lost": "the monitor lost its MQTT broker",
    "subscription_lost": "the monitor's MQTT subscription stopped delivering",
}

#: An answer's own thresholds, decided by the probes (not by profile rules).
PROBE_CODES: dict[str, str] = {
    "loss": "ICMP loss over max_loss_ratio",
    "slow": "an answer slower than slow_seconds",
    "cert_expiring": "the TLS certificate expires within cert_expiry_days",
    "unhealthy": "an unhealthy answer whose probe gave no code",
}

#: Every fixed word; a profile's own codes may not take one of them.
FIXED_CODES: frozenset[str] = frozenset(
    {*FAILURE_CODES, *MONITOR_CODES, *STATE_CODES, *PROBE_CODES}
)

MAX_CODE_LENGTH = 48
_CODE = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_CODE_LENGTH - 1}}}")
CODE_RULE = f"a reason code is [a-z][a-z0-9_]*, at most {MAX_CODE_LENGTH} characters"


def is_code(text: str) -> bool:
    return _CODE.fullmatch(text) is not None


def is_monitor_fault(error_reason: str | None) -> bool:
    """A failure whose cause is on the monitor's side (see MONITOR_CODES)."""
    return error_reason in MONITOR_CODES


def failure_code(error_reason: str | None) -> str:
    """The code of a failed poll: its reason word when it is one of ours, else `failed`
    (a word from elsewhere never reaches a label)."""
    if error_reason in FAILURE_CODES or error_reason in MONITOR_CODES:
        assert error_reason is not None
        return error_reason
    return "failed"


def derive_code(reason: str) -> str:
    """The code of a rule or trap that names none: its reason text with `{placeholders}`
    dropped, letters folded to ASCII (Vietnamese diacritics removed, đ to d), lowercased,
    every run of other characters turned into one `_`, cut to MAX_CODE_LENGTH characters
    (at a `_` when there is one). "battery at {battery_volts} V, below 47 V" gives
    `battery_at_v_below_47_v`. Deterministic: the same text always gives the same code, so
    two rules with the same text share one. A text with no letter or digit gives `unhealthy`;
    one that starts with a digit is prefixed `r_`; one that would be a fixed word (`timeout`)
    gets `_rule` appended."""
    text = re.sub(r"\{[^{}]*\}", " ", reason).replace("đ", "d").replace("Đ", "D")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")
    if not slug:
        return "unhealthy"
    if slug[0].isdigit():
        slug = "r_" + slug
    if len(slug) > MAX_CODE_LENGTH:
        cut = slug[:MAX_CODE_LENGTH]
        slug = cut.rsplit("_", 1)[0] if "_" in cut else cut
    if slug in FIXED_CODES:
        slug += "_rule"
    return slug


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason an answer is unhealthy: its code (a label) and its text (for people)."""

    code: str
    text: str


def joined(findings: list[Finding] | tuple[Finding, ...]) -> tuple[str | None, tuple[str, ...]]:
    """The degraded reason (texts joined by '; ') and the codes (each once, in order) of
    `findings`; (None, ()) when there is none."""
    if not findings:
        return None, ()
    codes = tuple(dict.fromkeys(f.code for f in findings))
    return "; ".join(f.text for f in findings), codes
