"""A simulated loudspeaker cluster for tests: `python device.py HOST PORT BASE_TOPIC PERIOD`.

Connects with a retained last will `offline` on BASE_TOPIC/status, publishes a retained
`online`, then a telemetry report every PERIOD seconds, reconnecting when the broker comes
back (and saying `online` again). Prints "ready" once connected. Killed with SIGKILL, it
leaves the broker to publish its will, as a cluster that loses power does.
DEVICE_USERNAME and DEVICE_PASSWORD in the environment give it a broker account.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> None:
    host, port, base, period = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"device-{base}")
    client.will_set(f"{base}/status", "offline", qos=1, retain=True)
    # paho annotates the delays as int, but takes (and the tests need) fractions of a second
    client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
    if "DEVICE_USERNAME" in os.environ:
        client.username_pw_set(os.environ["DEVICE_USERNAME"], os.environ["DEVICE_PASSWORD"])

    connected = threading.Event()

    def on_connect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        c.publish(f"{base}/status", "online", qos=1, retain=True)
        connected.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=5)
    client.loop_start()
    if not connected.wait(10):
        sys.exit("no CONNACK from the broker")
    print("ready", flush=True)
    volts = 13.6  # floating on its charger: mains present
    while True:
        report = {"ts": time.time(), "online": True, "amplifier_ok": True, "volume": 70}
        report["battery_volts"] = volts
        client.publish(f"{base}/telemetry", json.dumps(report), qos=1)
        time.sleep(period)


if __name__ == "__main__":
    main()
