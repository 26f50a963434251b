"""Every bench still runs and still measures what the daemon really does: each one's smoke mode
(a few seconds to a minute, bounded) must print its table with real figures -- counts that
match what was sent, rates and CPU that are not zero -- so that a bench that hangs, or that
stopped measuring (a sink that drifted from the pipeline's interface), fails here. Their real
figures come from running them by hand at full size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "bench" / "ledger_bench.py"


def test_the_ledger_benchmark_runs_and_prints_its_table() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--sites", "300", "--days", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = {line.split("  ")[0]: line for line in out.stdout.splitlines()}
    for measure in (
        "bytes per site per day", "31-day report, by site", "ledger file",
        "/report page (commune, owner, kind)", "a commune's 30 days (status page)",
    ):  # fmt: skip
        assert measure in lines, out.stdout
    per_day = int(lines["bytes per site per day"].split()[5].replace(",", ""))
    assert 0 < per_day < 5000


SOAK = Path(__file__).parents[1] / "bench" / "soak.py"


def test_the_soak_survives_one_fault_of_each_kind() -> None:
    """bench/soak.py --smoke: the daemon against a broker, devices, services, its trap port and
    a ledger disk of its own, through one fault of each kind; every must-be-zero figure is."""
    out = subprocess.run(
        [sys.executable, str(SOAK), "--smoke"],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    rows = {line[:33].strip(): line[33:].strip() for line in out.stdout.splitlines()}
    assert out.returncode == 0, out.stdout + out.stderr
    assert rows["faults in all"] == "8", out.stdout
    for must_be_zero in (
        "false downs",
        "missed downs",
        "lost ledger intervals",
        "tracebacks in the log",
    ):
        assert rows[must_be_zero] == "0", out.stdout
    assert rows["trap datagrams sent / uncounted"] == "2000 / 0"
    assert rows["ledger overlaps / integrity"] == "0 / ok"


def test_the_config_load_benchmark_loads_a_generated_province_whole_and_as_a_shard() -> None:
    """bench/config_bench.py --smoke: 2,000 generated sites loaded as `districtmon run` loads
    them, whole and as --shard 1/2 and 1/4, reading every file, then from the readings a
    whole load kept (a shard keeping its part of each, then taking it), then from each
    share's kept outcome of the checks; a shard keeps its
    share and of the rest what it meets, the same every way."""
    out = _smoke("config_bench.py", 120)
    rows = {}
    for line in out.stdout.splitlines()[2:]:
        sites, load, readings, wall, cpu, peak, after, before, kept, others = line.split()
        rows[load, readings] = (int(kept.replace(",", "")), int(others.replace(",", "")))
        assert sites == "2,000" and float(wall) > 0 and float(cpu) > 0, out.stdout
        assert float(after) <= float(peak) and float(before) <= float(peak), out.stdout
    kinds = ("none", "files", "outcome")
    assert set(rows) == {
        *((load, readings) for load in ("whole", "1/2", "1/4") for readings in kinds),
        ("whole", "made"),
        ("1/2", "parts"),
        ("1/4", "parts"),
    }, out.stdout
    assert rows["whole", "none"] == rows["whole", "made"] == (2000, 0), out.stdout
    assert 700 < rows["1/2", "none"][0] < 1300, out.stdout
    assert 300 < rows["1/4", "none"][0] < 700, out.stdout
    for load in ("1/2", "1/4"):  # of the others' sites, a part: those it meets
        assert 0 < rows[load, "none"][1] < 2000 - rows[load, "none"][0], out.stdout
    for load in ("whole", "1/2", "1/4"):
        assert rows[load, "files"] == rows[load, "outcome"] == rows[load, "none"], out.stdout
    for load in ("1/2", "1/4"):
        assert rows[load, "parts"] == rows[load, "none"], out.stdout


def _smoke(name: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """bench/NAME --smoke, bounded: a bench that hangs fails here instead of hanging the run."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "bench" / name), "--smoke"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def _number(text: str) -> float:
    return float(text.strip().replace(",", "").removesuffix("us").removesuffix("%"))


def test_the_mqtt_benchmark_takes_every_report_it_sent_into_site_state() -> None:
    """bench/mqtt_bench.py --smoke: reports through a real mosquitto into the daemon's own
    listener and pipeline. Every phase took into state exactly what the publishers sent (the
    bench checks order and the last value of each site too, in its exit code), at a rate and a
    CPU cost that are real measurements, not zeros."""
    out = _smoke("mqtt_bench.py", 150)
    rows = {}
    for line in out.stdout.splitlines():
        cells = line[32:].split()  # the phase's name, then 12 figures
        if len(cells) == 12 and cells[0].isdigit():
            rows[line[:32].strip()] = cells
    assert set(rows) == {
        "drain (burst)",
        "sustained 2,000/s",
        "aiomqtt iterator only",
        "aiomqtt hand-over only",
        "aiomqtt hand-over, read-ahead",
        "handling only (no MQTT)",
    }, out.stdout
    for name, cells in rows.items():
        sites, sent, taken, lost, dropped, wall, rate, _cpu, per_msg, _core, _late, load = cells
        assert (sites, sent, taken, lost, dropped) == ("10", "2,000", "2,000", "0", "0"), name
        assert _number(wall) > 0 and _number(rate) > 0, (name, out.stdout)
        assert 0 < _number(per_msg) < 10_000, (name, out.stdout)  # microseconds per message
        assert _number(load) >= 0, (name, out.stdout)
    assert "aiomqtt 2." in out.stdout and "paho-mqtt 2." in out.stdout, out.stdout


