"""Splitting the inventory between daemons: stable, complete, disjoint (the three-process run
against a real broker is in test_mqtt_daemon.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.config.load import load_config
from monitor.config.shards import Shard, restrict, shard_of

SHIPPED = load_config(Path(__file__).parents[1] / "config", {})


@pytest.mark.parametrize("count", [2, 3, 7])
def test_shards_cover_the_shipped_district_once(count: int) -> None:
    shares = [restrict(SHIPPED, Shard(index, count)) for index in range(1, count + 1)]
    owned = [set(share.sites) for share in shares]
    assert set().union(*owned) == set(SHIPPED.sites)
    assert sum(len(ids) for ids in owned) == len(SHIPPED.sites)
    for share in shares:
        assert set(share.sites) | set(share.sites_of_other_shards) == set(SHIPPED.sites)
        assert len(share.sites) > len(SHIPPED.sites) / count / 2  # roughly even


def test_the_hash_is_pinned_so_that_an_upgrade_never_moves_a_site() -> None:
    sites = ["bts-vtl-thanh-nua-01", "loa-thanh-nua-01", "gw-ubnd-na-tong", "radio-huyen"]
    assert [shard_of(site, 3) for site in sites] == [1, 2, 1, 3]


def test_a_shard_has_its_own_ledger_and_client_id() -> None:
    share = restrict(SHIPPED, Shard(2, 3))
    assert share.ledger_path.name == "ledger.shard-2-of-3.sqlite"
    assert share.mqtt.client_id == "districtmon.shard-2-of-3"
    assert restrict(SHIPPED, None) is SHIPPED
    assert restrict(SHIPPED, Shard(1, 1)) is SHIPPED


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/3"])
def test_a_bad_shard_is_refused_on_the_command_line(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--shard", text, "-c", str(SHIPPED.directory)])
    assert exit_info.value.code == 2
    assert "--shard" in capsys.readouterr().err
