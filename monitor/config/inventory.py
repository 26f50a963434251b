"""inventory/*.yaml: communes, owners and sites, read in two passes.

The first pass reads each entry on its own (types, ranges, unknown keys); the second checks
what spans entries and files (duplicate ids, references to communes, owners, parents,
credentials and profiles, parent cycles). When a file could not be parsed at all, the
reference checks that it could have satisfied are skipped rather than reported once per site.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Generic, TypeVar

from monitor.config.credentials import Credentials
from monitor.config.fields import Fields, Located, Sink, is_slug, open_document, or_default
from monitor.config.located import (
    ItemStream,
    Keeps,
    Passage,
    StreamedList,
    YamlMap,
    read_passage,
)
from monitor.config.probe_sections import PROBE_READERS
from monitor.config.problems import ConfigProblem, YamlReadError
from monitor.config.reading_cache import ReadingCache
from monitor.config.suggest import did_you_mean
from monitor.core.model import (
    OWNER_KINDS,
    SITE_KINDS,
    Commune,
    MqttProbe,
    Owner,
    Probe,
    Site,
    SnmpProbe,
)

T = TypeVar("T")


_INVENTORY_KEYS = ("communes", "owners", "sites")


_COMMUNE_KEYS = ("id", "name", "lat", "lon", "areas")


_OWNER_KEYS = ("id", "name", "kind")


_SITE_KEYS = ("id", "kind", "name", "commune", "owner", "lat", "lon", "parent", "covers", "probe",
              "objective")  # fmt: skip


_SITE_REQUIRED = ("id", "kind", "name", "commune", "owner", "lat", "lon", "probe")


# All of inventory/*.yaml together: 32 MiB is about 170,000 sites, past anything one daemon
# (or one office) watches; parsing that much would take minutes and gigabytes.
MAX_INVENTORY_BYTES = 32 * 1024 * 1024


@dataclass(slots=True)
class Entry(Generic[T]):
    """An inventory entry and where it was read. `id` is None when the id itself was bad: the
    entry is still checked, but cannot be referred to."""

    value: T
    id: str | None
    file: Path
    line: int
    key: str
    subject: str = ""
    refs: dict[str, Located[str]] = field(default_factory=dict)
    covers: list[Located[str]] = field(default_factory=list)
    probe_line: int = 0
    probe_key: str = ""
    mine: bool = True  # False: a site of another shard
    # False: kept only for the checks across sites (another shard's site that none of this
    # shard's sites depends on); its own mistakes are its shard's to report
    whole: bool = True
    # the problems of another shard's site, held until the inventory is read: reported if
    # one of this shard's sites depends on it (see `_settle_other_shards`), else dropped
    held: list[ConfigProblem] | None = None
    # another shard's site read only in part (ItemStream): where to read it whole if one of
    # this shard's sites names it as its parent; None once the inventory is read
    passage: Passage | None = None

    def where(self) -> str:
        return f"{self.file.name}:{self.line}"


@dataclass(slots=True)
class Inventory:
    communes: list[Entry[Commune]] = field(default_factory=list)
    owners: list[Entry[Owner]] = field(default_factory=list)
    sites: list[Entry[Site]] = field(default_factory=list)
    complete: bool = True  # every file parsed: absent references are really absent
    # with a cache, each file's key there, in order (None: not read): the bytes read
    keys: list[str | None] = field(default_factory=list)


def read_inventory(
    directory: Path,
    problems: list[ConfigProblem],
    mine: Callable[[str], bool] | None = None,
    cache: ReadingCache | None = None,
    part: str | None = None,
) -> Inventory:
    """Every entry of inventory/*.yaml, in file and list order. With `mine` (a shard's test of
    a site id), a site whose id it refuses is read only as far as the checks across sites
    need (see `_settle_other_shards`): its own fields are its shard's to check and to keep,
    unless it is the parent of a site of this shard. With `cache`, a file read before as it
    is now is not read again (see `_read_through`); with `part` too (the share's name, with
    `mine`), each file's part for the share is kept and taken (see `_share_of`)."""
    inventory = Inventory()
    if not directory.is_dir():
        problems.append(ConfigProblem(directory, None, "", "inventory directory not found"))
        inventory.complete = False
        return inventory
    files = inventory_files(directory)
    total = sum(p.stat().st_size for p in files if p.is_file())
    if total > MAX_INVENTORY_BYTES:
        message = (
            f"the inventory's files hold {total / (1024 * 1024):.0f} MiB, more than the limit "
            f"of {MAX_INVENTORY_BYTES // (1024 * 1024)} MiB (several provinces); nothing read"
        )
        problems.append(ConfigProblem(directory, None, "", message))
        inventory.complete = False
        return inventory
    if not files:
        message = (
            "no *.yaml file in the inventory directory; if the district is meant to have "
            "no sites yet, say so in a file (e.g. inventory/sites.yaml) holding: sites: []"
        )
        problems.append(ConfigProblem(directory, None, "", message))
    if cache is None:
        for path in files:
            _read_inventory_file(path, inventory, problems, mine)
    else:
        share = None if mine is None else part
        before = len(problems)
        unparted: list[tuple[str, Inventory]] = []
        keys = [
            _read_through(cache, path, inventory, problems, mine, share, unparted) for path in files
        ]
        inventory.keys = keys
        by_file = dict(zip(files, keys, strict=True))
        if share is not None and mine is not None:
            if not _whole_parents(cache, inventory, by_file):
                del problems[before:]  # a whole reading went away: read as if without parts
                return read_inventory(directory, problems, mine, cache)
            parents = {entry.value.parent for entry in inventory.sites}
            for key, reading in unparted:
                cache.put(f"{key}.{share}", _share_of(reading, mine, parents))
        cache.keep_only([key for key in keys if key is not None])
    _settle_other_shards(inventory, problems)
    return inventory


def inventory_files(directory: Path) -> list[Path]:
    """The inventory's files, in the order they are read: *.yaml by name, hidden ones left
    out (an editor's swap or backup file)."""
    return sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("."))


def _read_through(
    cache: ReadingCache,
    path: Path,
    inventory: Inventory,
    problems: list[ConfigProblem],
    mine: Callable[[str], bool] | None,
    part: str | None = None,
    unparted: list[tuple[str, Inventory]] | None = None,
) -> str | None:
    """One file's entries, from its kept reading if it has one, else read whole and kept if
    it reads without a problem; its key in the cache (None: it could not be read). With
    `part`, from the share's kept part of the file if there is one, else from the whole
    reading, added to `unparted` for its part to be kept once every file is read
    (`_share_of`).

    A whole reading has every site in full: a shard takes the other shards' sites from it
    as if read whole with no problem held (`_settle_other_shards` then slims those it does
    not depend on), so its first load reads what a whole load does, and its later loads
    take its part, which is slimmed already. A file with a problem is read again the way the
    load asked, which says its problems in that load's words (a shard holds back those of
    the others' sites)."""
    found = cache.read(path)
    if found is None:  # the reading says why
        _read_inventory_file(path, inventory, problems, mine)
        return None
    key, data = found
    if part is not None and mine is not None:
        kept = cache.get(f"{key}.{part}")
        if isinstance(kept, Inventory):
            _take(inventory, kept)
            return key
    reading = cache.get(key)
    if not isinstance(reading, Inventory):
        reading, own = Inventory(), list[ConfigProblem]()
        _read_inventory_file(path, reading, own, None, data)
        if own or not reading.complete:
            _read_inventory_file(path, inventory, problems, mine, data)
            return key
        cache.put(key, reading)
    if part is not None and unparted is not None:
        unparted.append((key, reading))
    for entry in reading.sites:
        if mine is not None and entry.id is not None and not mine(entry.id):
            entry.mine, entry.held = False, []
    _take(inventory, reading)
    return key


def _take(inventory: Inventory, reading: Inventory) -> None:
    inventory.communes.extend(reading.communes)
    inventory.owners.extend(reading.owners)
    inventory.sites.extend(reading.sites)


def _share_of(
    reading: Inventory, mine: Callable[[str], bool], parents: Collection[str | None]
) -> Inventory:
    """A file's reading as a share keeps it: its own sites in full, and of the others those
    that a site of the inventory names as parent (`parents`; held for
    `_settle_other_shards`, which keeps whole those of its own sites); the rest slim
    (`_slim`). At 100,000 sites a quarter's parts unpickle in about half the time of the
    whole readings, and the load slims almost nothing. A site that became a parent of one
    of the share's since its file's part was kept is slim there: `_whole_parents` takes it
    from that file's whole reading."""
    sites: list[Entry[Site]] = []
    for entry in reading.sites:
        if entry.mine or entry.id in parents:
            sites.append(entry)
        else:
            sites.append(_slim(entry))
    return Inventory(reading.communes, reading.owners, sites, reading.complete)


def _whole_parents(cache: ReadingCache, inventory: Inventory, keys: dict[Path, str | None]) -> bool:
    """The other shards' sites that a site of this shard names as parent, whole, though a
    share's part of their file has them slim (named from another file): from their file's
    whole reading. False when that reading is no longer kept (the load reads again)."""
    wanted = {entry.value.parent for entry in inventory.sites if entry.mine}
    slim = {
        index: entry
        for index, entry in enumerate(inventory.sites)
        if entry.id in wanted and not entry.whole and entry.held is None
    }
    for path in {entry.file for entry in slim.values()}:
        key = keys.get(path)
        reading = None if key is None else cache.get(key)
        if not isinstance(reading, Inventory):
            return False
        whole = {entry.id: entry for entry in reading.sites}
        for index, entry in slim.items():
            found = whole.get(entry.id) if entry.file == path else entry
            if found is None:
                return False
            found.mine, found.held = False, []
            inventory.sites[index] = found
    return True


def _settle_other_shards(inventory: Inventory, problems: list[ConfigProblem]) -> None:
    """Once every file is read, keep in full the other shards' sites that a site of this
    shard names as its parent, and report their own mistakes, in the words of a one-process
    load: this shard polls them too, since its sites' states depend on theirs. Of the others
    keep only what spans sites (`_slim`), and drop their problems: their shard reports them.

    Which sites are parents of this shard's is known only now (a parent may come before its
    child or after it, in any file), so another shard's site was read only in part
    (`_read_elsewhere`) and is read whole now from its place in its file's text, kept until
    here, if it is one; a site whose id could not be told first (another key first, an id
    that is no good) was read whole, its problems held."""
    wanted = {entry.value.parent for entry in inventory.sites if entry.mine}
    for index, entry in enumerate(inventory.sites):
        held, entry.held = entry.held, None
        passage, entry.passage = entry.passage, None
        if passage is not None:
            if entry.id in wanted:
                inventory.sites[index] = _read_again(entry, passage, problems)
        elif held is None:
            continue
        elif entry.id in wanted:
            problems.extend(held)
        else:
            inventory.sites[index] = _slim(entry)


def _read_again(entry: Entry[Site], passage: Passage, problems: list[ConfigProblem]) -> Entry[Site]:
    """A site of another shard read only in part, read whole now that a site of this shard
    turned out to depend on it: what a one-process load reads of it, and says."""
    try:
        value = read_passage(passage, entry.file, entry.key, problems)
    except YamlReadError as error:
        problems.append(error.problem)
        return entry
    whole = _read_site(Sink(entry.file, problems), Located(value, passage.line + 1, entry.key))
    whole.mine = False
    return whole


def _read_inventory_file(
    path: Path,
    inventory: Inventory,
    problems: list[ConfigProblem],
    mine: Callable[[str], bool] | None,
    data: bytes | None = None,
) -> None:
    # Sites are read one by one as the parser reaches them (see load_yaml's `stream`): a
    # province is never held as a tree of YAML, only as the entries read from it. What was
    # read so is kept only if the whole file was streamed.
    streamed: list[Entry[Site]] = []
    sink = Sink(path, [])

    def take(value: object, line: int, key: str) -> None:
        streamed.append(_read_any_site(sink, Located(value, line, key), mine))

    def elsewhere(site_id: str) -> bool:
        plain = _good_id(site_id)
        return plain is not None and mine is not None and not mine(plain)

    sites = ItemStream(take, None if mine is None else elsewhere, _KEPT_ELSEWHERE)
    top = open_document(
        path,
        problems,
        if_empty="if it is meant to hold nothing, say so: sites: []",
        stream={"sites": sites},
        data=data,
    )
    if top is None:
        inventory.complete = False
        return
    top.expect(_INVENTORY_KEYS)
    for item in top.items("communes") or ():
        inventory.communes.append(_read_commune(top.sink, item))
    for item in top.items("owners") or ():
        inventory.owners.append(_read_owner(top.sink, item))
    if isinstance(top.get("sites"), StreamedList):
        problems.extend(sink.problems)
        inventory.sites.extend(streamed)
    for item in top.items("sites") or ():  # none when streamed
        inventory.sites.append(_read_any_site(top.sink, item, mine))


def _read_any_site(
    sink: Sink, item: Located[object], mine: Callable[[str], bool] | None
) -> Entry[Site]:
    """A site read in full; one of another shard's with its problems held back (see
    `_settle_other_shards`)."""
    if isinstance(item.value, YamlMap) and item.value.passage is not None:
        return _read_elsewhere(sink, item, item.value.passage)
    site_id = None if mine is None else _plain_id(item.value)
    if site_id is None or mine is None or mine(site_id):
        return _read_site(sink, item)
    held: list[ConfigProblem] = []
    entry = _read_site(replace(sink, problems=held), item)
    entry.mine, entry.held = False, held
    return entry


def _open_entry(sink: Sink, item: Located[object], noun: str) -> tuple[Fields, str | None]:
    """The entry's fields, with its id read first so that every later message can name it."""
    fields = Fields.of(sink, item.value, item.line, item.key)
    if fields is None:  # reported; go on with an empty entry whose own problems are moot
        return Fields(Sink(sink.file, []), YamlMap(item.line), item.key), None
    entry_id = fields.slug("id")
    if entry_id is not None:
        fields.subject = f" ({noun} '{entry_id}')"
    return fields, entry_id


def _id_line(fields: Fields, item: Located[object]) -> int:
    return fields.line("id") if fields.has("id") else item.line


def _read_commune(sink: Sink, item: Located[object]) -> Entry[Commune]:
    fields, commune_id = _open_entry(sink, item, "commune")
    fields.expect(_COMMUNE_KEYS, required=("id", "name", "lat", "lon"))
    commune = Commune(
        id=commune_id or "",
        name=fields.text("name") or "",
        lat=or_default(fields.number("lat", -90, 90), 0.0),
        lon=or_default(fields.number("lon", -180, 180), 0.0),
        areas=tuple(area.value for area in fields.texts("areas") or ()),
    )
    return Entry(commune, commune_id, sink.file, _id_line(fields, item), item.key, fields.subject)


def _read_owner(sink: Sink, item: Located[object]) -> Entry[Owner]:
    fields, owner_id = _open_entry(sink, item, "owner")
    fields.expect(_OWNER_KEYS, required=_OWNER_KEYS)
    owner = Owner(
        id=owner_id or "",
        name=fields.text("name") or "",
        kind=fields.choice("kind", OWNER_KINDS) or "",
    )
    return Entry(owner, owner_id, sink.file, _id_line(fields, item), item.key, fields.subject)


def _read_site(sink: Sink, item: Located[object]) -> Entry[Site]:
    fields, site_id = _open_entry(sink, item, "site")
    fields.expect(_SITE_KEYS, required=_SITE_REQUIRED)
    kind = fields.choice("kind", SITE_KINDS)
    refs = {name: ref for name in ("commune", "owner", "parent") if (ref := fields.located(name))}
    probe, credential = _read_probe(fields)
    if credential is not None:
        refs["credential"] = credential
    profile = _profile_ref(fields, probe)
    if profile is not None:
        refs["profile"] = profile
    covers = _read_covers(fields, kind)
    site = Site(
        id=site_id or "",
        kind=kind or "",
        name=fields.text("name") or "",
        commune=refs["commune"].value if "commune" in refs else "",
        owner=refs["owner"].value if "owner" in refs else "",
        lat=or_default(fields.number("lat", -90, 90), 0.0),
        lon=or_default(fields.number("lon", -180, 180), 0.0),
        probe=probe,
        parent=refs["parent"].value if "parent" in refs else None,
        covers=tuple(area.value for area in covers),
        objective=fields.number("objective", 0, 1),
    )
    line = _id_line(fields, item)
    entry = Entry(site, site_id, sink.file, line, item.key, fields.subject, refs, covers)
    entry.probe_line, entry.probe_key = fields.line("probe"), fields.key("probe")
    return entry


# The probe of a site another shard polls and none of this shard's sites depends on: this
# daemon never polls it, and keeps no more of it than its id, kind, commune and parent (an
# MQTT site keeps its probe: its topics).
ELSEWHERE = SnmpProbe(address="")


def _plain_id(value: object) -> str | None:
    """The id of an entry when it is a good one (as `Fields.slug` reads it), else None: an
    entry with a bad id or none is read whole by every shard, which all report it."""
    return _good_id(value.get("id") if isinstance(value, YamlMap) else None)


def _good_id(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    text = unicodedata.normalize("NFC", raw)
    return text if text.strip() and is_slug(text) else None


# What a shard reads of another shard's site (see `_slim`): of its probe only an MQTT one,
# which it keeps.
_KEPT_ELSEWHERE: Keeps = MappingProxyType(
    {"id": None, "kind": None, "commune": None, "parent": None,
     "probe": MappingProxyType({"mqtt": None})}
)  # fmt: skip


def _read_elsewhere(sink: Sink, item: Located[object], passage: Passage) -> Entry[Site]:
    """Another shard's site, of which only `_KEPT_ELSEWHERE` was read: what `_slim` keeps of
    it, read as `_read_site` reads it, and its Passage kept to read it whole if it is the
    parent of one of this shard's. Its mistakes are its shard's: none is kept."""
    value = item.value
    assert isinstance(value, YamlMap)
    site_id = _plain_id(value) or ""  # a good one: the stream passed over it for its id
    fields = Fields(Sink(sink.file, []), value, item.key, f" (site '{site_id}')")
    parent = fields.located("parent")
    probe: Probe = ELSEWHERE
    probe_map = value.get("probe")
    if (
        isinstance(probe_map, YamlMap)
        and "mqtt" in probe_map
        # read whole, a probe naming another type too is not read as MQTT (_read_probe)
        and not any(name in probe_map.key_lines for name in PROBE_READERS if name != "mqtt")
    ):
        read, _ = _read_probe(fields)
        probe = read if isinstance(read, MqttProbe) else ELSEWHERE
    site = Site(
        id=site_id, kind=fields.choice("kind", SITE_KINDS) or "", name="",
        commune=fields.text("commune") or "", owner="", lat=0.0, lon=0.0, probe=probe,
        parent=None if parent is None else parent.value,
    )  # fmt: skip
    refs = {} if parent is None else {"parent": parent}
    entry = Entry(site, site_id, sink.file, _id_line(fields, item), item.key, fields.subject, refs)
    entry.probe_line, entry.probe_key = fields.line("probe"), fields.key("probe")
    entry.mine, entry.whole, entry.passage = False, False, passage
    return entry


def _slim(entry: Entry[Site]) -> Entry[Site]:
    """A site of another shard as kept for what spans sites: its id (duplicates, parents and
    maintenance windows that name it), kind, commune (its MQTT topic), parent (unknown
    parents, cycles) and, for an MQTT site, its probe (two sites on one topic; its messages
    told from a stranger's). What else is wrong with it, an unknown commune included, is its
    shard's to say: that shard refuses the configuration, so no site is dropped unnoticed;
    nor does a shard keep the name, coordinates and probe of every site of the province."""
    site = entry.value
    probe = site.probe if isinstance(site.probe, MqttProbe) else ELSEWHERE
    slim = Site(
        id=site.id, kind=site.kind, name="", commune=site.commune, owner="", lat=0.0, lon=0.0,
        probe=probe, parent=site.parent,
    )  # fmt: skip
    refs = {"parent": entry.refs["parent"]} if "parent" in entry.refs else {}
    kept = Entry(slim, entry.id, entry.file, entry.line, entry.key, entry.subject, refs)
    kept.probe_line, kept.probe_key = entry.probe_line, entry.probe_key
    kept.mine, kept.whole = False, False
    return kept


def _profile_ref(site: Fields, probe: Probe) -> Located[str] | None:
    """The device profile an SNMP probe names, placed for the check against profiles/."""
    if not isinstance(probe, SnmpProbe) or probe.profile is None:
        return None
    snmp = site.node.get("probe")
    snmp = snmp.get("snmp") if isinstance(snmp, YamlMap) else None
    if not isinstance(snmp, YamlMap):
        return None
    key = f"{site.key('probe')}.snmp.profile"
    return Located(probe.profile, snmp.line_of("profile"), key)


def _read_covers(fields: Fields, kind: str | None) -> list[Located[str]]:
    """Areas a loudspeaker reaches; checked against its commune in pass 2."""
    if not fields.has("covers"):
        return []
    if kind is not None and kind != "loudspeaker":
        fields.problem("covers", f"only loudspeaker sites may list covers (kind is '{kind}')")
        return []
    return fields.texts("covers") or []


def _read_probe(site: Fields) -> tuple[Probe, Located[str] | None]:
    """Exactly one probe type, read by its own reader (see PROBE_READERS)."""
    placeholder = SnmpProbe(address="")
    probe = site.mapping("probe")
    if probe is None:
        return placeholder, None
    types = list(probe.node)
    if len(types) == 1 and types[0] in PROBE_READERS:  # the usual case, nothing to report
        fields = probe.mapping(types[0])
        return (placeholder, None) if fields is None else PROBE_READERS[types[0]](fields)
    supported = ", ".join(PROBE_READERS)
    if len(types) != 1:
        probe.problem_here(f"must name exactly one probe type ({supported}), got {len(types)}")
    for name in types:
        if name not in PROBE_READERS:
            hint = did_you_mean(name, PROBE_READERS)
            probe.problem(name, f"unknown probe type '{name}'{hint} (supported: {supported})")
    for name, reader in PROBE_READERS.items():
        fields = probe.mapping(name) if name in types else None
        if fields is not None:
            return reader(fields)
    return placeholder, None


@dataclass(frozen=True, slots=True)
class _Checked:
    communes: dict[str, Commune]
    owners: dict[str, Owner]
    sites: dict[str, Site]


def check_inventory(
    inventory: Inventory,
    credentials: Credentials | None,
    credentials_file: Path,
    profiles: Collection[str] | None,
    problems: list[ConfigProblem],
) -> _Checked:
    communes = _unique(inventory.communes, "commune", problems)
    owners = _unique(inventory.owners, "owner", problems)
    sites = _unique(inventory.sites, "site", problems)
    checks: list[tuple[str, Collection[str] | None]] = [
        ("commune", communes.keys() if inventory.complete else None),
        ("owner", owners.keys() if inventory.complete else None),
        ("parent", sites.keys() if inventory.complete else None),
        ("credential", credentials.declared if credentials else None),
        ("profile", profiles),
    ]
    unknown: dict[tuple[str, str], list[Entry[Site]]] = {}
    for entry in inventory.sites:
        for kind, known in checks:
            ref = entry.refs.get(kind)
            if ref is not None and known is not None and ref.value not in known:
                unknown.setdefault((kind, ref.value), []).append(entry)
        _check_covers(entry, communes, problems)
    for (kind, name), users in unknown.items():
        known = dict(checks)[kind]
        assert known is not None
        problems.append(_unknown_ref(kind, name, users, known, credentials_file))
    _check_cycles(inventory.sites, sites, problems)
    return _Checked(
        communes={key: entry.value for key, entry in communes.items()},
        owners={key: entry.value for key, entry in owners.items()},
        sites={key: entry.value for key, entry in sites.items()},
    )


def _unique(
    entries: list[Entry[T]], noun: str, problems: list[ConfigProblem]
) -> dict[str, Entry[T]]:
    """The first definition of each id wins; later ones are reported, naming the first."""
    first: dict[str, Entry[T]] = {}
    for entry in entries:
        if entry.id is None:
            continue
        if entry.id in first:
            message = (
                f"duplicate {noun} id '{entry.id}' (first defined at {first[entry.id].where()})"
            )
            problems.append(ConfigProblem(entry.file, entry.line, f"{entry.key}.id", message))
            continue
        first[entry.id] = entry
    return first


#: Sites named in a message about a reference many sites share; the rest are counted.
NAMED_USERS = 5


def _unknown_ref(
    kind: str,
    name: str,
    users: list[Entry[Site]],
    known: Collection[str],
    credentials_file: Path,
) -> ConfigProblem:
    """One message per unknown name, however many sites use it: a credential removed from
    credentials.yaml is one mistake, not seventy. Placed at the first site that names it; the
    others are named (up to NAMED_USERS) and counted, so the size of the damage shows."""
    where = f" (not in {credentials_file.name})" if kind == "credential" else ""
    if kind == "profile":
        where = f" (no {name}.yaml among the profiles)"
    first = users[0]
    ref = first.refs[kind]
    message = f"unknown {kind} '{name}'{where}"
    hint = did_you_mean(name, known)
    if len(users) == 1:
        return ConfigProblem(first.file, ref.line, ref.key, message + hint + first.subject)
    named = [f"'{user.id}' ({user.file.name}:{user.refs[kind].line})" for user in users]
    shown = ", ".join(named[:NAMED_USERS])
    more = len(named) - NAMED_USERS
    if more > 0:
        shown += f" and {more} more"
    message += f", named by {len(users)} sites: {shown}{hint}"
    return ConfigProblem(first.file, ref.line, ref.key, message)


def _check_covers(
    entry: Entry[Site], communes: dict[str, Entry[Commune]], problems: list[ConfigProblem]
) -> None:
    commune = communes.get(entry.value.commune)
    if commune is None:
        return  # unknown commune already reported
    for area in entry.covers:
        if area.value not in commune.value.areas:
            message = f"{area.value!r} is not an area of commune '{commune.id}'{entry.subject}"
            problems.append(ConfigProblem(entry.file, area.line, area.key, message))


def _check_cycles(
    order: list[Entry[Site]], sites: dict[str, Entry[Site]], problems: list[ConfigProblem]
) -> None:
    """Each cycle once, at its first member in definition order, as `a -> b -> a`."""
    parents = {
        entry.id: entry.value.parent
        for entry in order
        if entry.id is not None and entry.value.parent in sites
    }
    rank = {site_id: index for index, site_id in enumerate(sites)}
    done: set[str] = set()
    for entry in order:
        path: dict[str, int] = {}  # site id -> position on the walk up from `entry`
        current = entry.id
        while current is not None and current not in done and current not in path:
            path[current] = len(path)
            current = parents.get(current)
        if current is not None and current in path:
            cycle = list(path)[path[current] :]
            _report_cycle(cycle, rank, sites, problems)
        done.update(path)


def _report_cycle(
    cycle: list[str],
    rank: dict[str, int],
    sites: dict[str, Entry[Site]],
    problems: list[ConfigProblem],
) -> None:
    start = min(range(len(cycle)), key=lambda index: rank[cycle[index]])
    ordered = cycle[start:] + cycle[:start]
    first = sites[ordered[0]]
    ref = first.refs["parent"]
    message = "parent cycle: " + " -> ".join([*ordered, ordered[0]])
    problems.append(ConfigProblem(first.file, ref.line, ref.key, message))