def test_the_simulator_benchmark_answers_every_get_it_is_sent() -> None:
    """bench/simulator_bench.py --smoke: a real `districtmon simulate` of 300 sites, driven by a
    gufo_snmp load generator. The simulator's own count of answers agrees with what the load
    generator got back, and nothing failed."""
    out = _smoke("simulator_bench.py", 150)
    rows = {}
    for line in out.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0].startswith(("GET", "idle")):
            rows[cells[0]] = cells[1:]
    assert len(rows) == 6, out.stdout
    for name, (_rate, answers, got, failed, per_answer, *_) in rows.items():
        if name.startswith("idle"):
            continue
        assert failed == "0", (name, out.stdout)
        assert int(got) > 0, (name, out.stdout)
        if name.startswith("GETBULK"):
            assert int(answers) > int(got), (name, out.stdout)  # several requests per walk
        else:
            assert int(answers) == int(got), (name, out.stdout)
        assert _number(per_answer) >= 0, (name, out.stdout)


def test_the_probe_benchmark_gets_every_poll_back_answered() -> None:
    """bench/probes.py --smoke: the real ICMP (raw and datagram sockets), TCP, HTTP(S) and DNS
    pollers against peers in other processes; every poll asked came back, answered."""
    out = _smoke("probes.py", 120)
    rows: dict[str, list[list[str]]] = {}
    for line in out.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[1].isdigit():
            rows.setdefault(cells[0], []).append(cells[1:])
    assert set(rows) == {
        "icmp (raw, 1 echo)",
        "icmp (datagram, 1 echo)",
        "tcp connect",
        "http GET (4 KiB page)",
        "https GET (4 KiB page)",
        "dns A (dnsmasq)",
    }, out.stdout
    for name, runs in rows.items():
        for polls, done, _in_flight, rate, cpu, failed in runs:
            assert int(polls) > 0 and done == polls and failed == "0", (name, out.stdout)
            assert _number(rate) > 0 and _number(cpu) > 0, (name, out.stdout)


def test_the_snmp_benchmark_polls_every_site_as_often_as_asked_beside_snmp_exporter() -> None:
    """bench/snmp_bench.py --smoke: 50 snmpsim agents polled every 2 s by Prometheus'
    snmp_exporter, by the gufo engine alone and by the whole daemon on it. Each target polled
    every site about once per interval over the measured window, none failed, and the CPU per poll
    is a measurement of the process (the exporter's row is the 1.00x the others compare to)."""
    out = _smoke("snmp_bench.py", 170)
    rows = {}
    for line in out.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 13 and cells[1] == "50":
            rows[cells[0]] = cells[1:]
    assert set(rows) == {"exporter", "engine:gufo", "daemon:gufo"}, out.stdout
    assert rows["exporter"][6] == "1.00x", out.stdout
    for target, (_sites, interval, rate, failed, per_1000, _core, ratio, *_) in rows.items():
        assert failed == "0", (target, out.stdout)
        # Polls are counted as they end: on a loaded machine a second of latency at either
        # edge of the 6 s window moves a sixth of them in or out, nothing more.
        asked = 50 / float(interval)
        assert 0.6 * asked <= float(rate) <= 1.4 * asked, (target, out.stdout)
        assert float(per_1000) > 0 and ratio.endswith("x"), (target, out.stdout)
    # the daemon is scraped through its window as the shipped Prometheus config scrapes it
    assert "- daemon:gufo: " in out.stdout and "a gzip /metrics scrape every 2 s" in out.stdout


def test_the_status_page_benchmark_loads_the_page_in_chromium_and_prints_its_weight() -> None:
    """bench/status_bench.py --smoke: the page served by the daemon's HTTP server and drawn in
    headless Chromium, with the wrong sites of a 300-site province listed."""
    out = _smoke("status_bench.py", 120)
    _head, row = out.stdout.splitlines()
    sites, page, data, first, every, summary, render, commune, commune_ms = row.split()
    assert sites == "300"
    assert float(page) > 0 and 0 < float(data) < float(every)
    # each column is rounded to 0.1 KB: the sum of two may differ from the total by one step
    assert abs(float(first) - float(page) - float(data)) <= 0.1 + 1e-9
    assert float(first) <= 200 and float(summary) > 0 and float(render) > 0
    assert 0 < float(commune) < float(every) and float(commune_ms) > 0
