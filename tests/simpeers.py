"""Processes for the simulator's tests: `districtmon simulate`, mosquitto and snmptrapd, all on
127.0.0.1, each stopped by its context manager; plus a shipped-district subset writer and the
net-snmp/mosquitto client calls the tests read the simulator with. Every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import yaml
from harness import free_tcp_port
from peers import free_udp_port

from monitor.config.load import load_config
from monitor.core.model import Site, SnmpProbe

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config"
NET_SNMP_ENV = {**os.environ, "MIBS": "", "MIBDIRS": ""}


def wait_until(what: str, check: Callable[[], bool], limit: float = 15.0, log: str = "") -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {limit} s waiting for {what}\n{log[-3000:]}")


def fast_settings(
    http: int,
    poll: float,
    timeout: float,
    down_after: int = 3,
    ledger: str = "ledger.sqlite",
    refresh: float = 60.0,
) -> str:
    """districtmon.yaml for a test that plays a district fast: the daemon on `http`, polls
    every `poll` s with no retry, a site down after `down_after` failed polls, its ledger at
    `ledger`, its availability gauges refreshed every `refresh` s."""
    return f"""
http: {{listen: "127.0.0.1:{http}"}}
ledger: {{path: {json.dumps(ledger)}, availability_refresh_seconds: {refresh}}}
poll: {{interval_seconds: {poll}, timeout_seconds: {timeout}, retries: 0}}
state: {{down_after: {down_after}, up_after: 2}}
"""


def write_district(
    root: Path,
    *,
    communes: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    port: int | None = None,
    settings: str = "",
    profiles: bool = False,
    speakers: Literal["snmp", "mqtt"] = "snmp",
) -> Path:
    """A configuration directory holding part of the shipped district (parents outside the part
        are dropped), every SNMP site on UDP `port` (default: a free one) of its shipped address.

        Sites that speak no SNMP in the shipped inventory are left out, except the loudspeaker
        clusters: with `speakers="mqtt"` they report over MQTT as shipped; with "snmp" they answer
        SNMP instead (the simulated amplifier subtree) on 127.2.1.N, N their rank in the
        inventory, so that both sides can be tested (MQTT sites come with the shipped telemetry
    mappings). `profiles` keeps each site's device profile (sim-loudspeaker for the clusters
        that answer SNMP) and copies the shipped profiles beside the inventory."""
    shipped = load_config(SHIPPED, environ={})
    keep_communes = set(communes) if communes is not None else set(shipped.communes)
    keep_kinds = set(kinds) if kinds is not None else None
    port = port or free_udp_port()
    sites = [
        s
        for s in shipped.sites.values()
        if s.commune in keep_communes
        and (keep_kinds is None or s.kind in keep_kinds)
        and (isinstance(s.probe, SnmpProbe) or s.kind == "loudspeaker")
    ]
    speaker_ids = [s.id for s in shipped.sites.values() if s.kind == "loudspeaker"]
    addresses = {
        s.id: (
            (s.probe.address, s.probe.credential)
            if isinstance(s.probe, SnmpProbe)
            else (f"127.2.1.{speaker_ids.index(s.id) + 1}", "rtv-ro")
        )
        for s in sites
    }
    kept = {s.id for s in sites}
    (root / "inventory").mkdir(parents=True)
    (root / "districtmon.yaml").write_text(settings or "{}\n", encoding="utf-8")
    (root / "credentials.yaml").write_bytes((SHIPPED / "credentials.yaml").read_bytes())
    inventory = {
        "communes": [
            {"id": c.id, "name": c.name, "lat": c.lat, "lon": c.lon, "areas": list(c.areas)}
            for c in shipped.communes.values()
        ],
        "owners": [{"id": o.id, "name": o.name, "kind": o.kind} for o in shipped.owners.values()],
        "sites": [
            {
                "id": s.id,
                "kind": s.kind,
                "name": s.name,
                "commune": s.commune,
                "owner": s.owner,
                "lat": s.lat,
                "lon": s.lon,
                **({"parent": s.parent} if s.parent in kept else {}),
                **({"covers": list(s.covers)} if s.covers else {}),
                "probe": _probe_of(s, addresses[s.id], port, profiles, speakers),
            }
            for s in sites
        ],
    }
    if profiles:
        shutil.copytree(SHIPPED / "profiles", root / "profiles")
    if speakers == "mqtt":  # the telemetry mappings MQTT sites are read with
        shutil.copytree(SHIPPED / "mqtt", root / "mqtt")
    (root / "inventory" / "district.yaml").write_text(
        yaml.safe_dump(inventory, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return root


def _probe_of(
    site: Site, where: tuple[str, str], port: int, profiles: bool, speakers: str
) -> dict[str, object]:
    if site.kind == "loudspeaker" and speakers == "mqtt":
        return {"mqtt": {}}
    address, credential = where
    snmp: dict[str, object] = {"address": address, "port": port, "credential": credential}
    if profiles and isinstance(site.probe, SnmpProbe) and site.probe.profile is not None:
        snmp["profile"] = site.probe.profile
    elif profiles and site.kind == "loudspeaker":  # shipped over MQTT: the simulator's SNMP one
        snmp["profile"] = "sim-loudspeaker"
    return {"snmp": snmp}


class _Process:
    name = "process"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"districtmon-{self.name}-"))
        self.log_path = self.dir / "out.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self, cmd: Sequence[str], env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Simulator(_Process):
    """`python -m monitor simulate` with its control on a free port."""

    name = "simulator"

    def __init__(self, config: Path, *args: str) -> None:
        super().__init__()
        self.control = f"127.0.0.1:{free_tcp_port()}"
        self._start(
            [
                sys.executable, "-m", "monitor", "simulate", "-c", str(config),
                "--control", self.control, "--log-level", "debug", *args,
            ]
        )  # fmt: skip

    def wait_ready(self, limit: float = 20.0) -> Self:
        def ready() -> bool:
            assert self.alive(), self.log()
            try:
                return self.get("/healthz")[0] == 200
            except OSError:
                return False

        wait_until("the simulator's control", ready, limit, self.log())
        return self

    def _call(self, method: str, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://{self.control}{path}", method=method, data=b"" if method == "POST" else None
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:  # an error response holds its connection until closed
                return exc.code, json.loads(exc.read())

    def get(self, path: str) -> tuple[int, Any]:
        return self._call("GET", path)

    def ctl(self, path: str) -> dict[str, Any]:
        status, body = self._call("POST", path)
        assert status == 200, body
        return dict(body)

    def state(self, site: str) -> dict[str, Any]:
        return dict(self.get(f"/sites/{site}")[1])


class Mosquitto(_Process):
    """A mosquitto broker on a free 127.0.0.1 port, nothing persisted."""

    name = "mosquitto"

    def __init__(self) -> None:
        super().__init__()
        self.port = free_tcp_port()
        conf = self.dir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self._start(["mosquitto", "-c", str(conf)])

        def listening() -> bool:
            assert self.alive(), self.log()
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        wait_until("mosquitto", listening, 10, self.log())


class Snmptrapd(_Process):
    """net-snmp's snmptrapd, logging every v2c trap it receives (any community) to a file."""

    name = "snmptrapd"

    def __init__(self) -> None:
        super().__init__()
        self.port = free_udp_port()
        conf = self.dir / "snmptrapd.conf"
        conf.write_text("disableAuthorization yes\ndoNotRetainNotificationLogs yes\n")
        self._start(
            [
                "/usr/sbin/snmptrapd", "-f", "-C", "-c", str(conf), "-Lo", "-On",
                "-F", "TRAP from=%b %P\n%V\n%v\nEND\n",
                f"udp:127.0.0.1:{self.port}",
            ],
            env={**NET_SNMP_ENV, "SNMP_PERSISTENT_DIR": str(self.dir)},
        )  # fmt: skip
        time.sleep(0.3)  # snmptrapd prints nothing when ready; a trap sent early is retried

    def traps(self) -> list[str]:
        return [block for block in self.log().split("TRAP from=")[1:] if "END" in block]


