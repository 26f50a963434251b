"""Splitting one inventory between several daemons: `districtmon run --shard i/N`.

Shard i of N (1-based, as `--shard 2/3`) watches the sites whose id hashes to it, SNMP and
MQTT alike: a stable hash (BLAKE2b of the id, the same on every machine and run) so that a
restart or a reload never moves a site, and adding a site moves no other.

MQTT sites are split by the same hash rather than by a shared subscription
(`$share/<group>/...`): a broker hands each message of a shared subscription to one member of
the group in turn, so one site's heartbeats would be spread over every shard and no shard
could tell silence from a share that went elsewhere. Each shard therefore subscribes to the
district's topics and keeps only its own sites' messages; the others are known (each shard
reads every site's id and topic) and ignored without being counted as hostile.

A shard reads in full only its own sites and their parents that other shards watch
(`load_shard`): of the others, only what the checks across sites need (inventory.py,
`_read_elsewhere`), and keeps of them only those it meets once loaded: the MQTT sites, whose
messages it hears, and its parents. It polls those parents too ("foreign parents"), without
ever reporting them: a site whose polls fail while its parent is out is unreachable, not
down, and only the parent's own polls say whether it is out. Their owning shard polls them as
well, so each foreign parent costs one more poll per interval. A shard's first load parses
the whole inventory's text, since every shard checks what spans sites: the parser's pass
over it is that load's floor, whatever N. The daemon keeps what each file read to
(reading_cache.py), so that its later loads, and the other shards' on the same state
directory, read only the files that changed, and each shard's part of it (its own sites and
the parents whole, the others slim: inventory.py, `_share_of`), which its later loads take
instead; and each share's outcome of the checks
(checked_inventory.py), so that a load of an unchanged inventory takes its own sites and
nothing of the others' but what it meets.

Each shard keeps its own ledger (the file name gets `.shard-i-of-N`), since a ledger's run
records speak for the sites its daemon watched, and its own MQTT client id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.config.checked_inventory import met_of_other_shards, parents_elsewhere
from monitor.config.forked import load_in_child
from monitor.config.load import Config, load_config

_SPEC = re.compile(r"([0-9]{1,4})/([0-9]{1,4})")


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 1-based
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 1 <= i <= N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/N`, e.g. `2/3`; ValueError with a message fit for the command line."""
        match = _SPEC.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"--shard must be i/N (e.g. 2/3), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    def owns(self, site_id: str) -> bool:
        return shard_of(site_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(site_id: str, count: int) -> int:
    """The 1-based shard of a site among `count`."""
    digest = hashlib.blake2b(site_id.encode(), digest_size=8, person=b"dm-shard").digest()
    return int.from_bytes(digest, "big") % count + 1


def restrict(config: Config, shard: Shard | None) -> Config:
    """The part of `config` that shard watches, and of the rest what it meets (its foreign
    parents, the MQTT sites of other shards: `met_of_other_shards`)."""
    if shard is None or shard.count == 1:
        return config
    mine = {site_id: site for site_id, site in config.sites.items() if shard.owns(site_id)}
    others = {site_id: site for site_id, site in config.sites.items() if site_id not in mine}
    foreign = parents_elsewhere(mine, others)
    shared = replace(
        config,
        sites=mine,
        sites_of_other_shards=met_of_other_shards(others, foreign),
        foreign_parents=foreign,
    )
    return _named_for(shared, shard)


def _named_for(config: Config, shard: Shard) -> Config:
    """A shard's own ledger file and MQTT client id."""
    suffix = f".shard-{shard.index}-of-{shard.count}"
    ledger = config.ledger_path
    return replace(
        config,
        ledger_path=ledger.with_name(ledger.stem + suffix + ledger.suffix),
        mqtt=replace(config.mqtt, client_id=f"{config.mqtt.client_id}{suffix}"[:64]),
    )


def load_shard(
    directory: Path,
    shard: Shard | None,
    environ: Mapping[str, str] | None = None,
    *,
    cache: bool = False,
) -> Config:
    """The configuration a daemon of `shard` runs on, what `districtmon run` and its reloads
    load (`environ` as for load_config): the sites of the shard and their foreign parents,
    read and checked in full; the others only as far as what spans sites needs
    (`read_inventory`), so that a shard of N spends about 1/N of the whole inventory's memory
    on sites. `restrict(load_config(...))` gives the same sites and foreign parents, by way
    of all of them. `cache` as for load_config: the daemon's loads keep what each inventory
    file read to, so that a shard's next load reads none of an unchanged inventory."""

    def load() -> Config:
        if shard is None or shard.count == 1:
            return load_config(directory, environ, cache=cache)
        return _named_for(load_config(directory, environ, share=shard, cache=cache), shard)

    loaded = load_in_child(load)  # the daemon keeps what it loaded, not what loading took
    return load() if loaded is None else loaded
