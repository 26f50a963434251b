"""The shipped device profiles and the simulator speak one MIB: the daemon, polling the simulated
district through the shipped profiles, reads every value each profile names, for every kind
the simulator plays over SNMP. A profile reading an OID the simulator does not serve shows
here as a missing series and a non-zero `districtmon_device_snmp_values_missing`."""

from __future__ import annotations

import re
from pathlib import Path

from harness import Daemon, free_tcp_port, wait_for
from peers import free_udp_port
from simpeers import Simulator, write_district

from monitor.config.load import load_config

COMMUNES = ["thanh-nua", "muong-nha", "thanh-xuong"]  # BTS, gateways, radio stations of each


def series(text: str) -> set[tuple[str, str]]:
    """(metric name, site) of every sample on /metrics."""
    found = set()
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, labels = line.split("{", 1)
        site = re.search(r'site="([^"]*)"', labels)
        if site:
            found.add((name, site.group(1)))
    return found


def test_every_value_of_the_shipped_profiles_is_answered_by_the_simulator(tmp_path: Path) -> None:
    port, http = free_udp_port(), free_tcp_port()
    settings = f"""
http: {{listen: "127.0.0.1:{http}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: 1.0, timeout_seconds: 1.0, retries: 1}}
"""
    config = write_district(
        tmp_path / "config", communes=COMMUNES, kinds=["bts", "gateway", "radio_station"],
        port=port, settings=settings, profiles=True,
    )  # fmt: skip
    loaded = load_config(config, environ={})
    by_profile: dict[str, list[str]] = {}
    for each in loaded.sites.values():
        profile = getattr(each.probe, "profile", None)
        assert profile is not None, each.id
        by_profile.setdefault(profile, []).append(each.id)
    assert set(by_profile) == {"bts-power", "router", "radio-transmitter"}
    with Simulator(config) as sim:
        sim.wait_ready()
        daemon = Daemon(config, http)
        try:

            def all_polled() -> bool:
                try:
                    _, text = daemon.get("/metrics")
                except OSError:
                    return False
                missing = "districtmon_device_snmp_values_missing"
                polled = {site for name, site in series(text) if name == missing}
                if not polled >= set(loaded.sites):
                    return False
                # a whole poll of each: the core router's walk of its ports can outrun its
                # budget on a loaded machine, and then lists the columns it did not reach
                return all(daemon.metric(missing, site=site) == 0 for site in loaded.sites)

            wait_for("a complete profile poll of every site", all_polled, daemon, limit=60)
            _, text = daemon.get("/metrics")
            found = series(text)
            for profile_id, sites in by_profile.items():
                profile = loaded.profiles[profile_id]
                names = [v.name for v in profile.scalars if v.kind != "text"]
                names += [c.name for table in profile.tables for c in table.columns]
                for site in sites:
                    assert daemon.metric("districtmon_device_snmp_values_missing", site=site) == 0
                    assert daemon.metric("districtmon_device_snmp_values_malformed", site=site) == 0
                    absent = [n for n in names if (f"districtmon_device_{n}", site) not in found]
                    assert not absent, f"{site} ({profile_id}) lacks {absent}"
            log = daemon.log.read_text()
            assert "not answered" not in log and "malformed" not in log, log[-3000:]
            # what the simulator serves reads as the profile means it
            assert daemon.metric("districtmon_device_door_open", site="bts-vtl-thanh-nua-01") == 0
            sim.ctl("/sites/bts-vtl-thanh-nua-01/door-open")
            wait_for(
                "the open door read through the profile",
                lambda: (
                    daemon.metric("districtmon_device_door_open", site="bts-vtl-thanh-nua-01") == 1
                ),
                daemon,
            )
            on_air = "districtmon_device_transmitter_on_air"
            assert daemon.metric(on_air, site="radio-muong-nha") == 1
            sim.ctl("/sites/radio-muong-nha/transmitter-fault")
            wait_for(
                "the transmitter fault read through the profile",
                lambda: (
                    daemon.metric(on_air, site="radio-muong-nha") == 0
                    and daemon.metric(
                        "districtmon_device_transmitter_fault", site="radio-muong-nha"
                    )
                    == 1
                ),
                daemon,
            )
            assert daemon.stop() == 0
        finally:
            daemon.kill()
