"""Real SNMP agents for tests: net-snmp's ``snmpd`` and ``snmpsim``, on 127.0.0.1 high ports.

Each agent is a child process with its own temporary directory (configuration, persistent state,
log).  ``start()`` returns once the agent answers an SNMP GET; ``stop()`` kills the process but
keeps its port and directory, so a later ``start()`` brings the "same device" back on the same
address -- this is how tests take a site down and bring it up again.  ``close()`` stops the process
and removes the directory; agents are context managers, and any agent still running when the
interpreter exits is closed by an ``atexit`` hook.  Every wait is bounded in time.

Typical use (see ``tests/conftest.py`` for the fixtures)::

    with Snmpd(community="district-test", sys_name="site-a") as agent:
        agent.start()
        assert snmpget(agent.port, SYS_NAME, community="district-test") == "site-a"
        agent.stop()     # the site is down: GETs time out
        agent.start()    # back up on the same port
"""

from __future__ import annotations

import asyncio
import atexit
import bz2
import grp
import importlib.util
import os
import pwd
import random
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "LOCALHOST",
    "ROUTER_RECORDING",
    "SYS_DESCR",
    "SYS_LOCATION",
    "SYS_NAME",
    "SYS_UPTIME",
    "UPS_RECORDING",
    "AgentError",
    "Snmpd",
    "Snmpsim",
    "free_udp_port",
    "recording",
    "snmpget",
]

LOCALHOST = "127.0.0.1"

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"

SNMPD = "/usr/sbin/snmpd"
SNMPGET = "snmpget"

#: Recordings shipped by the ``snmpsim-data`` package, relative to its data directory.
UPS_RECORDING = "UPS/apc-8932.snmprec"
ROUTER_RECORDING = "network/router/cisco-unmarked-0.snmprec.bz2"

# Environment for net-snmp tools: load no MIB files (we use numeric OIDs; faster, no warnings).
_NET_SNMP_ENV = {"MIBS": "", "MIBDIRS": ""}

# Ports are drawn below the kernel's ephemeral range so that a client socket (snmpget, pysnmp)
# cannot be handed the port of a stopped agent while a test waits to restart it.
_PORT_RANGE = (20000, 32000)


_handed_out: set[int] = set()


class AgentError(RuntimeError):
    """An agent failed to start or to answer in time; the message carries its log."""


def free_udp_port(host: str = LOCALHOST) -> int:
    """Return a UDP port on ``host`` that nothing is bound to right now.

    The port is picked at random in 20000-31999 (below Linux's ephemeral range, 32768-60999), so
    it is not handed out to client sockets by the kernel, and never one this process handed out
    before (a stopped agent keeps its port).  Nothing reserves it: bind it soon.
    """
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise AgentError(f"no free UDP port found on {host} in range {_PORT_RANGE}")


def snmpget(
    port: int,
    oid: str,
    *,
    community: str,
    host: str = LOCALHOST,
    timeout: float = 1.0,
    retries: int = 0,
    extra_args: Sequence[str] = (),
) -> str | None:
    """GET one OID with net-snmp's ``snmpget`` (v2c unless ``extra_args`` say otherwise).

    Returns the value as ``snmpget -Oqv`` prints it, with the double quotes around a string
    removed (``"site-a"`` -> ``site-a``; ``No Such Object available on this agent at this OID``
    for a missing OID), or ``None`` when the agent did not answer within ``timeout`` x
    (``retries`` + 1) seconds.  Any other failure raises ``AgentError``.
    """
    version = [] if any(a.startswith("-v") for a in extra_args) else ["-v2c", "-c", community]
    cmd = [
        SNMPGET,
        *version,
        *extra_args,
        "-t",
        str(timeout),
        "-r",
        str(retries),
        "-Oqv",
        f"udp:{host}:{port}",
        oid,
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, **_NET_SNMP_ENV},
        timeout=timeout * (retries + 1) + 10,
        check=False,
    )
    if proc.returncode != 0:
        if "Timeout" in proc.stderr or "No Response" in proc.stderr:
            return None
        raise AgentError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    value = proc.stdout.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def recording(name: str) -> Path:
    """Path of a recording shipped by ``snmpsim-data``, e.g. ``recording(UPS_RECORDING)``."""
    spec = importlib.util.find_spec("snmpsim_data")
    if spec is None or spec.origin is None:
        raise AgentError("the snmpsim-data package is not installed (pip install -e '.[dev]')")
    path = Path(spec.origin).parent / "data" / name
    if not path.is_file():
        raise AgentError(f"no recording {name!r} in {path.parent}")
    return path


_live_agents: set[_Agent] = set()  # strong refs: an agent never leaks past exit unclosed


@atexit.register
def _close_leftovers() -> None:
    for agent in list(_live_agents):
        agent.close()


