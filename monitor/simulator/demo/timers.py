"""The demo's copies of the shipped daemon, Prometheus and Alertmanager files, every timer
divided by the demo's speed.

The simulator plays the scenario `speed` times faster than life. Dividing only the daemon's
timers would leave the alert rules' `for:` and Alertmanager's group timings at their real
lengths, so a 15-minute outage played in 90 s would page nobody. Dividing *every* timer by
the same factor keeps their proportions, which is what decides whether an alert reaches its
owner (NOTES.md). What is divided:

- the daemon: poll interval and timeout, MQTT heartbeat timeout, self-check and reconnect
  delays, the availability refresh;
- Prometheus: scrape and evaluation intervals, every rule's `for:` and `keep_firing_for:`,
  each rule group's own `interval:`, range selectors in expressions and annotations, and the
  timers set by flags (resend delay, `for:` grace period, outage tolerance, lookback);
- Alertmanager: every route's group_wait, group_interval and repeat_interval, and
  resolve_timeout.

One exception: the scrape interval is divided down to 1 s, not below. A scrape renders the
whole district (some 850 KB); on a loaded machine that takes a good part of a second, and a
scrape may take at most its interval, so a shorter one would fail and read as the daemon
down. Nothing the rules decide is finer than that at the speeds the demo is played at.

Nothing else changes: routes, groupings, inhibitions, rule expressions, texts and labels are
the shipped ones. Only the destinations do: Prometheus scrapes the demo's daemon and sends to
the demo's Alertmanager; each receiver that has integrations (e-mail, Telegram, webhooks to
placeholder addresses) gets one webhook to the demo's receiver instead, so nothing leaves the
machine. At speed 1 the timers are the shipped texts, untouched.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

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
# a range selector or subquery: [10m], [1d], [30m:1m]
_RANGE = re.compile(r"\[((?:\d+(?:ms|s|m|h|d|w|y))+)(?::((?:\d+(?:ms|s|m|h|d|w|y))+))?\]")

MIN_SCRAPE_SECONDS = 1  # see above: the one timer not divided below this

# Prometheus' own timers that its configuration file does not hold, at their defaults.
PROMETHEUS_TIMER_FLAGS = {
    "--rules.alert.resend-delay": "1m",
    "--rules.alert.for-grace-period": "10m",
    "--rules.alert.for-outage-tolerance": "1h",
    "--query.lookback-delta": "5m",
}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as `5m`, `1h30m` or `500ms`."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def scaled(duration: str, speed: float) -> str:
    """A Prometheus/Alertmanager duration divided by `speed`, in milliseconds (both accept
    `500ms`); the text itself at speed 1."""
    if speed == 1:
        return duration
    return f"{max(1, round(parse_duration(duration) * 1000 / speed))}ms"


def scaled_ranges(expr: str, speed: float) -> str:
    """An expression with its range selectors and subquery steps divided by `speed`."""

    def one(match: re.Match[str]) -> str:
        parts = [scaled(part, speed) for part in match.group(0)[1:-1].split(":") if part]
        return "[" + ":".join(parts) + "]"

    return _RANGE.sub(one, expr)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _dump(doc: Any, target: Path, header: str) -> Path:
    body = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    target.write_text(f"# {header}\n{body}", encoding="utf-8")
    return target


def daemon_config(source: Path, target: Path, speed: float, ledger: Path) -> Path:
    """A copy of the configuration directory `source` at `target` whose districtmon.yaml has
    the daemon's timers divided by `speed` and its ledger at `ledger`. Returns `target`."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("scenarios"))
    path = target / "districtmon.yaml"
    settings: dict[str, Any] = load_yaml(path) or {}
    poll = settings.setdefault("poll", {})
    interval = float(poll.get("interval_seconds", 60)) / speed
    poll["interval_seconds"] = interval
    # a poll and its retry must fit well inside the interval, or polls would queue up
    poll["timeout_seconds"] = min(float(poll.get("timeout_seconds", 2)), interval / 4)
    ledger_settings = settings.setdefault("ledger", {})
    ledger_settings["path"] = str(ledger)
    refresh = float(ledger_settings.get("availability_refresh_seconds", 60))
    ledger_settings["availability_refresh_seconds"] = refresh / speed
    mqtt = settings.get("mqtt")
    if mqtt is not None:
        mqtt["heartbeat_timeout_seconds"] = (
            float(mqtt.get("heartbeat_timeout_seconds", 180)) / speed
        )
        mqtt["self_check_seconds"] = max(0.5, float(mqtt.get("self_check_seconds", 5)) / speed)
        # a broker lost is retried within the same (divided) time as in life
        for key, default in (("reconnect_min_seconds", 1.0), ("reconnect_max_seconds", 60.0)):
            mqtt[key] = float(mqtt.get(key, default)) / speed
    _dump(settings, path, f"{source}/districtmon.yaml, the daemon's timers divided by {speed:g}")
    return target


