"""Network namespaces made by the tests: a private loopback where addresses can be made silent.

Everything the tests do to the network (a blackhole route, firewall rules dropping echo
requests, allowing unprivileged ping) happens inside a namespace of their own, never on the
machine's. A thread enters one with setns(2): sockets it opens there stay there, and processes
it starts (the daemon, dnsmasq) are born there. Needs root (CAP_SYS_ADMIN), which the tests
have; namespaces left by a killed run are removed by the next one.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
PREFIX = "dmtest-"
_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", *args], check=True, input=stdin, text=True, timeout=10)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def remove_stale() -> None:
    """Namespaces named after a test process that no longer runs."""
    if not NETNS_DIR.is_dir():
        return
    for path in NETNS_DIR.iterdir():
        found = re.fullmatch(rf"{PREFIX}(\d+)-\d+", path.name)
        if found and not Path(f"/proc/{found.group(1)}").exists():
            subprocess.run(["ip", "netns", "del", path.name], check=False, timeout=10)


class NetNs:
    def __init__(self) -> None:
        self.name = f"{PREFIX}{os.getpid()}-{next(_counter)}"

    def __enter__(self) -> NetNs:
        remove_stale()
        _ip("netns", "add", self.name)
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, timeout=10)

    def exec(self, *args: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, *args], check=True, timeout=10)

    def blackhole(self, address: str) -> None:
        """Packets to `address` are dropped by the kernel before leaving (send fails EINVAL).
        In the local table: 127/8 is a local route there, which a main-table route cannot
        override."""
        _ip("-n", self.name, "route", "add", "blackhole", f"{address}/32", "table", "local")

    def nft(self, ruleset: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, "nft", "-f", "-"],
            check=True,
            input=ruleset,
            text=True,
            timeout=10,
        )

    def sysctl(self, key: str, value: str) -> None:
        """A per-namespace kernel setting (net.ipv4.*), written through /proc/sys."""
        path = "/proc/sys/" + key.replace(".", "/")
        self.exec("sh", "-c", f'echo "$1" > {path}', "sysctl", value)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread inside the namespace until the block ends."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(NETNS_DIR / self.name, os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)


def silence_echo(ns: NetNs, address: str, every: int = 1) -> None:
    """Drop echo requests to `address` inside the namespace: all of them (every=1), or one in
    `every` (a lossy link, deterministic: the first, then every `every`-th)."""
    match = "" if every == 1 else f"numgen inc mod {every} == 0 "
    ns.nft(
        f"""
table inet districtmon_test_{address.replace(".", "_")} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {address} icmp type echo-request {match}drop
  }}
}}
"""
    )
