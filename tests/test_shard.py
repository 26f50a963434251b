"""Splitting the inventory between daemons: stable, complete, disjoint, each shard reading in
full only its own sites (the three-process run against a real broker is in
test_mqtt_daemon.py)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from monitor.cli.main import main
from monitor.config import forked
from monitor.config.load import Config, load_config
from monitor.config.problems import ConfigError
from monitor.config.shards import Shard, load_shard, restrict, shard_of
from monitor.core.model import MqttProbe, SnmpProbe

SHIPPED = load_config(Path(__file__).parents[1] / "config", {})


@pytest.mark.parametrize("count", [2, 3, 7])
def test_shards_cover_the_shipped_district_once(count: int) -> None:
    shares = [restrict(SHIPPED, Shard(index, count)) for index in range(1, count + 1)]
    owned = [set(share.sites) for share in shares]
    assert set().union(*owned) == set(SHIPPED.sites)
    assert sum(len(ids) for ids in owned) == len(SHIPPED.sites)
    for share in shares:
        assert len(share.sites) > len(SHIPPED.sites) / count / 2  # roughly even


def _met(share: Config) -> set[str]:
    """What a shard meets of the others' sites: the MQTT ones and its foreign parents."""
    mqtt = {key for key, site in SHIPPED.sites.items() if isinstance(site.probe, MqttProbe)}
    return (mqtt - set(share.sites)) | set(share.foreign_parents)


@pytest.mark.parametrize("count", [2, 3])
def test_a_shard_keeps_of_the_others_sites_only_those_it_meets(count: int) -> None:
    """Its foreign parents and the MQTT sites of other shards, whose messages it hears and
    must tell from a stranger's; every other site of the province would make its memory the
    province's. The shipped district has sites of each sort in each shard."""
    for index in range(1, count + 1):
        share = load_shard(SHIPPED.directory, Shard(index, count), {})
        expected = restrict(SHIPPED, Shard(index, count))  # the MQTT sites in full there
        assert list(share.sites_of_other_shards) == list(expected.sites_of_other_shards)
        others = set(SHIPPED.sites) - set(share.sites)
        assert set(share.sites_of_other_shards) == _met(share)
        assert share.foreign_parents and len(share.sites_of_other_shards) < len(others)


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


# --- a shard reads in full only its own sites ------------------------------------------------