def scaled_rules(source: Path, target: Path, speed: float) -> Path:
    """A copy of a rule file with its timers divided by `speed`. Their order, which the
    inhibitions rely on (an inhibiting alert fires before those it mutes, and outlasts them),
    is kept."""
    doc = load_yaml(source)
    for group in doc["groups"]:
        if "interval" in group:
            group["interval"] = scaled(str(group["interval"]), speed)
        for rule in group["rules"]:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = scaled(str(rule[key]), speed)
            rule["expr"] = scaled_ranges(rule["expr"], speed)
            for name, text in rule.get("annotations", {}).items():
                rule["annotations"][name] = scaled_ranges(text, speed)
    return _dump(doc, target, f"{source} with every timer divided by {speed:g}")


def prometheus_config(
    source: Path, directory: Path, speed: float, daemon: str, alertmanager: str
) -> tuple[Path, list[str]]:
    """The shipped prometheus.yml (`source`) written to `directory` with its timers divided
    by `speed`, scraping `daemon` (host:port), sending to `alertmanager` (host:port) and
    loading its rule files as copies beside it, scaled the same way; and the command-line
    flags for Prometheus' other timers."""
    config: dict[str, Any] = load_yaml(source)
    timers = config["global"]
    timers["evaluation_interval"] = scaled(str(timers["evaluation_interval"]), speed)
    timers["scrape_interval"] = _scrape_interval(str(timers["scrape_interval"]), speed)
    config["rule_files"] = [
        str(scaled_rules(source.parent / name, directory / name, speed))
        for name in config["rule_files"]
    ]
    config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    for job in config["scrape_configs"]:  # /metrics, and /metrics/availability at its pace
        job["static_configs"] = [{"targets": [daemon]}]
        if "scrape_interval" in job:
            job["scrape_interval"] = _scrape_interval(str(job["scrape_interval"]), speed)
        if speed != 1:
            # divided, the timeout would bound a scrape of the district on a loaded machine
            # too tightly: a scrape may take its whole interval
            job["scrape_timeout"] = job.get("scrape_interval", timers["scrape_interval"])
    flags = [f"{flag}={scaled(value, speed)}" for flag, value in PROMETHEUS_TIMER_FLAGS.items()]
    header = f"{source}, every timer divided by {speed:g}"
    path = _dump(config, directory / "prometheus.yml", header)
    return path, flags


def _scrape_interval(interval: str, speed: float) -> str:
    """A scrape interval divided by `speed`, not below MIN_SCRAPE_SECONDS."""
    if parse_duration(interval) / speed < MIN_SCRAPE_SECONDS:
        return f"{MIN_SCRAPE_SECONDS}s"
    return scaled(interval, speed)


def alertmanager_config(source: Path, target: Path, speed: float, webhook: str) -> Path:
    """The shipped alertmanager.yml (`source`) written to `target` with its timers divided by
    `speed` and each receiver that has integrations sending to `<webhook>/<receiver name>`
    instead (with the resolved notifications, as the shipped integrations)."""
    config: dict[str, Any] = load_yaml(source)
    config.pop("templates", None)  # used by e-mail and Telegram only, both replaced
    config["global"] = {"resolve_timeout": scaled(config["global"]["resolve_timeout"], speed)}

    def retime(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                route[key] = scaled(route[key], speed)
        for child in route.get("routes", []):
            retime(child)

    retime(config["route"])
    receivers = []
    for receiver in config["receivers"]:
        name = receiver["name"]
        if any(key.endswith("_configs") for key in receiver):
            hook = {"url": f"{webhook}/{name}", "send_resolved": True}
            receivers.append({"name": name, "webhook_configs": [hook]})
        else:
            receivers.append({"name": name})
    config["receivers"] = receivers
    return _dump(
        config,
        target,
        f"{source}, every timer divided by {speed:g}, every receiver a webhook to {webhook}",
    )