class _Agent:
    """A child process serving SNMP on one or more UDP ports of 127.0.0.1 (the first is probed)."""

    #: Prefix of the temporary directory.
    kind = "agent"

    def __init__(self, ports: Sequence[int] | None, host: str) -> None:
        self.host = host
        self.ports: tuple[int, ...] = tuple(ports) if ports else (free_udp_port(host),)
        self.dir = Path(tempfile.mkdtemp(prefix=f"districtmon-{self.kind}-"))
        self.log_path = self.dir / "agent.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        _live_agents.add(self)

    # -- to be provided by subclasses ---------------------------------------------------------

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return {**os.environ, **_NET_SNMP_ENV}

    def _probe(self) -> str | None:
        """One quick GET against the agent; ``None`` while it does not answer."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write configuration and data before each start."""

    # -- public API ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The (first) UDP port the agent listens on."""
        return self.ports[0]

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the (first) endpoint."""
        return (self.host, self.port)

    @property
    def running(self) -> bool:
        """True while the process is alive (it may not answer yet during ``start()``)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def log(self) -> str:
        """Everything the agent wrote to stdout/stderr so far (all starts)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 10.0) -> Self:
        """Start the process and return once it answers a GET; raise ``AgentError`` otherwise."""
        if self._closed:
            raise AgentError(f"{self.kind} on port {self.port} is closed")
        if self.running:
            raise AgentError(f"{self.kind} on port {self.port} is already running")
        self._prepare()
        cmd = self._command()
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} start: {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.dir,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise AgentError(f"{self.kind} exited with {code} while starting:\n{self.log()}")
            if self._probe() is not None:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise AgentError(
                    f"{self.kind} did not answer on {self.host}:{self.port} within "
                    f"{timeout:.0f} s:\n{self.log()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout``); keep port and files."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    async def start_async(self) -> Self:
        """``start()`` in a worker thread, for async tests whose event loop must keep running."""
        return await asyncio.to_thread(self.start)

    async def stop_async(self) -> None:
        """``stop()`` in a worker thread, for async tests whose event loop must keep running."""
        await asyncio.to_thread(self.stop)

    def close(self) -> None:
        """Stop the process and remove the temporary directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            _live_agents.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "closed" if self._closed else "stopped"
        return f"<{type(self).__name__} {self.host}:{','.join(map(str, self.ports))} {state}>"


class Snmpd(_Agent):
    """net-snmp's ``snmpd`` in the foreground, configured from scratch (no system config).

    Serves v2c for ``community`` (read-only, from 127.0.0.1) and SNMPv3 user ``v3_user`` with
    SHA authentication and AES privacy (``authPriv``), plus the host's real MIB-2 data
    (interfaces, uptime...).  ``sys_name`` and ``sys_location`` set sysName.0 and sysLocation.0.
    ``extra_config`` lines are appended to the generated ``snmpd.conf``.  Persistent state
    (engine boots, localized v3 keys) lives in the agent's temporary directory and survives a
    stop()/start(), like a rebooted device.
    """

    kind = "snmpd"

    def __init__(
        self,
        *,
        community: str = "district-test",
        port: int | None = None,
        host: str = LOCALHOST,
        sys_name: str = "districtmon-test-agent",
        sys_location: str = "districtmon test bench",
        v3_user: str = "districtmon",
        v3_auth_key: str = "districtmon-auth",
        v3_priv_key: str = "districtmon-priv",
        extra_config: str = "",
    ) -> None:
        if len(v3_auth_key) < 8 or len(v3_priv_key) < 8:
            raise ValueError("net-snmp needs SNMPv3 pass phrases of at least 8 characters")
        super().__init__([port] if port else None, host)
        self.community = community
        self.sys_name = sys_name
        self.sys_location = sys_location
        self.v3_user = v3_user
        self.v3_auth_key = v3_auth_key
        self.v3_priv_key = v3_priv_key
        self.extra_config = extra_config
        self.conf_path = self.dir / "snmpd.conf"
        self.persistent_dir = self.dir / "persist"

    def v3_args(self) -> list[str]:
        """net-snmp command-line options for an authPriv request as the v3 user."""
        return [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            self.v3_user,
            "-a",
            "SHA",
            "-A",
            self.v3_auth_key,
            "-x",
            "AES",
            "-X",
            self.v3_priv_key,
        ]

    def _prepare(self) -> None:
        self.persistent_dir.mkdir(exist_ok=True)
        # The address goes in agentAddress only: giving it on the command line as well makes
        # snmpd bind it twice and exit ("Error opening specified endpoint").
        self.conf_path.write_text(
            f"agentAddress udp:{self.host}:{self.port}\n"
            f"rocommunity {self.community} {self.host}\n"
            f"sysName {self.sys_name}\n"
            f"sysLocation {self.sys_location}\n"
            f"createUser {self.v3_user} SHA {self.v3_auth_key} AES {self.v3_priv_key}\n"
            f"rouser {self.v3_user} priv\n"
            "dontLogTCPWrappersConnects yes\n"
            f"{self.extra_config}\n"
        )

    def _command(self) -> list[str]:
        return [SNMPD, "-f", "-Lo", "-C", "-c", str(self.conf_path), "-p", str(self.dir / "pid")]

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "SNMP_PERSISTENT_DIR": str(self.persistent_dir)}

    def _probe(self) -> str | None:
        return snmpget(self.port, SYS_UPTIME, community=self.community, host=self.host, timeout=0.2)


