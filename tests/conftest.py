"""Shared fixtures: real SNMP agents on 127.0.0.1 high ports (see tests/peers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netns import NetNs
from peers import ROUTER_RECORDING, UPS_RECORDING, Snmpd, Snmpsim, recording

SNMPD_COMMUNITY = "district-test"
UPS_COMMUNITY = "ups-test"
ROUTER_COMMUNITY = "router-test"


@pytest.fixture
def snmpd() -> Iterator[Snmpd]:
    """A running net-snmp agent, v2c community "district-test" (and its v3 user)."""
    with Snmpd(community=SNMPD_COMMUNITY) as agent:
        agent.start()
        yield agent


@pytest.fixture
def snmpsim_agent() -> Iterator[Snmpsim]:
    """A running snmpsim: an APC UPS as community "ups-test", a Cisco router as "router-test"."""
    recordings = {
        UPS_COMMUNITY: recording(UPS_RECORDING),
        ROUTER_COMMUNITY: recording(ROUTER_RECORDING),
    }
    with Snmpsim(recordings) as agent:
        agent.start()
        yield agent


@pytest.fixture
def netns() -> Iterator[NetNs]:
    """A network namespace of the test's own, loopback up (tests/netns.py); deleted after."""
    with NetNs() as ns:
        yield ns