def _copy_of_shipped(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    shutil.copytree(SHIPPED.directory, root)
    return root


def _edit_line(path: Path, marker: str, old: str, new: str) -> int:
    """Replace `old` by `new` on the one line holding `marker`; that line's number."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    (number,) = [index for index, line in enumerate(lines) if marker in line]
    assert old in lines[number]
    lines[number] = lines[number].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")
    return number + 1


def _refusal(load: Callable[[], object]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load()
    return [str(problem) for problem in caught.value.problems]


def test_two_shards_hold_the_whole_inventory_each_only_its_own_with_the_same_records() -> None:
    """The one-process load is the reference, and shard_of (pinned above) the rule."""
    shares = [load_shard(SHIPPED.directory, Shard(index, 2), {}) for index in (1, 2)]
    first, second = (set(share.sites) for share in shares)
    assert first | second == set(SHIPPED.sites) and not first & second
    for index, share in enumerate(shares, start=1):
        assert {shard_of(site, 2) for site in share.sites} == {index}
        assert share.sites == {key: SHIPPED.sites[key] for key in share.sites}  # same records
        assert list(share.sites) == [key for key in SHIPPED.sites if key in share.sites]
        assert share.communes == SHIPPED.communes and share.owners == SHIPPED.owners
        others = share.sites_of_other_shards
        assert set(others) == _met(share)
        # the parents of its sites that the other shard watches, whole, to poll them too
        parents = {SHIPPED.sites[key].parent for key in share.sites}
        foreign = [key for key in SHIPPED.sites if key in parents and shard_of(key, 2) != index]
        assert list(share.foreign_parents) == foreign and foreign
        assert share.foreign_parents == {key: SHIPPED.sites[key] for key in foreign}
        assert all(others[key] is share.foreign_parents[key] for key in foreign)
        # of another shard's other sites only what tells its messages from a stranger's
        slim = {key: site for key, site in others.items() if key not in share.foreign_parents}
        assert all(site.name == "" and site.owner == "" for site in slim.values())
        for site_id, site in slim.items():
            whole = SHIPPED.sites[site_id]
            assert (site.kind, site.commune, site.parent) == (
                whole.kind,
                whole.commune,
                whole.parent,
            )
            if isinstance(whole.probe, MqttProbe):
                assert site.probe == whole.probe
                assert share.mqtt.base_topic(site) == SHIPPED.mqtt.base_topic(whole)
            else:
                assert not isinstance(site.probe, MqttProbe)
        assert share.ledger_path.name == f"ledger.shard-{index}-of-2.sqlite"


def test_a_shard_loads_the_same_when_no_child_can_load_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_fork() -> int:
        raise OSError("no fork here")

    forked = load_shard(SHIPPED.directory, Shard(2, 3), {})
    monkeypatch.setattr(os, "fork", no_fork)
    assert load_shard(SHIPPED.directory, Shard(2, 3), {}) == forked
    assert load_shard(SHIPPED.directory, None, {}) == SHIPPED


def test_a_child_that_hangs_is_ended_and_the_caller_loads_for_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(forked, "CHILD_LIMIT_SECONDS", 0.5)
    hung: list[int] = []
    children: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)

    def never_done() -> Config:
        hung.append(os.getpid())
        time.sleep(60)  # in the child: a lock that another thread of the daemon held
        raise AssertionError("the child was not ended")

    started = time.monotonic()
    assert forked.load_in_child(never_done) is None
    assert time.monotonic() - started < 10
    assert not hung  # it ran in the child, not here
    [child] = children
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # and the child is gone, reaped


def test_a_broken_site_is_refused_by_the_shard_that_watches_it_in_the_whole_load_s_words(
    tmp_path: Path,
) -> None:
    root = _copy_of_shipped(tmp_path)
    site = "bts-vtl-thanh-nua-01"
    bts = root / "inventory" / "bts.yaml"
    line = _edit_line(bts, f"id: {site},", "port: 1161", "port: 99999")
    _edit_line(bts, f"id: {site},", "commune: thanh-nua", "commune: thanh-nowhere")
    whole = _refusal(lambda: load_config(root, {}))
    assert len(whole) == 2
    assert whole[0].startswith(f"{bts}:{line}: sites[0].probe.snmp.port: ")
    assert whole[1].startswith(f"{bts}:{line}: sites[0].commune: unknown commune 'thanh-nowh")
    assert all(f"(site '{site}')" in problem for problem in whole)
    watching = shard_of(site, 2)
    assert _refusal(lambda: load_shard(root, Shard(watching, 2), {})) == whole
    other = load_shard(root, Shard(3 - watching, 2), {})  # not its site to judge
    assert other.sites and site not in other.sites  # and its load stands


def test_what_spans_sites_is_refused_by_every_shard_in_the_whole_load_s_words(
    tmp_path: Path,
) -> None:
    """An unknown parent, and two loudspeakers of different shards on one MQTT topic."""
    root = _copy_of_shipped(tmp_path)
    radio = root / "inventory" / "radio.yaml"
    loudspeakers = [key for key, site in SHIPPED.sites.items() if isinstance(site.probe, MqttProbe)]
    one = loudspeakers[0]
    two = next(key for key in loudspeakers if shard_of(key, 2) != shard_of(one, 2))
    topic = "dienbien/shared/topic"
    for site in (one, two):
        _edit_line(
            radio, f"id: {site},", "probe: {mqtt: {}}", f"probe: {{mqtt: {{topic: {topic}}}}}"
        )
    _edit_line(radio, f"id: {one},", "parent: radio-huyen", "parent: radio-nowhere")
    whole = _refusal(lambda: load_config(root, {}))
    assert any("unknown parent 'radio-nowhere'" in problem for problem in whole)
    assert any(f"topic '{topic}' is also the topic of site '{one}'" in p for p in whole)
    assert len(whole) == 2
    for index in (1, 2):
        assert _refusal(lambda: load_shard(root, Shard(index, 2), {})) == whole  # noqa: B023


def _children(parent: str) -> list[str]:
    return [key for key, site in SHIPPED.sites.items() if site.parent == parent]


def _a_parent(where: Callable[[str, list[str]], bool]) -> str:
    """A shipped SNMP parent whose children (at N = 2) are where `where` says."""
    return next(
        key
        for key, site in SHIPPED.sites.items()
        if isinstance(site.probe, SnmpProbe) and _children(key) and where(key, _children(key))
    )


def _edit_site(root: Path, site: str, old: str, new: str) -> None:
    """Replace `old` by `new` on the line of the shipped inventory that defines `site`."""
    marker = f"id: {site},"
    [path] = [p for p in (root / "inventory").glob("*.yaml") if marker in p.read_text("utf-8")]
    _edit_line(path, marker, old, new)


def test_a_foreign_parent_s_own_mistakes_are_refused_by_its_children_s_shard_too(
    tmp_path: Path,
) -> None:
    """That shard polls the parent (its children's states depend on it), so it must not run
    on a probe it cannot use; the words are the whole load's. A parent whose children are all
    in its own shard is still no concern of the other shard."""
    root = _copy_of_shipped(tmp_path)
    crossing = _a_parent(lambda p, kids: all(shard_of(k, 2) != shard_of(p, 2) for k in kids))
    home = shard_of(crossing, 2)
    at_home = _a_parent(
        lambda p, kids: shard_of(p, 2) == home and all(shard_of(k, 2) == home for k in kids)
    )
    for parent in (crossing, at_home):
        _edit_site(root, parent, "port: 1161", "port: 99999")
    probe = SHIPPED.sites[crossing].probe
    assert isinstance(probe, SnmpProbe)
    _edit_site(root, crossing, f"credential: {probe.credential}", "credential: nobody-ro")
    whole = _refusal(lambda: load_config(root, {}))
    assert len(whole) == 3
    of_crossing = [p for p in whole if f"(site '{crossing}')" in p]
    assert len(of_crossing) == 2 and any("unknown credential 'nobody-ro'" in p for p in of_crossing)
    assert _refusal(lambda: load_shard(root, Shard(home, 2), {})) == whole  # all its own
    assert _refusal(lambda: load_shard(root, Shard(3 - home, 2), {})) == of_crossing


def _in_block_style(root: Path) -> None:
    """Every inventory file written again as YAML's block style (one key a line, nested
    mappings indented), with a comment between sites, as an office may keep its files."""
    for path in (root / "inventory").glob("*.yaml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, indent=2)
        path.write_text(text.replace("\n- id:", "\n# next\n- id:"), encoding="utf-8")


def test_a_shard_reads_block_style_sites_of_other_shards_in_part_and_their_parents_whole(
    tmp_path: Path,
) -> None:
    """Another shard's site is read only as far as what spans sites needs, and read again
    whole from its place in the file when it is a parent of this shard's: with sites of many
    lines, its mistakes are still told at the whole load's lines, in its words."""
    root = _copy_of_shipped(tmp_path)
    crossing = _a_parent(lambda p, kids: all(shard_of(k, 2) != shard_of(p, 2) for k in kids))
    _in_block_style(root)
    whole = load_config(root, {})
    assert whole.sites == SHIPPED.sites
    for index in (1, 2):
        share, flow = (
            load_shard(where, Shard(index, 2), {}) for where in (root, SHIPPED.directory)
        )
        assert share.sites == restrict(whole, Shard(index, 2)).sites
        assert share.foreign_parents == restrict(whole, Shard(index, 2)).foreign_parents
        assert share.sites_of_other_shards == flow.sites_of_other_shards  # checked above
    [path] = [
        p for p in (root / "inventory").glob("*.yaml") if f"id: {crossing}\n" in p.read_text()
    ]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index(f"- id: {crossing}\n")
    port = next(i for i in range(start, len(lines)) if lines[i].strip() == "port: 1161")
    lines[port] = lines[port].replace("1161", "99999")
    path.write_text("".join(lines), encoding="utf-8")
    refused = _refusal(lambda: load_config(root, {}))
    assert refused == [
        f"{path}:{port + 1}: sites[{_index_in(path, crossing)}].probe.snmp.port: must be an"
        f" integer 1..65535, got 99999 (site '{crossing}')"
    ]
    for index in (1, 2):  # one shard watches it, the other its children
        assert _refusal(lambda: load_shard(root, Shard(index, 2), {})) == refused  # noqa: B023


def _index_in(path: Path, site: str) -> int:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [entry["id"] for entry in document["sites"]].index(site)


def test_a_foreign_parent_s_duplicate_key_is_told_by_both_shards_as_by_the_whole_load(
    tmp_path: Path,
) -> None:
    """A mistake that only the full reading of YAML tells (a key twice) inside a part of a
    site that a shard passed over when it was another shard's: read whole again, it is."""
    root = _copy_of_shipped(tmp_path)
    crossing = _a_parent(lambda p, kids: all(shard_of(k, 2) != shard_of(p, 2) for k in kids))
    _edit_site(root, crossing, "port: 1161", "port: 1161, port: 1162")
    refused = _refusal(lambda: load_config(root, {}))
    assert len(refused) == 1 and "duplicate key 'port'" in refused[0]
    for index in (1, 2):
        assert _refusal(lambda: load_shard(root, Shard(index, 2), {})) == refused  # noqa: B023
