"""The fault vocabulary: what a scenario event or a live control request may do to the district.

Scenarios (YAML) and the HTTP control speak the same words (`power-cut`, `flap`...) and go
through the same checks here, so a fault that works live works in a timeline and is refused
with the same message. Checks only need the configuration: which sites and communes exist,
and which kind a site is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from monitor.config.load import Config
from monitor.core.model import SITE_KINDS

TargetKind = Literal["site", "commune", "none"]


@dataclass(frozen=True, slots=True)
class Action:
    """One validated fault or repair. Durations are simulated seconds except `delay` (a slow
    agent's reply delay), which is real time: it is what a poller's timeout is measured in."""

    name: str
    target: str | None = None
    battery_minutes: float | None = None
    kinds: tuple[str, ...] = ()
    period: float | None = None
    duration: float | None = None
    delay: float | None = None


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    target: TargetKind
    help: str
    params: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    site_kinds: tuple[str, ...] = ()  # empty: any kind


SPECS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("down", "site", "the device dies: no answer, no MQTT, its port goes down"),
        ActionSpec("up", "site", "a dead device comes back (reboots: uptime from zero)"),
        ActionSpec("link-down", "site", "the site's uplink is cut: it and what hangs off it"),
        ActionSpec("link-up", "site", "the uplink is back (also ends a flap)"),
        ActionSpec(
            "flap",
            "site",
            "the uplink goes down and up every period/2, for `duration` (default: until "
            "link-up or restore)",
            params=("period", "duration"),
            required=("period",),
        ),
        ActionSpec(
            "slow",
            "site",
            "the agent answers after `delay` real seconds (0: normal again)",
            params=("delay",),
            required=("delay",),
        ),
        ActionSpec("amplifier-fault", "site", "the amplifier fails", site_kinds=("loudspeaker",)),
        ActionSpec(
            "amplifier-restore", "site", "the amplifier works again", site_kinds=("loudspeaker",)
        ),
        ActionSpec(
            "transmitter-fault", "site", "the transmitter fails", site_kinds=("radio_station",)
        ),
        ActionSpec(
            "transmitter-restore",
            "site",
            "the transmitter is on air again",
            site_kinds=("radio_station",),
        ),
        ActionSpec("door-open", "site", "the shelter door opens", site_kinds=("bts",)),
        ActionSpec("door-close", "site", "the shelter door closes", site_kinds=("bts",)),
        ActionSpec(
            "power-cut",
            "commune",
            "mains fail in the commune: sites run on battery (`battery_minutes` of autonomy "
            "at full charge; default per kind), then die; `kinds` limits it to some kinds",
            params=("battery_minutes", "kinds"),
        ),
        ActionSpec("power-restore", "commune", "mains are back; dead sites reboot"),
        ActionSpec(
            "fibre-cut",
            "commune",
            "the fibre into the commune is cut: its entry gateways and all behind them go silent",
        ),
        ActionSpec("fibre-restore", "commune", "the fibre into the commune is repaired"),
        ActionSpec("broker-outage", "none", "the MQTT broker becomes unreachable for everyone"),
        ActionSpec("broker-restore", "none", "the MQTT broker is reachable again"),
        ActionSpec("restore", "none", "every fault is repaired, every commune has mains"),
    )
}

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(value: object) -> float | None:
    """Seconds from a number, or text like `90`, `1.5s`, `20m`, `1h30m`; None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) and number >= 0 else None
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def entry_gateways(config: Config, commune: str) -> list[str]:
    """Gateways through which a commune is reached: those of the commune whose parent is
    elsewhere (or absent). A fibre cut into the commune cuts their uplinks."""
    return [
        site.id
        for site in config.sites.values()
        if site.kind == "gateway"
        and site.commune == commune
        and (site.parent is None or config.sites[site.parent].commune != commune)
    ]


Problems = list[tuple[str, str]]  # (key, message): key is "" for the action as a whole


def build_action(
    name: str, target: str | None, params: Mapping[str, object], config: Config
) -> tuple[Action | None, Problems]:
    """Check one action against the configuration; every problem is returned, keyed by the
    parameter it is about ("target" for the site or commune, "" for the action)."""
    spec = SPECS.get(name)
    if spec is None:
        return None, [("", f"unknown action '{name}' (known: {', '.join(SPECS)})")]
    problems: Problems = []
    target = _check_target(spec, target, config, problems)
    for key in params:
        if key not in spec.params:
            allowed = ", ".join(spec.params) or "none"
            problems.append((key, f"not a parameter of '{name}' (parameters: {allowed})"))
    for key in spec.required:
        if key not in params:
            problems.append((key, f"'{name}' needs {key}"))
    values: dict[str, object] = {}
    for key in spec.params:
        if key in params:
            value = _check_param(key, params[key], problems)
            if value is not None:
                values[key] = value
    if problems:
        return None, problems
    return Action(name=name, target=target, **values), []  # type: ignore[arg-type]


def _check_target(
    spec: ActionSpec, target: str | None, config: Config, problems: Problems
) -> str | None:
    if spec.target == "none":
        if target is not None:
            problems.append(("target", f"'{spec.name}' takes no site or commune"))
        return None
    if target is None:
        problems.append(("target", f"'{spec.name}' needs a {spec.target}"))
        return None
    if spec.target == "site":
        site = config.sites.get(target)
        if site is None:
            problems.append(("target", f"unknown site '{target}'"))
        elif spec.site_kinds and site.kind not in spec.site_kinds:
            kinds = " or ".join(spec.site_kinds)
            message = f"'{spec.name}' applies to {kinds} sites; '{target}' is a {site.kind}"
            problems.append(("target", message))
        return target
    if target not in config.communes:
        problems.append(("target", f"unknown commune '{target}'"))
    elif spec.name.startswith("fibre") and not entry_gateways(config, target):
        message = f"commune '{target}' has no gateway fed from outside it: no fibre to cut"
        problems.append(("target", message))
    return target


def _check_param(key: str, value: object, problems: Problems) -> object:
    if key in ("period", "duration"):
        seconds = parse_duration(value)
        if seconds is None or seconds <= 0:
            problems.append((key, "must be a duration > 0 like 30s, 5m, 1h30m or seconds"))
            return None
        return seconds
    if key == "delay":
        seconds = parse_duration(value)
        if seconds is None:
            problems.append((key, "must be a duration >= 0 like 1.5s or seconds"))
            return None
        return seconds
    if key == "battery_minutes":
        number = _number(value)
        if number is None or number <= 0:
            problems.append((key, "must be a number of minutes > 0"))
            return None
        return number
    if key == "kinds":
        kinds = value.split(",") if isinstance(value, str) else value
        if not isinstance(kinds, list) or not kinds:
            problems.append((key, f"must be a list of site kinds ({', '.join(SITE_KINDS)})"))
            return None
        unknown = [k for k in kinds if k not in SITE_KINDS]
        if unknown:
            problems.append((key, f"unknown site kind {unknown[0]!r} ({', '.join(SITE_KINDS)})"))
            return None
        return tuple(str(k) for k in kinds)
    return None  # pragma: no cover - every declared parameter is handled above
