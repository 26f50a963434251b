"""A real mosquitto broker for tests, on a 127.0.0.1 high port, and devices that talk to it.

``Mosquitto`` writes its own configuration (``listener PORT 127.0.0.1``, anonymous clients or a
password file, optional TLS) in a temporary directory; ``start()`` returns once the broker
accepts an MQTT connection, ``stop()`` kills it (``stop(graceful=True)`` stops it as systemd
does) but keeps port and directory so that a later ``start()`` brings the same broker back
(persistence is off: a restarted broker has forgotten every retained message). ``Device`` is a
separate process (see ``tests/device.py``) with a last will, so that killing it makes the
broker publish the will as it would for a cluster that lost power. Every wait is bounded;
every process is cleaned up.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from peers import LOCALHOST

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
_PORT_RANGE = (20000, 32000)  # below the ephemeral range: a stopped broker keeps its port
_handed_out: set[int] = set()


class _Closable(Protocol):
    def close(self) -> None: ...


_live: set[_Closable] = set()


def free_tcp_port(host: str = LOCALHOST) -> int:
    """A TCP port below the ephemeral range that nothing listens on (nor was handed out)."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free TCP port")


@atexit.register
def _close_leftovers() -> None:
    for thing in list(_live):
        thing.close()


class Mosquitto:
    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        acl: str | None = None,
        extra: str = "",
        persistence: bool = False,
    ) -> None:
        """`users`: username -> password (then anonymous clients are refused; the test's own
        publishers and devices use the last account); `tls`: (ca, cert, key) files for a TLS
        listener; `acl`: the text of an ACL file (see `change_acl`); `persistence`: retained
        messages survive a restart, as with Debian's own mosquitto.conf."""
        self.host = LOCALHOST
        self.port = free_tcp_port()
        self.dir = Path(tempfile.mkdtemp(prefix="districtmon-mosquitto-"))
        self.log_path = self.dir / "mosquitto.log"
        self.users = users or {}
        self.tls = tls
        self.acl = acl
        self.extra = extra
        self.persistence = persistence
        self._proc: subprocess.Popen[bytes] | None = None
        _live.add(self)

    def _write_config(self) -> Path:
        lines = [f"listener {self.port} {self.host}", "log_dest stdout"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/"]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0:  # else it drops to user mosquitto, who cannot read our files
            lines.append("user root")
        if self.users:
            passwd = self.dir / "passwd"
            passwd.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(passwd), user, password], check=True, timeout=10
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            (self.dir / "acl").write_text(self.acl)
            lines.append(f"acl_file {self.dir / 'acl'}")
        if self.tls is not None:
            ca, cert, key = self.tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join([*lines, self.extra]) + "\n")
        return conf

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> Self:
        conf = self._write_config()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited while starting:\n{self.log()}")
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex((self.host, self.port)) == 0:
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log()}")

    def change_acl(self, acl: str) -> None:
        """New access rules at once (SIGHUP): existing subscriptions stay, but deliver only
        what the new rules let their client read -- a subscription lost without a word."""
        assert self._proc is not None and self.acl is not None
        self.acl = acl
        (self.dir / "acl").write_text(acl)
        self._proc.send_signal(signal.SIGHUP)

    def stop(self, *, graceful: bool = False) -> None:
        """SIGKILL by default: a crash, no goodbye to the clients. `graceful`: SIGTERM, as
        `systemctl stop mosquitto` does; the broker then publishes every client's last will
        before it closes the connections."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            proc.wait(5)

    @property
    def account(self) -> tuple[str, str] | None:
        """The account of the test's publishers and devices (the last user), if any."""
        return list(self.users.items())[-1] if self.users else None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        _live.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- a test's own publishing, through the real broker ----------------------------

    def publish(
        self, topic: str, payload: str | bytes, *, retain: bool = False, qos: int = 1
    ) -> None:
        """Publish one message and wait until the broker has it (QoS 1)."""
        self.publish_many([(topic, payload)], retain=retain, qos=qos)

    def publish_many(
        self, messages: list[tuple[str, str | bytes]], *, retain: bool = False, qos: int = 1
    ) -> None:
        """Publish these (topic, payload) in order, as fast as one client goes, and wait until
        the broker has them all (QoS 1)."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        if self.account is not None:
            client.username_pw_set(*self.account)
        client.connect(self.host, self.port, keepalive=10)
        client.loop_start()
        try:
            infos = [client.publish(t, p, qos=qos, retain=retain) for t, p in messages]
            for (topic, _), info in zip(messages, infos, strict=True):
                info.wait_for_publish(timeout=5)
                assert info.is_published(), f"broker did not take {topic}"
        finally:
            client.disconnect()
            client.loop_stop()


def telemetry(**fields: object) -> str:
    """A conventional telemetry report, timestamped now unless `ts` is given."""
    return json.dumps({"ts": time.time(), "online": True, **fields})


class Device:
    """A simulated site: a process connected to the broker with a retained `offline` last
    will; it publishes a retained `online`, then telemetry every `period` seconds."""

    def __init__(self, broker: Mosquitto, base_topic: str, period: float) -> None:
        self.broker = broker
        self.base = base_topic
        self.period = period
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = broker.dir / f"device-{base_topic.replace('/', '_')}.log"
        _live.add(self)

    def start(self, timeout: float = 10.0) -> Self:
        script = Path(__file__).with_name("device.py")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    self.broker.host,
                    str(self.broker.port),
                    self.base,
                    str(self.period),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                env={**os.environ, **self._account_env()},
            )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the device says "ready" once its will is set
            line = self._proc.stdout.readline()
            if line.strip() == b"ready":
                return self
            if self._proc.poll() is not None:
                break
        raise RuntimeError(f"device {self.base} did not start: {self.log_path.read_text()}")

    def _account_env(self) -> dict[str, str]:
        account = self.broker.account
        if account is None:
            return {}
        return {"DEVICE_USERNAME": account[0], "DEVICE_PASSWORD": account[1]}

    def kill(self) -> None:
        """Power cut: no DISCONNECT, so the broker publishes the device's last will."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()

    close = kill


def make_tls_files(directory: Path, host: str = LOCALHOST) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for `host` signed by it: (ca, cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "districtmon test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o644)  # mosquitto may drop to another user to read it
    return paths
