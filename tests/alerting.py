"""Shared by the alerting tests: the shipped Prometheus and Alertmanager files, test copies of
them with every timer divided by one factor, and a webhook receiver that records what
Alertmanager sends.

The copies change timings and destinations only; routes, groupings, inhibitions, rule
expressions, texts and labels are the shipped ones, so the tests exercise what an operator
installs. Dividing *every* timer by the same factor keeps their proportions, which is what
decides whether an alert is lost between Prometheus and the receiver (NOTES.md): rule `for:`
and `keep_firing_for:`, range selectors, group evaluation intervals, the scrape and
evaluation intervals, Prometheus' resend delay and lookback, Alertmanager's group_wait,
group_interval, repeat_interval and resolve_timeout. The daemon's poll interval is divided
by the test that runs it (its poll timeout is not: it bounds an answer on loopback).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "config" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RECORDING_RULES = PROMETHEUS_DIR / "recording.yml"
ALERT_RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
RUNBOOKS = PROMETHEUS_DIR / "runbooks.md"
ALERTMANAGER_DIR = ROOT / "config" / "alertmanager"
ALERTMANAGER_CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
OWNERS = ROOT / "config" / "inventory" / "owners.yaml"

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as `5m`, `1h30m` or `500ms`."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of alerts.yml, in file order (an alert name may repeat)."""
    return [
        rule
        for group in load_yaml(ALERT_RULES)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def rule_groups() -> list[str]:
    """Group names of recording.yml then alerts.yml, in file order."""
    return [g["name"] for path in (RECORDING_RULES, ALERT_RULES) for g in load_yaml(path)["groups"]]


def scaled(duration: str, factor: float) -> str:
    """A Prometheus/Alertmanager duration divided by `factor`, in milliseconds (both accept
    `500ms`)."""
    return f"{max(1, round(parse_duration(duration) * 1000 / factor))}ms"


# a range selector or subquery: [10m], [1d], [30m:1m]
_RANGE = re.compile(r"\[((?:\d+(?:ms|s|m|h|d|w|y))+)(?::((?:\d+(?:ms|s|m|h|d|w|y))+))?\]")


def scaled_ranges(expr: str, factor: float) -> str:
    """An expression with its range selectors and subquery steps divided by `factor`."""

    def one(match: re.Match[str]) -> str:
        parts = [scaled(part, factor) for part in match.group(0)[1:-1].split(":") if part]
        return "[" + ":".join(parts) + "]"

    return _RANGE.sub(one, expr)


def scaled_rules(source: Path, target: Path, factor: float) -> Path:
    """A copy of a rule file with its timers divided by `factor`: every `for:` and
    `keep_firing_for:`, each group's own `interval:`, and the range selectors of expressions
    and of the queries in annotations. Their order, which the inhibitions rely on (an
    inhibiting alert fires before those it mutes, and outlasts them), is kept."""
    doc = load_yaml(source)
    for group in doc["groups"]:
        if "interval" in group:
            group["interval"] = scaled(str(group["interval"]), factor)
        for rule in group["rules"]:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = scaled(str(rule[key]), factor)
            rule["expr"] = scaled_ranges(rule["expr"], factor)
            for name, text in rule.get("annotations", {}).items():
                rule["annotations"][name] = scaled_ranges(text, factor)
    target.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


# Prometheus' own timers that its configuration file does not hold, at their defaults.
PROMETHEUS_TIMERS = {
    "--rules.alert.resend-delay": "1m",
    "--rules.alert.for-grace-period": "10m",
    "--rules.alert.for-outage-tolerance": "1h",
    "--query.lookback-delta": "5m",
}


def scaled_prometheus(
    targets: list[str], alertmanager_url: str, directory: Path, factor: float
) -> tuple[dict[str, Any], list[str]]:
    """The shipped prometheus.yml with its timers divided by `factor`, scraping `targets`,
    sending to `alertmanager_url` and loading its rule files as copies in `directory`
    scaled the same way; and the command-line flags for Prometheus' other timers."""
    config: dict[str, Any] = load_yaml(PROMETHEUS_CONFIG)
    timers = config["global"]
    for key in ("scrape_interval", "evaluation_interval"):
        timers[key] = scaled(timers[key], factor)
    config["rule_files"] = [
        str(scaled_rules(PROMETHEUS_DIR / name, directory / name, factor))
        for name in config["rule_files"]
    ]
    host = alertmanager_url.removeprefix("http://")
    config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
    for job in config["scrape_configs"]:  # /metrics, and /metrics/availability at its pace
        if "scrape_interval" in job:
            job["scrape_interval"] = scaled(job["scrape_interval"], factor)
        # a scrape may take at most its interval; divided, the timeout would bound a scrape
        # of a small daemon on a loaded machine too tightly, so it is the whole interval
        job["scrape_timeout"] = job.get("scrape_interval", timers["scrape_interval"])
        job["static_configs"] = [{"targets": targets}]
    flags = [f"{flag}={scaled(value, factor)}" for flag, value in PROMETHEUS_TIMERS.items()]
    return config, flags


def alertmanager_test_config(webhook_url: str | None, factor: float = 1.0) -> dict[str, Any]:
    """The shipped Alertmanager configuration with its receivers rewritten: each receiver that
    has integrations gets a single webhook to `<webhook_url>/<receiver name>` instead (none at
    all when `webhook_url` is None), so nothing leaves the machine and the test sees who was
    notified. Every timer (each route's group_wait, group_interval, repeat_interval, and
    resolve_timeout) is divided by `factor`."""
    config: dict[str, Any] = load_yaml(ALERTMANAGER_CONFIG)
    config.pop("templates", None)  # used by e-mail and Telegram only, both replaced
    config["global"] = {"resolve_timeout": scaled(config["global"]["resolve_timeout"], factor)}

    def retime(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                route[key] = scaled(route[key], factor)
        for child in route.get("routes", []):
            retime(child)

    retime(config["route"])
    receivers = []
    for receiver in config["receivers"]:
        name = receiver["name"]
        integrations = [key for key in receiver if key.endswith("_configs")]
        if integrations and webhook_url is not None:
            receivers.append(
                {
                    "name": name,
                    "webhook_configs": [{"url": f"{webhook_url}/{name}", "send_resolved": True}],
                }
            )
        else:
            receivers.append({"name": name})
    config["receivers"] = receivers
    return config


@dataclass(frozen=True)
class Notification:
    """One webhook call: the receiver it was addressed to and Alertmanager's payload."""

    receiver: str
    status: str  # firing | resolved
    alerts: tuple[dict[str, Any], ...]
    payload: dict[str, Any]
    at: float = 0.0  # when it was received, Unix seconds

    def alertnames(self) -> list[str]:
        return sorted(a["labels"]["alertname"] for a in self.alerts)

    def describe(self) -> str:
        alerts = ", ".join(
            f"{a['labels']['alertname']}({a['labels'].get('site') or a['labels'].get('commune')})"
            f":{a['status']}"
            for a in self.alerts
        )
        return f"{self.receiver} {self.status}: {alerts}"


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records every POST Alertmanager's webhook sends."""

    def __init__(self) -> None:
        received: list[Notification] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                payload = json.loads(body.decode())
                with lock:
                    received.append(
                        Notification(
                            receiver=self.path.strip("/"),
                            status=payload["status"],
                            alerts=tuple(payload["alerts"]),
                            payload=payload,
                            at=time.time(),
                        )
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reports what it received."""

        self._received = received
        self._lock = lock
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def received(self) -> list[Notification]:
        with self._lock:
            return list(self._received)

    def wait_for(
        self, what: str, check: Callable[[list[Notification]], bool], limit: float
    ) -> list[Notification]:
        """Wait (bounded) until `check` holds for everything received so far."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            received = self.received
            if check(received):
                return received
            time.sleep(0.1)
        got = "\n  ".join(n.describe() for n in self.received) or "nothing"
        raise AssertionError(
            f"timed out after {limit:.0f} s waiting for {what}; received:\n  {got}"
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
