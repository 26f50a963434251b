"""The inventory read and checked across sites, as the rest of a load takes it, and kept so
between loads while nothing that the checks depend on has changed.

A shard's load reads and checks every site of the province, since what spans sites (ids,
parents, topics) spans shards too: even from each file's kept reading (reading_cache.py)
that is most of its load, whatever its share. Yet what comes out of it depends on little: the
inventory files' bytes and paths, the reading code, the share, the credential names that
credentials.yaml declares and the device profiles there are. The outcome of a load with no
problem is kept under a digest of exactly these, one per share (`<digest>.<share>.checked`),
so that a restart, or a reload that changed no inventory file, credential name or profile,
takes its own sites from there and reads, checks and builds no other shard's. Anything
else a load reads (the settings, the secrets, maintenance windows, the MQTT topics'
layout) is read and checked at every load as before: the kept outcome holds no secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from monitor.config.credentials import Credentials
from monitor.config.inventory import (
    Entry,
    Inventory,
    check_inventory,
    inventory_files,
    read_inventory,
)
from monitor.config.problems import ConfigProblem
from monitor.config.reading_cache import ReadingCache
from monitor.core.model import Commune, MqttProbe, Owner, Site, SnmpProbe

#: The kept outcomes' files, beside the kept readings of the files.
SUFFIX = ".checked"


class Share(Protocol):
    """A daemon's part of the inventory (shards.Shard); its str() names it, as `2/3`."""

    def owns(self, site_id: str) -> bool: ...


@dataclass(slots=True)
class CheckedInventory:
    """What a load takes of the inventory once it is read and checked."""

    communes: dict[str, Commune]
    owners: dict[str, Owner]
    sites: dict[str, Site]  # the share's own, every site when there is no share
    # of other shards' sites those the share meets once loaded (`met_of_other_shards`)
    met: dict[str, Site]
    site_ids: tuple[str, ...]  # every site's of the inventory (maintenance windows name any)
    mqtt: list[Entry[Site]]  # every MQTT site's entry, for the checks of its topic
    complete: bool  # every file parsed: absent references are really absent


def checked_inventory(
    directory: Path,
    credentials: Credentials | None,
    credentials_file: Path,
    profiles: Collection[str] | None,
    defaults: Mapping[str, str],
    problems: list[ConfigProblem],
    share: Share | None,
    cache: Path | None,
) -> CheckedInventory:
    """The inventory under `directory` read and checked (problems into `problems`), for
    `share` (None: the whole), each SNMP site that names no profile given its kind's in
    `defaults` (snmp.default_profiles). With `cache` (the kept readings' directory), a kept
    outcome is taken if there is one for what the load depends on, else the files' kept
    readings are, and the outcome of a load with no problem is kept."""
    mine = None if share is None else share.owns
    if cache is None:
        outcome, _ = _checked(
            directory, credentials, credentials_file, profiles, defaults, problems, mine, None
        )
        return outcome
    readings = ReadingCache(cache, (Entry, Inventory))
    outcomes = ReadingCache(cache, (Entry, CheckedInventory), SUFFIX)
    names = (credentials, profiles, defaults)
    tag = share_tag(share)
    digest = _digest(_keys(readings, directory), *names)
    kept = None if digest is None else outcomes.get(f"{digest}.{tag}")
    if isinstance(kept, CheckedInventory):
        return kept
    before = len(problems)
    part = None if share is None else tag
    outcome, keys = _checked(
        directory, credentials, credentials_file, profiles, defaults, problems, mine, readings, part
    )
    # kept under the digest of the bytes read, which are not those looked up by if a file
    # changed in between: it is then the outcome of the inventory as it is now
    read = _digest(keys, *names)
    if read is not None and len(problems) == before and outcome.complete:
        outcomes.put(f"{read}.{tag}", outcome)
        outcomes.keep_only([read])  # every share's outcome of the inventory as it is
    return outcome


