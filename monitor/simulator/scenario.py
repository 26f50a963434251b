"""Scenarios: YAML timelines of faults and repairs, checked like the rest of the configuration.

```yaml
name: Power cut in Mường Phăng
events:
  - at: 1m                 # simulated time from the start: 90, 90s, 20m, 1h30m
    do: power-cut          # an action of actions.py
    commune: muong-phang   # its target: `site:` or `commune:`, as the action needs
    battery_minutes: 20    # and its parameters
    note: the BTS run on battery; watch them turn degraded, then down at 21 min
```

A scenario is refused whole, every problem listed as `file:line: key: message`, before the
simulator binds a single socket. Running it schedules each event on the world's simulated
clock; `--speed` makes it play faster. An event's `note` says what to look at: it is logged
when the event plays and printed by `--timeline`, which `./dev demo` shows at the start.
"""

from __future__ import annotations

import datetime
import logging
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from monitor.config.fields import Fields, Sink, open_document
from monitor.config.load import Config
from monitor.config.problems import ConfigError, ConfigProblem
from monitor.simulator.actions import SPECS, Action, build_action, parse_duration
from monitor.simulator.world import World

log = logging.getLogger(__name__)

_TOP_KEYS = ("name", "description", "events")
_PARAMS = tuple(sorted({param for spec in SPECS.values() for param in spec.params}))
_EVENT_KEYS = ("at", "do", "site", "commune", "note", *_PARAMS)


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    at: float  # simulated seconds after the start
    action: Action
    line: int
    note: str = ""  # what a person watching should look at


@dataclass(frozen=True, slots=True)
class Scenario:
    path: Path
    name: str
    description: str
    events: tuple[ScenarioEvent, ...]

    @property
    def length(self) -> float:
        return self.events[-1].at if self.events else 0.0


def load_scenario(path: Path, config: Config) -> Scenario:
    """Read and check a scenario against `config`; raise ConfigError with every problem."""
    problems: list[ConfigProblem] = []
    top = open_document(path, problems)
    if top is None:
        raise ConfigError(problems)
    top.expect(_TOP_KEYS, required=("events",))
    name = top.text("name") if top.has("name") else None
    description = top.text("description") if top.has("description") else None
    events = [
        event
        for item in top.items("events") or ()
        if (event := _read_event(top.sink, item.value, item.line, item.key, config)) is not None
    ]
    if problems:
        raise ConfigError(problems)
    events.sort(key=lambda event: event.at)
    return Scenario(path, name or path.stem, description or "", tuple(events))


def _read_event(
    sink: Sink, value: object, line: int, key: str, config: Config
) -> ScenarioEvent | None:
    fields = Fields.of(sink, value, line, key)
    if fields is None:
        return None
    fields.expect(_EVENT_KEYS, required=("at", "do"))
    at = None
    if fields.has("at"):
        at = parse_duration(fields.get("at"))
        if at is None:
            fields.problem("at", "must be a time offset >= 0 like 90, 90s, 20m or 1h30m")
    name = fields.text("do")
    if name is None:
        return None
    spec = SPECS.get(name)
    if spec is None:
        fields.problem("do", f"unknown action '{name}' (known: {', '.join(SPECS)})")
        return None
    target_key = _target_key(fields, spec.target, name)
    target = fields.text(target_key) if target_key and fields.has(target_key) else None
    params = {k: fields.get(k) for k in _PARAMS if fields.has(k)}
    action, action_problems = build_action(name, target, params, config)
    for param, message in action_problems:
        if param == "target":
            where = target_key if target_key and fields.has(target_key) else "do"
        else:
            where = param if param and fields.has(param) else "do"
        fields.problem(where, message)
    note = fields.text("note") if fields.has("note") else None
    if action is None or at is None:
        return None
    return ScenarioEvent(at, action, fields.line("do"), " ".join((note or "").split()))


def _target_key(fields: Fields, target: str, name: str) -> str | None:
    """`site:` or `commune:`, whichever the action takes; the other one is an error."""
    wanted = {"site": "site", "commune": "commune"}.get(target)
    for other in ("site", "commune"):
        if other != wanted and fields.has(other):
            needs = f"a {wanted}" if wanted else "no site or commune"
            fields.problem(other, f"'{name}' takes {needs}")
    return wanted


def schedule(scenario: Scenario, world: World, start: float) -> None:
    """Put every event of `scenario` on the world's timers, `start` being its time zero."""
    for event in scenario.events:
        world.at(start + event.at, _step(world, scenario, event))
    log.info(
        "scenario %r: %d events over %s (simulated)",
        scenario.name,
        len(scenario.events),
        _clock_text(scenario.length),
    )


def _step(world: World, scenario: Scenario, event: ScenarioEvent) -> Callable[[float], None]:
    def step(now: float) -> None:
        action = event.action
        log.info(
            "scenario %r t+%s: %s %s (%s:%d)%s",
            scenario.name,
            _clock_text(event.at),
            action.name,
            action.target or "",
            scenario.path.name,
            event.line,
            f": {event.note}" if event.note else "",
        )
        world.apply(action, now)

    return step


def timeline(scenario: Scenario, speed: float, start: float, zone: tzinfo | None) -> str:
    """What happens when, for a person watching: each event at its wall-clock time (in `zone`)
    when the scenario starts at `start` and plays at `speed`, with its simulated offset."""
    real = _clock_text(scenario.length / speed)
    lines = [
        f"{scenario.name}: {len(scenario.events)} events over {_clock_text(scenario.length)} "
        f"of simulated time, {real} at x{speed:g}"
    ]
    for event in scenario.events:
        when = datetime.datetime.fromtimestamp(start + event.at / speed, zone)
        action = event.action
        what = f"{action.name} {action.target}" if action.target else action.name
        lines.append(f"  {when:%H:%M:%S}  t+{_clock_text(event.at):>8}  {what}")
        if event.note:
            lines.extend(f"{'':30}{part}" for part in textwrap.wrap(event.note, 66))
    return "\n".join(lines)


def _clock_text(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
