"""A reload changes which sites of other shards a shard follows for its own sites' sake (their
parents), when the inventory changes and when N does: a running daemon must follow the new
set at once, or a child whose new parent is out is charged as down for what is not its fault.

The daemon runs in this process on loopback; its sites are TCP probes of ports nobody listens
on (refused: the site does not answer), so nothing else needs to run."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path

from harness import free_tcp_port, wait_in_loop

from monitor.config.load import Config
from monitor.config.shards import Shard, load_shard, shard_of
from monitor.runtime.daemon import run_daemon

CHILD = "vc-thanh-nua"
FOREIGN = "districtmon_shard_foreign_parents"


def a_parent_elsewhere(child: str, count: int) -> str:
    """A gateway id that hashes to another shard than `child` at `count` shards."""
    return next(
        name
        for name in (f"gw-ubnd-thanh-nua-{n}" for n in range(100))
        if shard_of(name, count) != shard_of(child, count)
    )


def write_config(root: Path, http_port: int, parent: str, child_parent: str | None) -> Path:
    dead = free_tcp_port()  # bound for a moment, then nobody listens: each poll is refused
    root.mkdir(parents=True, exist_ok=True)
    (root / "inventory").mkdir(exist_ok=True)
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: {root.parent / "ledger.sqlite"}}}
poll: {{interval_seconds: 0.3, timeout_seconds: 0.2, retries: 0}}
state: {{down_after: 2, up_after: 1}}
""",
        encoding="utf-8",
    )
    (root / "credentials.yaml").write_text("snmp: {}\n", encoding="utf-8")
    probe = f"probe: {{tcp: {{address: 127.0.0.1, port: {dead}}}}}"
    where = "commune: thanh-nua, owner: district-it, lat: 21.35, lon: 103.03"
    link = f", parent: {child_parent}" if child_parent else ""
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-nua, name: Thanh Nưa, lat: 21.346, lon: 103.03}}
owners:
  - {{id: district-it, name: Trung tâm Văn hóa - Thông tin huyện Điện Biên, kind: agency}}
sites:
  - {{id: {parent}, kind: gateway, name: Cổng UBND xã, {where}, {probe}}}
  - {{id: {CHILD}, kind: video_endpoint, name: Điểm cầu xã, {where}{link}, {probe}}}
""",
        encoding="utf-8",
    )
    return root


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
        return str(answer.read().decode())


def states(port: int) -> dict[str, str]:
    """What the shard reports: every site of its /api/v1/sites with its state."""
    report = json.loads(get(port, "/api/v1/sites"))
    return {site["id"]: site["state"] for site in report["sites"]}


def gauge(port: int) -> float | None:
    for line in get(port, "/metrics").splitlines():
        if line.startswith(f"{FOREIGN} "):
            return float(line.split()[1])
    return None


async def test_a_reload_follows_the_new_foreign_parents_of_a_shard(tmp_path: Path) -> None:
    port = free_tcp_port()
    parent = a_parent_elsewhere(CHILD, 2)
    shard = Shard(shard_of(CHILD, 2), 2)
    alone = write_config(tmp_path / "alone", port, parent, None)
    linked = write_config(tmp_path / "linked", port, parent, parent)
    configs = [load_shard(linked, shard, {}), load_shard(linked, None, {})]

    def reload() -> Config:
        return configs.pop(0)

    stop = asyncio.Event()
    first = load_shard(alone, shard, {})
    daemon = asyncio.create_task(run_daemon(first, reload_config=reload, stop=stop))

    async def until(what: str, check: Callable[[], bool]) -> None:
        await wait_in_loop(what, check, daemon)

    try:
        # no parent: the child's own outage, and the other shard's gateway not polled here
        await until("the child down", lambda: states(port) == {CHILD: "down"})
        assert gauge(port) == 0
        # its parent is now the other shard's gateway, out too: followed, never reported
        signal.raise_signal(signal.SIGHUP)
        await until("the child unreachable", lambda: states(port) == {CHILD: "unreachable"})
        assert gauge(port) == 1
        assert f'site="{parent}"' not in await asyncio.to_thread(get, port, "/metrics")
        # one daemon again: the gateway is its own, reported down, the child still behind it
        signal.raise_signal(signal.SIGHUP)
        expected = {parent: "down", CHILD: "unreachable"}
        await until("the gateway reported", lambda: states(port) == expected)
        assert gauge(port) == 0
    finally:
        stop.set()
        await asyncio.wait_for(daemon, 15)
