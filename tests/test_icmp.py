"""The ICMP probe against the kernel's own echo replies, inside a namespace of the test's own:
there an address can be blackholed, or its echo requests dropped (all, or one in two) by
nftables, without touching the machine's network."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TypedDict

import pytest
from netns import NetNs, silence_echo

from monitor.config.settings import PollSettings
from monitor.core.model import IcmpProbe, Observation, Site
from monitor.probes.reach.icmp import IcmpPoller


class Timings(TypedDict):
    packet_interval_seconds: float
    timeout_seconds: float


FAST: Timings = {"packet_interval_seconds": 0.02, "timeout_seconds": 0.3}


def site(probe: IcmpProbe) -> Site:
    return Site("vc-thanh-nua", "video_endpoint", "Điểm cầu Thanh Nưa", "c", "o", 0, 0, probe)


def number(obs: Observation, name: str) -> float:
    """An unlabelled value the test expects to be a number, not text."""
    value = obs.values[name]
    assert isinstance(value, int | float), f"{name} is {value!r}"
    return value


def poll(ns: NetNs, probe: IcmpProbe, poller: IcmpPoller | None = None) -> Observation:
    with ns.entered():
        return asyncio.run(
            (poller or IcmpPoller(PollSettings(timeout_seconds=1.0))).poll(site(probe))
        )


def test_loopback_answers_every_echo_with_a_round_trip_time(netns: NetNs) -> None:
    obs = poll(netns, IcmpProbe("127.0.0.1", count=3, **FAST))
    assert obs.ok and obs.probe == "icmp" and obs.degraded_reason is None
    assert obs.values["loss_ratio"] == 0.0
    assert 0 < number(obs, "rtt_seconds") < 0.3
    assert obs.error is None


def test_raw_sockets_are_used_where_unprivileged_ping_is_not_allowed(netns: NetNs) -> None:
    netns.sysctl("net.ipv4.ping_group_range", "1 0")  # the kernel's default: nobody
    poller = IcmpPoller(PollSettings(timeout_seconds=1.0))
    assert poll(netns, IcmpProbe("127.0.0.1", **FAST), poller).ok
    assert poller.privileged is True


def test_unprivileged_datagram_sockets_are_preferred_where_allowed(netns: NetNs) -> None:
    gid = os.getgid()
    netns.sysctl("net.ipv4.ping_group_range", f"{gid} {gid}")
    poller = IcmpPoller(PollSettings(timeout_seconds=1.0))
    obs = poll(netns, IcmpProbe("127.0.0.1", **FAST), poller)
    assert obs.ok and obs.values["loss_ratio"] == 0.0
    assert poller.privileged is False


def test_a_host_name_is_resolved_first(netns: NetNs) -> None:
    assert poll(netns, IcmpProbe("localhost", **FAST)).ok


def test_silence_costs_one_timeout_after_the_last_request_not_one_per_request(
    netns: NetNs,
) -> None:
    """Requests go out every packet interval, as ping sends them, answered or not: a silent
    host ends the burst one timeout after its last request. Waiting a timeout per request
    (5 x 0.32 s here) made a poll of a dead host outlast a short poll interval, so polls were
    skipped and its outage confirmed several intervals late."""
    silence_echo(netns, "127.0.0.5")
    started = time.monotonic()
    obs = poll(netns, IcmpProbe("127.0.0.5", count=5, **FAST))
    elapsed = time.monotonic() - started
    assert not obs.ok
    assert obs.error_reason == "timeout"
    assert obs.values == {"loss_ratio": 1.0}  # no round trip to speak of
    assert obs.error == "icmp timeout: no reply to 5 echo requests"
    last_request = 4 * FAST["packet_interval_seconds"]
    assert last_request + FAST["timeout_seconds"] <= elapsed < 5 * FAST["timeout_seconds"]


def test_a_blackholed_address_is_unreachable(netns: NetNs) -> None:
    netns.blackhole("127.99.0.1")
    obs = poll(netns, IcmpProbe("127.99.0.1", **FAST))
    assert not obs.ok
    assert obs.error_reason == "unreachable"
    assert obs.values["loss_ratio"] == 1.0
    assert "Invalid argument" in (obs.error or "")


def test_loss_over_the_threshold_is_degraded(netns: NetNs) -> None:
    silence_echo(netns, "127.0.0.6", every=2)  # requests 1 and 3 of 3 dropped
    obs = poll(netns, IcmpProbe("127.0.0.6", count=3, max_loss_ratio=0.5, **FAST))
    assert obs.ok  # it answers...
    assert obs.values["loss_ratio"] == pytest.approx(2 / 3)
    assert obs.degraded_reason == "icmp loss 67% > 50%"  # ...but not well
    assert obs.codes == ("loss",)


def test_loss_within_the_threshold_is_healthy(netns: NetNs) -> None:
    silence_echo(netns, "127.0.0.6", every=2)
    obs = poll(netns, IcmpProbe("127.0.0.6", count=3, max_loss_ratio=0.7, **FAST))
    assert obs.ok and obs.degraded_reason is None
    assert obs.values["loss_ratio"] == pytest.approx(2 / 3)


def test_a_round_trip_over_slow_seconds_is_degraded(netns: NetNs) -> None:
    # loopback answers in microseconds: a threshold below that is always crossed
    obs = poll(netns, IcmpProbe("127.0.0.1", slow_seconds=1e-9, **FAST))
    assert obs.ok
    assert obs.degraded_reason is not None
    assert obs.degraded_reason.startswith("icmp round trip ")
    assert obs.degraded_reason.endswith("ms > 0.0 ms")
    assert obs.codes == ("slow",)


def test_an_unknown_host_name_fails_to_resolve(netns: NetNs) -> None:
    # inside the namespace no resolver is reachable: the lookup fails without leaving it
    obs = poll(netns, IcmpProbe("video.thanh-nua.invalid", **FAST))
    assert not obs.ok and obs.error_reason == "resolve"
