"""Live fault injection: a small HTTP control on loopback, and its command-line client.

    POST /sites/<site>/<action>[?param=value...]     down, up, link-down, flap?period=40s ...
    POST /communes/<commune>/<action>[?...]          power-cut?battery_minutes=20, fibre-cut ...
    POST /<action>                                   restore, broker-outage, broker-restore
    GET  /sites/<site>                               the site's simulated state
    GET  /sites                                      every site's, at one instant
    GET  /truth[?after=N]                            the ground truth's records (seq > N)
    GET  /stats, /healthz, /                          counters, liveness, this list

Actions are the scenario vocabulary (actions.py), checked the same way. The server runs in a
thread (the standard library's, like the daemon's /metrics); it hands each request to the
event loop and waits for it, so the world is only ever touched by the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor.simulator.actions import SPECS, Action, build_action
from monitor.simulator.readings import measured
from monitor.simulator.world import SiteSim, World

log = logging.getLogger(__name__)

DEFAULT_CONTROL = "127.0.0.1:9878"
REQUEST_TIMEOUT = 10.0


def site_state(sim: SiteSim, now: float) -> dict[str, object]:
    return {
        "site": sim.id,
        "kind": sim.site.kind,
        "commune": sim.site.commune,
        "probe": sim.probe_type,
        "answering": sim.reachable,
        "why": sim.why,
        "reachable": sim.reachable,
        "alive": sim.alive,
        "failed": sim.failed,
        "link_up": sim.link_up,
        "mains": sim.mains,
        "powered": sim.powered,
        "battery_charge": round(sim.charge(now), 4),
        "battery_minutes_remaining": round(sim.minutes_remaining(now), 1),
        "uptime_seconds": round(sim.uptime(now), 1),
        "slow_delay_seconds": sim.slow_delay,
        "amplifier_ok": sim.amplifier_ok,
        "transmitter_ok": sim.transmitter_ok,
        "door_open": sim.door_open,
        "measured": measured(sim, now),
    }


def every_site(world: World) -> dict[str, object]:
    """Every site's state at one simulated instant, with the wall clock it was taken at."""
    now = world.clock.now()
    return {
        "wall": time.time(),
        "sim": now,
        "sites": [site_state(sim, now) for sim in world.sites.values()],
    }


def help_text() -> dict[str, object]:
    paths = {"site": "/sites/<site>/", "commune": "/communes/<commune>/", "none": "/"}
    return {
        "actions": {
            f"POST {paths[spec.target]}{spec.name}"
            + ("?" + "&".join(f"{p}=..." for p in spec.params) if spec.params else ""): spec.help
            for spec in SPECS.values()
        },
        "read": [
            "GET /sites",
            "GET /sites/<site>",
            "GET /truth?after=N",
            "GET /stats",
            "GET /healthz",
        ],
    }


class ControlServer:
    def __init__(
        self,
        host: str,
        port: int,
        world: World,
        loop: asyncio.AbstractEventLoop,
        stats: Callable[[], dict[str, object]],
    ) -> None:
        self.world = world
        self.loop = loop
        self.stats = stats
        handler = type("Handler", (_Handler,), {"control": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="simulator-control", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def in_loop(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` in the event loop and wait for its result (from the HTTP thread)."""

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(REQUEST_TIMEOUT)

    def apply(self, action: Action) -> dict[str, object]:
        def run() -> dict[str, object]:
            self.world.apply(action)
            log.info("control: %s %s", action.name, action.target or "")
            reply: dict[str, object] = {"done": action.name}
            if action.target in self.world.sites:
                sim = self.world.sites[action.target]
                reply["state"] = site_state(sim, self.world.clock.now())
            elif action.target is not None:
                reply["commune"] = action.target
            return reply

        result: dict[str, object] = self.in_loop(run)
        return result


class _Handler(BaseHTTPRequestHandler):
    control: ControlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control %s", format % args)

    def _reply(self, status: int, body: object) -> None:
        self._send(status, json.dumps(body, ensure_ascii=False, indent=1).encode())

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        control = self.control
        if not parts:
            self._reply(200, help_text())
        elif parts == ["healthz"]:
            self._reply(200, {"status": "ok", "sites": len(control.world.sites)})
        elif parts == ["stats"]:
            self._reply(200, control.in_loop(control.stats))
        elif parts == ["truth"]:
            after = dict(urllib.parse.parse_qsl(url.query)).get("after", "0")
            if not after.isdigit():
                self._reply(400, {"error": f"after must be a record number (seq), got {after!r}"})
            else:
                self._send(200, control.world.truth.body(int(after)))
        elif parts == ["sites"]:
            self._reply(200, control.in_loop(lambda: every_site(control.world)))
        elif len(parts) == 2 and parts[0] == "sites":
            sim = control.world.sites.get(parts[1])
            if sim is None:
                self._reply(404, {"error": f"unknown site '{parts[1]}'"})
            else:
                now = control.world.clock.now()
                self._reply(200, control.in_loop(lambda: site_state(sim, now)))
        else:
            self._reply(404, {"error": f"no such path: {url.path}", **help_text()})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 65536))
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        params: dict[str, object] = dict(urllib.parse.parse_qsl(url.query))
        if len(parts) == 3 and parts[0] in ("sites", "communes"):
            name, target = parts[2], parts[1]
            expected = "site" if parts[0] == "sites" else "commune"
            spec = SPECS.get(name)
            if spec is not None and spec.target != expected:
                self._reply(400, {"error": f"'{name}' does not apply to a {expected}"})
                return
        elif len(parts) == 1:
            name, target = parts[0], None
        else:
            self._reply(404, {"error": f"no such path: {url.path}", **help_text()})
            return
        action, problems = build_action(name, target, params, self.control.world.config)
        if action is None:
            errors = [f"{key}: {message}" if key else message for key, message in problems]
            self._reply(400, {"error": "; ".join(errors)})
            return
        try:
            self._reply(200, self.control.apply(action))
        except Exception as exc:  # a bug must answer 500, not kill the control thread
            log.exception("control: %s failed", name)
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})


# --- the client (`districtmon simulate ctl`) ---------------------------------------------------


def request(
    control: str, method: str, path: str, query: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    url = f"http://{control}{urllib.parse.quote(path)}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT + 2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def ctl_path(action: str, target: str | None) -> str:
    spec = SPECS.get(action)
    if spec is None or spec.target == "none" or target is None:
        return f"/{action}"
    return f"/{'sites' if spec.target == 'site' else 'communes'}/{target}/{action}"
