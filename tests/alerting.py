"""Shared by the alerting tests: the shipped Prometheus and Alertmanager files, test copies of
them with shorter timings, and a webhook receiver that records what Alertmanager sends.

The copies change timings and destinations only; routes, groupings, inhibitions, rule
expressions and labels are the shipped ones, so the tests exercise what an operator installs.
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


def shortened_rules(source: Path, target: Path, factor: float) -> Path:
    """A copy of a rule file with every `for:` and `keep_firing_for:` divided by `factor`
    (60 turns minutes into seconds). Their order, which the inhibitions rely on (an
    inhibiting alert fires before those it mutes), is kept."""
    doc = load_yaml(source)
    for group in doc["groups"]:
        for rule in group["rules"]:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    millis = round(parse_duration(str(rule[key])) * 1000 / factor)
                    rule[key] = f"{millis}ms"
    target.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def alertmanager_test_config(
    webhook_url: str | None,
    *,
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
) -> dict[str, Any]:
    """The shipped Alertmanager configuration with its receivers rewritten: each receiver that
    has integrations gets a single webhook to `<webhook_url>/<receiver name>` instead (none at
    all when `webhook_url` is None), so nothing leaves the machine and the test sees who was
    notified. Every route's timings are replaced by the given ones."""
    config: dict[str, Any] = load_yaml(ALERTMANAGER_CONFIG)
    config.pop("templates", None)  # used by e-mail and Telegram only, both replaced
    config["global"] = {"resolve_timeout": config["global"]["resolve_timeout"]}

    def retime(route: dict[str, Any]) -> None:
        for key, value in (
            ("group_wait", group_wait),
            ("group_interval", group_interval),
            ("repeat_interval", repeat_interval),
        ):
            if key in route or route is config["route"]:
                route[key] = value
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
