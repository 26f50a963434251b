"""The one place that reaches inside paho-mqtt: its socket is made by us, wrapped to read ahead.

paho has no public way to wrap the socket it connects with, so the paho client under aiomqtt
gets its (private) `_create_socket` method replaced, for this one client, by one that wraps
what paho's own makes -- TCP, TLS or otherwise -- in a ReadAheadSocket (readahead.py). Only
the name and the contract (no arguments, returns the connected socket) are relied on; paho
does the connecting, the TLS handshake, and all the framing as before. The versions this was
checked against are pinned in pyproject.toml, and tests/test_mqtt_readahead.py fails if paho
or aiomqtt change under it (the socket in use is not ours, or one readiness of the socket no
longer takes every whole packet that one read brought).

If paho no longer has the method, the client is left as it is (correct, but about twice the
CPU per message) and a warning says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiomqtt

from monitor.probes.mqtt.readahead import CHUNK, ReadAheadSocket

log = logging.getLogger(__name__)
_warned = False


def read_ahead(client: aiomqtt.Client, chunk: int = CHUNK) -> bool:
    """Make `client`'s connections read ahead; False (and a warning, once) if paho has no
    longer the hook this relies on."""
    global _warned
    paho = client._client
    create: Callable[[], Any] | None = getattr(paho, "_create_socket", None)
    if not callable(create):
        if not _warned:
            _warned = True
            log.warning(
                "mqtt: this paho-mqtt has no _create_socket: reading one packet per system "
                "call (correct, but slower; see monitor/probes/mqtt/pahosocket.py)"
            )
        return False

    def create_socket() -> ReadAheadSocket:
        return ReadAheadSocket(create(), chunk)

    paho._create_socket = create_socket  # type: ignore[method-assign]
    return True