class Snmpsim(_Agent):
    """``snmpsim-command-responder`` (from this interpreter's environment) replaying recordings.

    ``recordings`` maps a v2c community to a source recording (``.snmprec`` or
    ``.snmprec.bz2``, e.g. ``recording(UPS_RECORDING)``); each is copied into the data directory
    as ``<community>.snmprec[.bz2]``, so that community selects it.  An unknown community gets no
    reply at all (a timeout).  ``ports`` lists the UDP endpoints (one free port by default); all
    serve the same recordings.  ``probe_oid`` must be in the first recording (sysDescr.0 by
    default): ``start()`` waits for it to answer.

    Run as root, snmpsim refuses to start unless told to drop to a user: it then runs as
    ``nobody:nogroup``, which must be able to read this Python environment and the data, and
    write the index cache -- the temporary directory is handed to ``nobody`` for that.
    """

    kind = "snmpsim"

    def __init__(
        self,
        recordings: Mapping[str, str | os.PathLike[str]],
        *,
        ports: Sequence[int] | None = None,
        host: str = LOCALHOST,
        probe_oid: str = SYS_DESCR,
    ) -> None:
        if not recordings:
            raise ValueError("Snmpsim needs at least one recording")
        sources = {community: Path(path) for community, path in recordings.items()}
        for community, path in sources.items():
            if not path.is_file():
                raise AgentError(f"recording for community {community!r} not found: {path}")
            if not path.name.endswith((".snmprec", ".snmprec.bz2")):
                raise ValueError(f"{path}: only .snmprec and .snmprec.bz2 recordings are supported")
        self.executable = Path(sys.executable).parent / "snmpsim-command-responder"
        if not self.executable.is_file():
            raise AgentError(f"{self.executable} not found: pip install -e '.[dev]'")
        super().__init__(ports, host)
        self.recordings = sources
        self.probe_oid = probe_oid
        self.data_dir = self.dir / "data"
        self.cache_dir = self.dir / "cache"
        self._as_root = os.geteuid() == 0
        try:
            self._populate()
        except BaseException:
            self.close()
            raise

    @property
    def communities(self) -> list[str]:
        return list(self.recordings)

    def _populate(self) -> None:
        self.data_dir.mkdir()
        self.cache_dir.mkdir()
        for community, source in self.recordings.items():
            suffix = ".snmprec.bz2" if source.name.endswith(".bz2") else ".snmprec"
            target = self.data_dir / f"{community}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)  # community "a/b" -> a/b.snmprec
            shutil.copyfile(source, target)
        if self._as_root:
            _check_readable_by_others(Path(sys.prefix))
            _check_readable_by_others(self.executable)
            uid = pwd.getpwnam("nobody").pw_uid
            gid = grp.getgrnam("nogroup").gr_gid
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, uid, gid)

    def _command(self) -> list[str]:
        cmd = [
            str(self.executable),
            "--log-level=error",  # "info" logs every request: slow, and the log grows
            f"--data-dir={self.data_dir}",
            f"--cache-dir={self.cache_dir}",
            *(f"--agent-udpv4-endpoint={self.host}:{port}" for port in self.ports),
        ]
        if self._as_root:
            cmd += ["--process-user=nobody", "--process-group=nogroup"]
        return cmd

    def _probe(self) -> str | None:
        community = next(iter(self.recordings))
        return snmpget(self.port, self.probe_oid, community=community, host=self.host, timeout=0.2)

    def recording_text(self, community: str) -> str:
        """The recording text served for ``community`` (decompressed), e.g. to find an OID."""
        source = self.recordings[community]
        if source.name.endswith(".bz2"):
            return bz2.decompress(source.read_bytes()).decode(errors="replace")
        return source.read_text(errors="replace")


def _check_readable_by_others(path: Path) -> None:
    """Raise unless ``nobody`` can reach ``path`` (every parent searchable, the file readable)."""
    path = path.resolve()
    for part in [*reversed(path.parents), path]:
        mode = part.stat().st_mode
        needed = stat.S_IXOTH if part.is_dir() else stat.S_IROTH
        if not mode & needed:
            raise AgentError(
                f"snmpsim runs as 'nobody' under root, but {part} is not accessible to others "
                f"(mode {stat.filemode(mode)}): put the checkout (and its .venv) in a directory "
                "others can read, e.g. not under /root"
            )