def _checked(
    directory: Path,
    credentials: Credentials | None,
    credentials_file: Path,
    profiles: Collection[str] | None,
    defaults: Mapping[str, str],
    problems: list[ConfigProblem],
    mine: Callable[[str], bool] | None,
    readings: ReadingCache | None,
    part: str | None = None,
) -> tuple[CheckedInventory, list[str | None]]:
    """The outcome, and the keys of the files' bytes it was read from (with `readings`)."""
    inventory = read_inventory(directory, problems, mine, readings, part)
    checked = check_inventory(inventory, credentials, credentials_file, profiles, problems)
    elsewhere = {entry.id for entry in inventory.sites if not entry.mine}
    own = {key: site for key, site in checked.sites.items() if key not in elsewhere}
    others = {key: site for key, site in checked.sites.items() if key in elsewhere}
    own = _with_default_profiles(own, defaults)
    foreign = _with_default_profiles(parents_elsewhere(own, others), defaults)
    outcome = CheckedInventory(
        communes=checked.communes,
        owners=checked.owners,
        sites=own,
        met=met_of_other_shards(others, foreign),
        site_ids=tuple(checked.sites),
        mqtt=[_for_topics(e) for e in inventory.sites if isinstance(e.value.probe, MqttProbe)],
        complete=inventory.complete,
    )
    return outcome, inventory.keys


def _with_default_profiles(sites: dict[str, Site], defaults: Mapping[str, str]) -> dict[str, Site]:
    """Each SNMP site that names no profile gets its kind's default, if there is one."""
    if not defaults:
        return sites
    found: dict[str, Site] = {}
    for site_id, site in sites.items():
        probe = site.probe
        if isinstance(probe, SnmpProbe) and probe.profile is None and site.kind in defaults:
            site = replace(site, probe=replace(probe, profile=defaults[site.kind]))
        found[site_id] = site
    return found


def _for_topics(entry: Entry[Site]) -> Entry[Site]:
    """An MQTT site's entry as the checks of topics read it (load.py, `_check_mqtt`): its
    place, not the places of its references and covered areas, which would make the kept
    outcome, and what a load from it reads and drops, half as large again."""
    kept = Entry(entry.value, entry.id, entry.file, entry.line, entry.key, entry.subject)
    kept.probe_line, kept.probe_key = entry.probe_line, entry.probe_key
    kept.mine, kept.whole = entry.mine, entry.whole
    return kept


def _keys(readings: ReadingCache, directory: Path) -> list[str | None]:
    """Each inventory file's key as it is now (reading_cache.py: its path, its bytes and
    the reading code); empty when there is no directory to list (its reading says so)."""
    try:
        files = inventory_files(directory)
    except OSError:
        return []
    return [readings.key(path) for path in files]


def _digest(
    keys: list[str | None],
    credentials: Credentials | None,
    profiles: Collection[str] | None,
    defaults: Mapping[str, str],
) -> str | None:
    """A digest of all that a load's outcome of the inventory depends on: each file's key,
    the credential names declared, the profiles there are and the kinds' default profiles;
    None when a file could not be read, or none was (its reading says why)."""
    if not keys or None in keys:
        return None
    digest = hashlib.sha256(b"districtmon checked inventory\0")
    for key in keys:
        digest.update(f"{key}\0".encode())
    declared = None if credentials is None else sorted(credentials.declared)
    known = None if profiles is None else sorted(profiles)
    digest.update(repr((declared, known, sorted(defaults.items()))).encode())
    return digest.hexdigest()


def share_tag(share: Share | None) -> str:
    """A share's name in a file name: `2-of-3`, or `whole`."""
    if share is None:
        return "whole"
    return "".join(
        c if c.isascii() and c.isalnum() else "-" for c in str(share).replace("/", "-of-")
    )


def parents_elsewhere(sites: Mapping[str, Site], others: Mapping[str, Site]) -> dict[str, Site]:
    """The sites of `others` that a site of `sites` names as its parent, in `others`' order.
    Only direct parents: one that does not answer is down or unreachable, and either way its
    child is unreachable, so its own parent's state adds nothing to the child's."""
    named = {site.parent for site in sites.values()}
    return {key: site for key, site in others.items() if key in named}


def met_of_other_shards(others: Mapping[str, Site], foreign: Mapping[str, Site]) -> dict[str, Site]:
    """Of the sites of `others` (other shards'), those a shard meets once loaded, in `others`'
    order: its foreign parents (`foreign`, whole), which it polls, and the MQTT sites, whose
    topics it hears. Keeping every other site would make a shard's memory the province's,
    not its share's."""
    return {
        key: foreign.get(key, site)
        for key, site in others.items()
        if key in foreign or isinstance(site.probe, MqttProbe)
    }
