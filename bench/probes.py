"""Throughput and client CPU of the ICMP, TCP, HTTP(S) and DNS pollers on loopback.

Each row runs N polls through the real poller with C in flight against a peer in another
process (so that the CPU column is the daemon's side only: time.process_time of this process
divided by N). ICMP goes to the kernel's own echo replies, across 127.0.0.0/16 so that
concurrent polls do not share an address; its datagram-socket row runs in a network namespace
made for it, where unprivileged ping is allowed (needs root, as the tests do).

Usage: .venv/bin/python bench/probes.py [--quick]      (prints a table; about a minute)
`--smoke` (a fiftieth of the polls, a few seconds) is run by tests/test_bench_smoke.py: every
poll asked must come back, answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the certificate maker and dnsmasq runner of tests

from reachpeers import DOMAIN, Dnsmasq, make_tls  # noqa: E402

from monitor.config.settings import PollSettings  # noqa: E402
from monitor.core.model import (  # noqa: E402
    DnsProbe,
    HttpProbe,
    IcmpProbe,
    Observation,
    Probe,
    Site,
    TcpProbe,
)
from monitor.probes.reach.dns import DnsPoller  # noqa: E402
from monitor.probes.reach.http import HttpPoller  # noqa: E402
from monitor.probes.reach.icmp import IcmpPoller  # noqa: E402
from monitor.probes.reach.tcp import TcpPoller  # noqa: E402

PAGE = ("<html><body><h1>Cổng thông tin điện tử huyện Điện Biên</h1>" + "x" * 4000).encode()


def site(index: int, probe: Probe) -> Site:
    return Site(f"s{index}", "portal", "bench", "c", "o", 0.0, 0.0, probe)


Result = tuple[float, float, int, int]


async def run(
    poll: Callable[[Site], Awaitable[Observation]], probes: list[Probe], in_flight: int
) -> Result:
    """Wall seconds, CPU seconds, polls that came back and failed polls, for polling every
    probe once."""
    slots = asyncio.Semaphore(in_flight)
    done = failed = 0

    async def one(index: int, probe: Probe) -> None:
        nonlocal done, failed
        async with slots:
            obs = await poll(site(index, probe))
            done += 1
            failed += not obs.ok

    cpu, wall = time.process_time(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for index, probe in enumerate(probes):
            group.create_task(one(index, probe))
    return time.perf_counter() - wall, time.process_time() - cpu, done, failed


def row(name: str, n: int, in_flight: int, result: Result) -> dict[str, object]:
    wall, cpu, done, failed = result
    return {
        "probe": name,
        "polls": n,
        "done": done,
        "in_flight": in_flight,
        "polls_per_s": n / wall,
        "cpu_ms_per_poll": cpu / n * 1000,
        "failed": failed,
    }


# --- peers in other processes -------------------------------------------------------------


def _serve(port_out: multiprocessing.connection.Connection, tls: tuple[str, str] | None) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(PAGE)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + PAGE)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def start_server(tls: tuple[str, str] | None = None) -> tuple[BaseProcess, int]:
    ours, theirs = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs, tls))
    proc.start()
    if not ours.poll(10):
        raise RuntimeError("bench server did not start")
    return proc, int(ours.recv())


# --- the rows -----------------------------------------------------------------------------


def icmp_rows(n: int, mode: str) -> list[dict[str, object]]:
    rows = []
    for in_flight in (50, 200):
        poller = IcmpPoller(PollSettings(timeout_seconds=1.0))
        probes: list[Probe] = [
            IcmpProbe(f"127.0.{i // 250}.{i % 250 + 1}", count=1, timeout_seconds=1.0)
            for i in range(n)
        ]
        result = asyncio.run(run(poller.poll, probes, in_flight))
        kind = "raw" if poller.privileged else "datagram"
        assert kind == mode, (kind, mode)
        rows.append(row(f"icmp ({kind}, 1 echo)", n, in_flight, result))
    return rows


def icmp_datagram_rows(n: int) -> list[dict[str, object]]:
    """The same in a namespace that allows unprivileged ping, run as a child process there."""
    name = f"dmbench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        gid = os.getgid()
        allow = f'echo "{gid} {gid}" > /proc/sys/net/ipv4/ping_group_range'
        subprocess.run(["ip", "netns", "exec", name, "sh", "-c", allow], check=True)
        child = [sys.executable, __file__, "--icmp-datagram-child", str(n)]
        out = subprocess.run(
            ["ip", "netns", "exec", name, *child], check=True, capture_output=True, text=True
        )
        return list(json.loads(out.stdout))
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def tcp_rows(n: int) -> list[dict[str, object]]:
    proc, port = start_server()
    try:
        probes: list[Probe] = [TcpProbe("127.0.0.1", port) for _ in range(n)]
        result = asyncio.run(run(TcpPoller(PollSettings(timeout_seconds=2.0)).poll, probes, 50))
        return [row("tcp connect", n, 50, result)]
    finally:
        proc.terminate()
        proc.join()


def http_rows(n: int, work: Path) -> list[dict[str, object]]:
    rows = []
    tls = make_tls(work, days_left=90)
    for scheme in ("http", "https"):
        proc, port = start_server((str(tls.cert), str(tls.key)) if scheme == "https" else None)
        try:
            url = f"{scheme}://127.0.0.1:{port}/"
            extra = {"ca_file": str(tls.ca)} if scheme == "https" else {}
            probes: list[Probe] = [
                HttpProbe(url, body_matches="Điện Biên", **extra)  # type: ignore[arg-type]
                for _ in range(n)
            ]
            result = asyncio.run(
                run(HttpPoller(PollSettings(timeout_seconds=5.0)).poll, probes, 50)
            )
            rows.append(row(f"{scheme} GET (4 KiB page)", n, 50, result))
        finally:
            proc.terminate()
            proc.join()
    return rows


def dns_rows(n: int, work: Path) -> list[dict[str, object]]:
    with Dnsmasq(work / "dnsmasq.log") as server:
        probes: list[Probe] = [
            DnsProbe("127.0.0.1", f"portal.{DOMAIN}", port=server.port, expect=("127.4.0.1",))
            for _ in range(n)
        ]
        result = asyncio.run(
            run(DnsPoller(PollSettings(timeout_seconds=2.0, retries=1)).poll, probes, 50)
        )
        return [row("dns A (dnsmasq)", n, 50, result)]


def print_table(rows: list[dict[str, object]]) -> None:
    print(
        f"| {'probe':<26} | {'polls':>6} | {'done':>6} | {'in flight':>9} | {'polls/s':>8} "
        f"| {'client CPU ms/poll':>18} | {'failed':>6} |"
    )
    print(f"|{'-' * 28}|{'-' * 7}:|{'-' * 7}:|{'-' * 10}:|{'-' * 9}:|{'-' * 19}:|{'-' * 7}:|")
    for r in rows:
        print(
            f"| {r['probe']:<26} | {r['polls']:>6} | {r['done']:>6} | {r['in_flight']:>9} "
            f"| {r['polls_per_s']:>8.0f} | {r['cpu_ms_per_poll']:>18.3f} | {r['failed']:>6} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a tenth of the polls")
    parser.add_argument("--smoke", action="store_true", help="a fiftieth (a few seconds)")
    parser.add_argument("--icmp-datagram-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.icmp_datagram_child:
        print(json.dumps(icmp_rows(args.icmp_datagram_child, "datagram")))
        return
    scale = 50 if args.smoke else 10 if args.quick else 1
    n_icmp, n_tcp, n_http, n_dns = 2000 // scale, 5000 // scale, 2000 // scale, 5000 // scale
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows += icmp_rows(n_icmp, "raw")
        rows += icmp_datagram_rows(n_icmp)
        rows += tcp_rows(n_tcp)
        rows += http_rows(n_http, work)
        rows += dns_rows(n_dns, work)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {socket.gethostname()}")
    print_table(rows)
    print("polls: asked; done: came back (answered or failed); failed: not answered")


if __name__ == "__main__":
    main()
