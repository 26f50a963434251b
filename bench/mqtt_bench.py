#!/usr/bin/env python3
"""Sustained ingest of small JSON telemetry through a real broker into site state.

    .venv/bin/python bench/mqtt_bench.py                 # the table below, ~1 minute
    .venv/bin/python bench/mqtt_bench.py --profile       # plus where the consumer's time goes
    .venv/bin/python bench/mqtt_bench.py --smoke         # a few seconds, for a quick check
    .venv/bin/python bench/mqtt_bench.py --compare HEAD~3  # the daemon's phases, that code vs this

A mosquitto on 127.0.0.1 carries reports from one `mosquitto_pub -l` process per site (C,
a few microseconds per message, so the publishers hardly compete for the two cores) to a
consumer process that runs districtmon's own path: MqttListener -> Ingest -> Pipeline
(evaluator, live snapshot, self-metrics, a real SQLite ledger with its writer task). The
consumer is measured alone: its CPU time (user + system, all threads) per message, and the
messages it took into site state per wall second.

Phases:
- drain: a burst of messages published as fast as the publishers go, drained by the
  consumer as fast as it can: the ceiling on one core.
- sustained R/s: publishers paced at R messages/s for some seconds: does the consumer keep
  up, with how much of its core, and how late is it at the end.
- aiomqtt iterator only: the same burst read by a bare `async for message in
  client.messages` loop doing nothing, for reference (NOTES.md: ~26k msg/s, ~37 us, QoS 0).
- aiomqtt hand-over only: the same, with the listener's way of taking messages (a queue
  class that hands each one over from the read callback) and nothing behind it.
- aiomqtt hand-over, read-ahead: the same again, with the listener's socket that reads ahead
  (monitor/probes/mqtt/readahead.py): the cost of the MQTT client alone in the daemon.
- handling only: districtmon's own handling (Ingest.handle into the pipeline) without any
  broker or client, in the orchestrator's process.

`--compare REV` runs the daemon's phases (drain, sustained) with the consumer of git
revision REV too (its tree, unpacked with `git archive`, imports its own monitor/), old and
new alternating, `--repeat` times each, on the same broker and publishers: a before/after in
one sitting, on a machine whose other load moves. Each row says the 1-minute load average
when it started.

Every message is published at QoS 1 and taken at the subscription QoS of the shipped config
(`--qos` for another), and carries a per-site sequence number: the consumer
checks that each site received exactly the messages sent, in order (the last value in site
state is the last one sent), i.e. nothing lost below the broker's own limits, which the
bench's broker sets explicitly (max_inflight_messages, max_queued_messages).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BROKER_LIMITS = "max_inflight_messages 1000\nmax_queued_messages 60000\n"
DROPPED = "$SYS/broker/publish/messages/dropped"  # what the broker itself threw away
PREFIX = "bench"
READY_SECONDS = 30.0  # the longest wait for the consumer to see the broker, or the first message
SILENCE_SECONDS = 5.0  # messages stop arriving for this long: the rest is lost
NAME = 32  # width of the phase column


def site_ids(count: int) -> list[str]:
    return [f"loa-{n:04d}" for n in range(count)]


def topic(site: str) -> str:
    return f"{PREFIX}/thanh-nua/loudspeaker/{site}/telemetry"


def report(ts: float, seq: int) -> str:
    """The agreed telemetry object (COMMON.md), plus a sequence number to check for loss."""
    return (
        f'{{"ts": {ts:.3f}, "online": true, "amplifier_ok": true, "playing": false, '
        f'"volume": 70, "battery_volts": 12.6, "rssi_dbm": -71, '
        f'"temperature_celsius": 38.5, "seq": {seq}}}'
    )


# --- the consumer (a separate process) ------------------------------------------------------


def consume(args: argparse.Namespace) -> None:
    """Run districtmon's ingest path until `expect` messages arrived (or 5 s of silence);
    print one JSON line of figures."""
    asyncio.run(_consume(args))


def _profile() -> object:
    from monitor.config.load import load_config
    from monitor.config.telemetry import TelemetryProfile, ValueSpec

    shipped = load_config(ROOT / "config", {}).mqtt.profiles["loudspeaker"]
    seq = ValueSpec("seq", "seq", "number", "bench sequence number")
    return TelemetryProfile("loudspeaker", (*shipped.values, seq), shipped.alive)


def shipped_qos() -> int:
    """The subscription QoS of the shipped config: what the daemon asks the broker for."""
    from monitor.config.load import load_config

    return load_config(ROOT / "config", {}).mqtt.qos


def _settings(port: int, qos: int = 0) -> object:
    from monitor.config.mqtt import MqttSettings

    return MqttSettings(
        host="127.0.0.1",
        port=port,
        topic_prefix=PREFIX,
        client_id="districtmon-bench",
        qos=qos,
        heartbeat_timeout_seconds=600,
        profiles={"loudspeaker": _profile()},  # type: ignore[dict-item]
    )


def _sites(count: int) -> dict[str, object]:
    from monitor.core.model import MqttProbe, Site

    return {
        s: Site(s, "loudspeaker", s, "thanh-nua", "rtv", 21.0, 103.0, MqttProbe())
        for s in site_ids(count)
    }


def handling_only(sites: int, total: int) -> dict[str, object]:
    """districtmon's handling of `total` reports without any broker: Ingest.handle straight
    into the pipeline (in this process), to split the consumer's CPU between the MQTT client
    and our own code."""
    return asyncio.run(_handling_only(sites, total))


async def _handling_only(count: int, total: int) -> dict[str, object]:
    from prometheus_client import CollectorRegistry

    from monitor.expose.mqtt_metrics import registered_counts
    from monitor.expose.self_metrics import build_registry
    from monitor.ledger.writer import Ledger
    from monitor.probes.mqtt.ingest import Ingest
    from monitor.state.evaluator import Evaluator
    from monitor.state.live import LiveState
    from monitor.state.pipeline import Pipeline

    load = os.getloadavg()[0]
    sites = _sites(count)
    live = LiveState(sites)  # type: ignore[arg-type]
    _registry, metrics = build_registry()
    tmp = Path(tempfile.mkdtemp(prefix="districtmon-bench-"))
    ledger = await Ledger.open(tmp / "ledger.sqlite")
    await ledger.sync_sites(sites.values())  # type: ignore[arg-type]
    pipeline = Pipeline(Evaluator(3, 2), ledger, live, metrics)
    pipeline.start(list(sites), time.time())
    settings = _settings(0)
    ingest = Ingest(
        settings,  # type: ignore[arg-type]
        sites.values(),  # type: ignore[arg-type]
        [],
        pipeline.observe,
        {},
        registered_counts(CollectorRegistry()),
    )
    writer = asyncio.create_task(ledger.run())
    ts = time.time()
    topics = [topic(site) for site in sites]
    messages = [
        (
            topics[n % count],
            report(ts, n // count).encode(),
        )
        for n in range(total)
    ]
    handle = ingest.handle
    wall, cpu = time.monotonic(), _cpu()
    for name, payload in messages:
        handle(name, payload, False)
    cpu, wall = _cpu() - cpu, time.monotonic() - wall
    taken = sum(1 for s in sites if live.views[s].values.get("seq") == total // count - 1)
    ledger.stop()
    await writer
    await ledger.close()
    shutil.rmtree(tmp, ignore_errors=True)
    figures = _figures(total, 0.0, wall, 0.0, cpu, 0, 0, taken == count)
    figures.update(
        name="handling only (no MQTT)",
        sites=count,
        sent=total,
        publish_seconds=0.0,
        broker_dropped=0,
        load=load,
    )
    return figures


async def _consume(args: argparse.Namespace) -> None:
    from prometheus_client import CollectorRegistry

    from monitor.config.mqtt import MqttSettings
    from monitor.core.model import Observation, Site, State
    from monitor.expose.mqtt_metrics import registered_counts
    from monitor.expose.self_metrics import build_registry
    from monitor.ledger.writer import Ledger
    from monitor.probes.mqtt.listener import MqttListener, Sink
    from monitor.state.evaluator import Evaluator
    from monitor.state.live import LiveState
    from monitor.state.pipeline import Pipeline

    ids = site_ids(args.sites)
    settings: MqttSettings = _settings(args.port, args.qos)  # type: ignore[assignment]
    sites: dict[str, Site] = _sites(args.sites)  # type: ignore[assignment]
    counts = dict.fromkeys(ids, 0)
    out_of_order = 0
    first = last = 0.0
    cpu_first = 0.0

    if args.mode in ("bare", "inline", "readahead"):
        import aiomqtt

        got = 0

        def take() -> None:
            nonlocal got, first, last, cpu_first
            if not got:
                first, cpu_first = time.monotonic(), _cpu()
            got += 1
            last = time.monotonic()

        class Counting(asyncio.Queue[aiomqtt.Message]):
            """The listener's hand-over, with nothing behind it."""

            def put_nowait(self, item: aiomqtt.Message) -> None:
                take()

        queue_type = Counting if args.mode != "bare" else None
        client = aiomqtt.Client("127.0.0.1", args.port, identifier="bare", queue_type=queue_type)
        if args.mode == "readahead":
            from monitor.probes.mqtt.pahosocket import read_ahead

            if not read_ahead(client):
                raise SystemExit("read-ahead could not be installed")
        async with client:
            await client.subscribe(f"{PREFIX}/+/+/+/telemetry", qos=args.qos)
            print("ready", flush=True)

            async def read() -> None:
                async for _message in client.messages:
                    take()

            reader = asyncio.create_task(read())
            await _until_done(reader, lambda: got, lambda: last, args.expect)
            cpu_last = _cpu()
        print(json.dumps(_figures(got, first, last, cpu_first, cpu_last, 0, 0, True)), flush=True)
        return

    live = LiveState(sites)
    _registry, metrics = build_registry()
    tmp = Path(tempfile.mkdtemp(prefix="districtmon-bench-"))
    ledger = await Ledger.open(tmp / "ledger.sqlite")
    await ledger.sync_sites(sites.values())
    received = 0

    class CountingPipeline(Pipeline):
        """The daemon's own Pipeline, which the listener feeds in the daemon, plus the bench's
        bookkeeping (a dict update per message). A subclass, so that every other entry point
        (blind, sight_restored, whatever the Sink protocol grows) is the real one: the bench
        cannot drift from what the daemon does."""

        def observe(self, obs: Observation) -> None:
            nonlocal received, first, last, cpu_first, out_of_order
            if not received:
                first, cpu_first = time.monotonic(), _cpu()
            received += 1
            counts[obs.site] += 1
            if obs.values.get("seq") != counts[obs.site] - 1:
                out_of_order += 1
            super().observe(obs)
            last = time.monotonic()

    pipeline = CountingPipeline(Evaluator(3, 2), ledger, live, metrics)
    pipeline.start(ids, time.time())
    sink: Sink = pipeline  # what MqttListener takes: mypy checks the protocol here
    listener = MqttListener(
        settings, sites, {}, sink, lambda: 3, registered_counts(CollectorRegistry())
    )
    writer = asyncio.create_task(ledger.run())
    task = asyncio.create_task(listener.run())
    ready_by = time.monotonic() + READY_SECONDS
    while not listener.seeing:  # a property, not an event to wait on
        if task.done() or time.monotonic() > ready_by:
            # The listener died (its exception is re-raised here) or never saw the broker:
            # say so and stop rather than wait forever for a "ready" that cannot come.
            if task.done():
                task.result()
            raise SystemExit(f"the listener did not see the broker in {READY_SECONDS:g} s")
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    await _until_done(None, lambda: received, lambda: last, args.expect)
    cpu_last = _cpu()
    if profiler is not None:
        profiler.disable()
    in_state = all(
        live.views[s].state is State.UP and live.views[s].values.get("seq") == counts[s] - 1
        for s in ids
        if counts[s]
    )
    missing = sum(max(0, args.expect // args.sites - counts[s]) for s in ids)
    task.cancel()
    ledger.stop()
    await writer
    await ledger.close()
    shutil.rmtree(tmp, ignore_errors=True)
    figures = _figures(received, first, last, cpu_first, cpu_last, missing, out_of_order, in_state)
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
        figures["profile"] = text.getvalue()
    print(json.dumps(figures), flush=True)


async def _until_done(
    task: asyncio.Task[None] | None,
    count: Callable[[], int],
    last: Callable[[], float],
    expect: int,
) -> None:
    """Until `expect` messages, or 5 s without any (the rest is lost), or none at all within
    READY_SECONDS (nothing arrives: a consumer that stopped taking, not a slow one)."""
    started = time.monotonic()
    while count() < expect:
        await asyncio.sleep(0.05)
        seen = last() or started + READY_SECONDS - SILENCE_SECONDS
        if time.monotonic() - seen > SILENCE_SECONDS:
            break
    if isinstance(task, asyncio.Task):
        task.cancel()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _figures(
    n: int,
    first: float,
    last: float,
    cpu_first: float,
    cpu_last: float,
    missing: int,
    out_of_order: int,
    in_state: bool,
) -> dict[str, object]:
    wall = max(last - first, 1e-9)
    return {
        "messages": n,
        "wall": wall,
        "cpu": cpu_last - cpu_first,
        "missing": missing,
        "out_of_order": out_of_order,
        "in_state": in_state,
    }


# --- the orchestrator ---------------------------------------------------------------------


class Broker:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="districtmon-bench-broker-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        conf = self.dir / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"sys_interval 1\n{user}{BROKER_LIMITS}"
        )
        self.proc = subprocess.Popen(
            ["/usr/sbin/mosquitto", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def dropped(self) -> int:
        """Messages the broker dropped so far (queue limits), from its $SYS counter."""
        time.sleep(1.5)  # the counter is published every second
        out = subprocess.run(
            ["mosquitto_sub", "-p", str(self.port), "-t", DROPPED, "-C", "1", "-W", "5"],
            capture_output=True,
            text=True,
            check=False,
        )
        return int(out.stdout.strip() or 0)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Publishers:
    """One `mosquitto_pub -l` per site, fed lines (one report each) through its stdin."""

    def __init__(self, port: int, sites: list[str]) -> None:
        self.sites = sites
        self.seq = dict.fromkeys(sites, 0)
        self.procs = {
            site: subprocess.Popen(
                [
                    *("mosquitto_pub", "-p", str(port), "-q", "1", "-M", "1000", "-l"),
                    *("-i", f"bench-{site}", "-t", topic(site)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for site in sites
        }

    def send(self, per_site: int) -> None:
        ts = time.time()
        for site, proc in self.procs.items():
            start = self.seq[site]
            lines = "".join(report(ts, n) + "\n" for n in range(start, start + per_site))
            self.seq[site] = start + per_site
            assert proc.stdin is not None
            proc.stdin.write(lines.encode())
            proc.stdin.flush()

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_phase(
    name: str,
    broker: Broker,
    sites: int,
    total: int,
    rate: float | None,
    mode: str,
    profile: bool,
    qos: int,
    script: Path = Path(__file__),
) -> dict[str, object]:
    """`total` messages over `sites`; paced at `rate`/s, or as a burst when rate is None.
    `script`: the bench whose consumer takes them (another revision's, for --compare)."""
    load = os.getloadavg()[0]
    consumer = subprocess.Popen(
        [sys.executable, str(script), "--consumer", "--port", str(broker.port)]
        + ["--sites", str(sites), "--expect", str(total), "--mode", mode]
        + (["--profile"] if profile else [])
        # another revision's consumer takes its own QoS: it may not know the option
        + (["--qos", str(qos)] if script == Path(__file__) else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert consumer.stdout is not None
    if consumer.stdout.readline().strip() != "ready":
        raise RuntimeError("consumer failed to start")
    dropped_before = broker.dropped()
    publishers = Publishers(broker.port, site_ids(sites))
    per_site = total // sites
    published_at = time.monotonic()
    try:
        if rate is None:
            publishers.send(per_site)
        else:
            tick = 0.05
            rounds = round(per_site / (rate * tick / sites))
            step = per_site // rounds
            start = time.monotonic()
            for n in range(rounds):
                publishers.send(step if n < rounds - 1 else per_site - step * (rounds - 1))
                delay = start + (n + 1) * tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        published = time.monotonic() - published_at
    finally:
        publishers.close()
    line = consumer.stdout.readline()
    consumer.wait(30)
    figures: dict[str, object] = json.loads(line)
    figures.update(
        name=name,
        sites=sites,
        sent=total,
        publish_seconds=published,
        broker_dropped=broker.dropped() - dropped_before,
        load=load,
    )
    return figures


def unpack(revision: str) -> tuple[Path, str]:
    """The tree of git `revision` in a temporary folder, and its short name."""
    short = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix=f"districtmon-bench-{short}-"))
    archive = subprocess.Popen(
        ["git", "-C", str(ROOT), "archive", short, "bench", "monitor", "config"],
        stdout=subprocess.PIPE,
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {revision} failed")
    return tree, short


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--consumer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="districtmon", help=argparse.SUPPRESS)
    parser.add_argument("--sites", type=int, default=100, help="sites (publisher processes)")
    parser.add_argument("--burst", type=int, default=50_000, help="messages in the drain phase")
    parser.add_argument(
        "--rates", default="10000,20000", help="paced rates to sustain, msg/s, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a paced phase")
    parser.add_argument("--profile", action="store_true", help="profile the drain phase")
    parser.add_argument(
        "--compare", metavar="REV", help="also run the daemon's phases with git revision REV"
    )
    parser.add_argument(
        "--repeat", type=int, default=0, help="runs of each daemon phase (1; 2 with --compare)"
    )
    parser.add_argument(
        "--qos", type=int, choices=(0, 1), help="the consumer's subscription QoS (the shipped one)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run (a few seconds)")
    args = parser.parse_args()
    if args.qos is None:
        args.qos = shipped_qos()
    if args.consumer:
        consume(args)
        return 0
    if shutil.which("mosquitto_pub") is None:
        sys.exit("mosquitto_pub not found (Debian package mosquitto-clients; ./dev setup)")
    if args.smoke:
        args.sites, args.burst, args.rates, args.seconds = 10, 2_000, "2000", 1.0
    repeat = args.repeat or (2 if args.compare else 1)
    this = Path(__file__)
    scripts: list[tuple[str, Path]] = [("", this)]
    old_tree = None
    if args.compare:
        old_tree, short = unpack(args.compare)
        scripts = [(f" @{short}", old_tree / "bench" / this.name), (" @new", this)]
    daemon: list[tuple[str, int, float | None]] = [("drain (burst)", args.burst, None)]
    for rate in (float(r) for r in args.rates.split(",") if r):
        daemon.append((f"sustained {rate:,.0f}/s", int(rate * args.seconds), rate))
    phases: list[tuple[str, int, float | None, str, bool, Path]] = []
    for name, total, pace in daemon:
        for _ in range(repeat):
            for suffix, script in scripts:
                phases.append((name + suffix, total, pace, "districtmon", False, script))
    phases.append(("aiomqtt iterator only", args.burst, None, "bare", False, this))
    phases.append(("aiomqtt hand-over only", args.burst, None, "inline", False, this))
    phases.append(("aiomqtt hand-over, read-ahead", args.burst, None, "readahead", False, this))
    if args.profile:
        phases.append(("drain, profiled", args.burst, None, "districtmon", True, this))
    broker = Broker()
    results = []
    try:
        for name, total, pace, mode, profile, script in phases:
            results.append(
                run_phase(name, broker, args.sites, total, pace, mode, profile, args.qos, script)
            )
    finally:
        broker.close()
        if old_tree is not None:
            shutil.rmtree(old_tree, ignore_errors=True)
    results.append(handling_only(args.sites, args.burst))
    print_table(results, args.qos)
    for result in results:
        if "profile" in result:
            print(f"\nprofile of the consumer, {result['name']} (cProfile inflates times):")
            print(result["profile"])
    ok = all(r["missing"] == 0 and r["out_of_order"] == 0 and r["in_state"] for r in results)
    return 0 if ok else 1


def print_table(results: list[dict[str, object]], qos: int) -> None:
    header = (
        f"{'phase':<{NAME}}{'sites':>6}{'sent':>9}{'taken':>9}{'lost':>7}{'broker':>7}"
        f"{'wall s':>8}{'msg/s':>9}{'CPU s':>7}{'CPU/msg':>9}{'core':>6}{'late s':>8}{'load':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        n, wall, cpu = int(r["messages"]), float(r["wall"]), float(r["cpu"])  # type: ignore[call-overload, arg-type]
        late = wall - float(r["publish_seconds"])  # type: ignore[arg-type]
        lost = int(r["sent"]) - n  # type: ignore[call-overload]
        print(
            f"{r['name']:<{NAME}}{r['sites']:>6}{r['sent']:>9,}{n:>9,}{lost:>7}"
            f"{r['broker_dropped']:>7}{wall:>8.2f}"
            f"{n / wall:>9,.0f}{cpu:>7.2f}{cpu / max(n, 1) * 1e6:>7.1f}us{cpu / wall:>6.0%}"
            f"{late:>8.2f}{r['load']:>6.2f}"
        )
    print(
        "\ntaken: messages that reached site state; lost: sent - taken (order and the last\n"
        "value per site are checked too); broker: of the lost, how many the broker itself\n"
        "dropped (its $SYS counter: queue limits exceeded); CPU: the consumer process only\n"
        "(user+system, all threads), first to last message; core: CPU s / wall s; late: how\n"
        "long after the last publish the consumer took the last message; load: the machine's\n"
        f"1-minute load average as the phase started ({os.cpu_count()} CPUs)."
    )
    print(f"broker limits: {BROKER_LIMITS.strip().replace(chr(10), ', ')}")
    print(f"published at QoS 1, subscribed at QoS {qos}")
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("aiomqtt", "paho-mqtt"))
    broker = subprocess.run(["/usr/sbin/mosquitto", "-h"], capture_output=True, text=True).stdout
    print(f"{versions}, {broker.splitlines()[0] if broker else 'mosquitto ?'}")


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