def snmp(tool: str, address: str, port: int, community: str, *args: str, version: str = "2c",
         timeout: float = 1.0) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run a net-snmp tool (snmpget, snmpwalk, snmpbulkwalk...) with numeric output."""
    cmd = [tool, f"-v{version}", "-c", community, "-On", "-t", str(timeout), "-r", "0",
           f"udp:{address}:{port}", *args]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, env=NET_SNMP_ENV, timeout=30, check=False
    )


def values(output: str) -> dict[str, str]:
    """`.1.3.6... = TYPE: value` lines as {oid without the leading dot: 'TYPE: value'}."""
    found = {}
    for line in output.splitlines():
        oid, sep, value = line.partition(" = ")
        if sep:
            found[oid.lstrip(".")] = value.strip()
    return found


def number(value: str) -> int:
    """The number in `INTEGER: 5`, `Counter64: 123`, `Timeticks: (123) 0:00:01.23`."""
    text = value.split(":", 1)[1].strip()
    if text.startswith("("):
        text = text[1 : text.index(")")]
    return int(text.split()[0])


def mosquitto_sub(port: int, topic: str, count: int, timeout: float = 10.0) -> list[str]:
    """`topic payload` lines; retained messages arrive first. Stops after `count` messages."""
    proc = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-v",
         "-C", str(count), "-W", str(int(timeout))],
        capture_output=True, text=True, timeout=timeout + 10, check=False,
    )  # fmt: skip
    return proc.stdout.splitlines()
