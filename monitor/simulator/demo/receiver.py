"""The demo's stand-in for every owner's NOC desk, phone and ticketing system: an HTTP server on
loopback that takes Alertmanager's webhook calls (`POST /<receiver name>`), appends each to a
JSON-lines file and tells it on the terminal, so that a newcomer sees who was paged for what,
and when, without any e-mail or chat account."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo


def describe(receiver: str, payload: dict[str, Any], zone: ZoneInfo, at: float) -> str:
    """One line for the terminal: when, to whom, and each alert of the notification."""
    when = datetime.fromtimestamp(at, zone).strftime("%H:%M:%S")
    alerts = []
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        summary = alert.get("annotations", {}).get("summary") or labels.get("alertname", "?")
        state = "" if alert.get("status") == "firing" else " (resolved)"
        alerts.append(f"{summary}{state}")
    status = str(payload.get("status", "?")).upper()
    return f"  {when}  page to {receiver}, {status}: " + "; ".join(alerts)


class Receiver:
    """Serves on `host:port` in a thread; every notification is one line of `path`:
    `{"received": <Unix seconds>, "receiver": <name>, "payload": <Alertmanager's JSON>}`."""

    def __init__(
        self,
        host: str,
        port: int,
        path: Path,
        zone: ZoneInfo,
        out: TextIO = sys.stdout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        lock = threading.Lock()
        log = path.open("a", encoding="utf-8")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    payload = json.loads(body.decode())
                except (UnicodeDecodeError, json.JSONDecodeError):
                    self.send_error(400, "not JSON")
                    return
                receiver = self.path.strip("/")
                at = clock()
                record = {"received": at, "receiver": receiver, "payload": payload}
                with lock:
                    log.write(json.dumps(record, ensure_ascii=False) + "\n")
                    log.flush()
                    print(describe(receiver, payload, zone, at), file=out, flush=True)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: each notification is told once, by do_POST."""

        self._log = log
        self._server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="receiver", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._log.close()
