"""What the daemon keeps of its inventory: each file's reading and the outcome of the checks.
A load from them is the load from the files; an unchanged file is not read again, and an
unchanged inventory (files, credential names, profiles, the share) not checked again; nothing
wrong with them costs more than the reading they would have saved; they hold no secret (the
figures are bench/config_bench.py's)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import monitor.cli.main as cli
from monitor.config import checked_inventory, inventory, reading_cache
from monitor.config.credentials import load_credentials, secret_values
from monitor.config.load import Config, load_config
from monitor.config.problems import ConfigError
from monitor.config.shards import Shard, load_shard, shard_of
from monitor.core.model import SnmpProbe

SHIPPED_DIR = Path(__file__).parents[1] / "config"
FILES = len(list((SHIPPED_DIR / "inventory").glob("*.yaml")))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED_DIR, config)
    return config


@pytest.fixture
def state(tmp_path: Path) -> dict[str, str]:
    """The environment of a daemon whose state directory (where its ledger and its kept
    readings go) is the test's own."""
    return {"STATE_DIRECTORY": str(tmp_path / "state")}


def _counted(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> list[Path]:
    """The first arguments of the calls of `module.name`, in this process, from now on."""
    calls: list[Path] = []
    real = getattr(module, name)

    def counted(path: Path, *args: object) -> object:
        calls.append(path)
        return real(path, *args)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The inventory files read from their text."""
    return _counted(monkeypatch, inventory, "_read_inventory_file")


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The inventories read and checked (their directories)."""
    return _counted(monkeypatch, checked_inventory, "read_inventory")


def _kept(env: dict[str, str]) -> list[Path]:
    """The files' whole readings (`<key>.reading`), not the shares' parts of them."""
    directory = Path(env["STATE_DIRECTORY"]) / reading_cache.DIRECTORY_NAME
    return sorted(path for path in directory.glob("*.reading") if path.name.count(".") == 1)


def _parts(env: dict[str, str]) -> list[str]:
    """The shares' parts of the files' readings (`<key>.<share>.reading`): their shares."""
    directory = Path(env["STATE_DIRECTORY"]) / reading_cache.DIRECTORY_NAME
    return sorted(path.name.split(".")[1] for path in directory.glob("*.*.reading"))


def _forget_checks(env: dict[str, str]) -> None:
    """Drop the kept outcomes of the inventory's checks (checked_inventory.py, the tests at
    the end of this file), which a load of an unchanged inventory takes before any file's
    reading."""
    directory = Path(env["STATE_DIRECTORY"]) / reading_cache.DIRECTORY_NAME
    for path in directory.glob("*" + checked_inventory.SUFFIX):
        path.unlink()


def _file_of(root: Path, site: str) -> Path:
    """The inventory file that defines `site`."""
    marker = f"id: {site},"
    [path] = [p for p in (root / "inventory").glob("*.yaml") if marker in p.read_text("utf-8")]
    return path


def _edit(root: Path, site: str, old: str, new: str) -> Path:
    """Replace `old` by `new` on the line of the inventory that defines `site`; its file."""
    marker = f"id: {site},"
    path = _file_of(root, site)
    text = path.read_text(encoding="utf-8")
    [line] = [line for line in text.splitlines() if marker in line]
    assert old in line
    path.write_text(text.replace(line, line.replace(old, new, 1)), encoding="utf-8")
    return path


def _outcomes(env: dict[str, str]) -> list[str]:
    directory = Path(env["STATE_DIRECTORY"]) / reading_cache.DIRECTORY_NAME
    return sorted(path.name.split(".", 1)[1] for path in directory.glob("*.checked"))


def _refusal(load: Callable[[], Config]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load()
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize("shard", [None, Shard(1, 2), Shard(2, 2), Shard(3, 3)])
def test_a_load_from_kept_readings_is_the_load_from_the_files(
    root: Path, state: dict[str, str], shard: Shard | None
) -> None:
    """Whole and as a shard (which slims the other shards' sites from a whole reading, and
    keeps their parents of its own sites whole): the same Config, site for site."""
    reference = load_shard(root, shard, state)
    assert not _kept(state)  # a load that was not asked to keep readings keeps none
    first = load_shard(root, shard, state, cache=True)
    assert len(_kept(state)) == FILES
    second = load_shard(root, shard, state, cache=True)
    assert first == reference and second == reference
    assert list(second.sites) == list(reference.sites)
    assert second.foreign_parents == reference.foreign_parents
    assert second.sites_of_other_shards == reference.sites_of_other_shards


@pytest.mark.parametrize("shard", [Shard(1, 2), Shard(2, 3)])
def test_a_shard_takes_its_part_of_each_file_and_a_new_parent_from_another_file_whole(
    root: Path, state: dict[str, str], monkeypatch: pytest.MonkeyPatch, shard: Shard
) -> None:
    """From the whole readings a shard keeps its part of each file (its own sites and every
    parent whole, the others slim) and later takes that part alone. A site of another
    shard that became a parent of one of its own since (named from another file) is slim
    in its own file's part: it is taken whole from that file's whole reading, or, if that
    is gone, from a reading of the inventory as if there were no parts."""
    reference = load_config(root, state, share=shard)
    load_config(root, state, cache=True)  # the whole readings, as a whole daemon keeps them
    _forget_checks(state)
    assert load_config(root, state, share=shard, cache=True) == reference
    tag = f"{shard.index}-of-{shard.count}"
    assert _parts(state) == [tag] * FILES
    taken: list[str] = []
    real = reading_cache.ReadingCache.get

    def get(cache: reading_cache.ReadingCache, key: str) -> object | None:
        if cache.suffix == ".reading":  # not the outcome of the checks
            taken.append(key)
        return real(cache, key)

    monkeypatch.setattr(reading_cache.ReadingCache, "get", get)
    _forget_checks(state)
    assert load_config(root, state, share=shard, cache=True) == reference
    assert len(taken) == FILES and all(key.endswith(f".{tag}") for key in taken)

    entries = inventory.read_inventory(root / "inventory", []).sites
    where = {entry.id: entry.file for entry in entries}
    parents = {entry.value.parent for entry in entries}
    [child, *_] = [
        key
        for key, site in reference.sites.items()
        if site.parent and site.kind != "gateway" and f"id: {key}," in where[key].read_text()
    ]
    [parent, *_] = [
        entry.id
        for entry in entries
        if entry.id not in reference.sites and entry.id not in parents
        and entry.value.kind == "gateway" and where[entry.id] != where[child]
    ]  # fmt: skip
    _edit(root, child, f"parent: {reference.sites[child].parent},", f"parent: {parent},")
    expected = load_config(root, state, share=shard)
    assert parent in expected.foreign_parents
    taken.clear()
    assert load_config(root, state, share=shard, cache=True) == expected
    whole = reading_cache.ReadingCache(Path()).key(where[parent])
    assert whole in taken  # the new parent's file's whole reading
    (Path(state["STATE_DIRECTORY"]) / reading_cache.DIRECTORY_NAME / f"{whole}.reading").unlink()
    _forget_checks(state)
    assert load_config(root, state, share=shard, cache=True) == expected


def test_an_unchanged_inventory_is_not_read_again_and_an_edited_file_only_is(
    root: Path, state: dict[str, str], reads: list[Path]
) -> None:
    load_config(root, state, cache=True)
    assert len(reads) == FILES
    reads.clear()
    _forget_checks(state)  # so that the files' readings are what this load takes
    assert load_config(root, state, cache=True) == load_config(root, state)
    assert len(reads) == FILES  # the load without kept readings read them all; this none
    reads.clear()
    site = "bts-vtl-thanh-nua-01"
    edited = _edit(root, site, "name: ", "name: Trạm đổi tên - ")
    config = load_config(root, state, cache=True)
    assert reads == [edited]
    assert config.sites[site].name.startswith("Trạm đổi tên - ")
    assert len(_kept(state)) == FILES  # the edited file's old reading is forgotten
    reads.clear()
    assert load_config(root, state, cache=True) == config and not reads


def test_a_file_with_a_mistake_is_never_kept_and_is_refused_at_every_load_in_the_same_words(
    root: Path, state: dict[str, str]
) -> None:
    site = "bts-vtl-thanh-nua-01"
    load_config(root, state, cache=True)
    _edit(root, site, "port: 1161", "port: 99999")
    words = _refusal(lambda: load_config(root, state))
    assert len(words) == 1 and "port" in words[0] and f"(site '{site}')" in words[0]
    for _ in range(2):
        assert _refusal(lambda: load_config(root, state, cache=True)) == words
    assert len(_kept(state)) == FILES - 1
    # a shard says only its own sites' mistakes, as without kept readings
    watching, other = Shard(shard_of(site, 2), 2), Shard(3 - shard_of(site, 2), 2)
    assert _refusal(lambda: load_shard(root, watching, state, cache=True)) == words
    loaded = load_shard(root, other, state, cache=True)
    assert loaded == load_shard(root, other, state)
    assert loaded.sites and site not in loaded.sites


def test_a_kept_reading_that_others_could_write_or_that_was_cut_short_is_not_taken(
    root: Path, state: dict[str, str], reads: list[Path]
) -> None:
    reference = load_config(root, state, cache=True)
    writable, cut = _kept(state)[:2]
    writable.chmod(0o666)
    cut.write_bytes(cut.read_bytes()[:100])
    reads.clear()
    _forget_checks(state)
    assert load_config(root, state, cache=True) == reference
    assert len(reads) == 2  # those two files were read from their text
    reads.clear()
    _forget_checks(state)
    assert load_config(root, state, cache=True) == reference
    assert not reads  # both were kept anew, for the daemon's user alone
    assert all(path.stat().st_mode & 0o077 == 0 for path in _kept(state))


def test_an_endless_inventory_file_is_refused_by_the_daemon_s_load_as_by_a_check(
    root: Path, state: dict[str, str]
) -> None:
    """The key of a file's reading is taken of the bytes any configuration file is read to,
    at most the limit of one: a file that never ends is refused, not read for ever."""
    (root / "inventory" / "zero.yaml").symlink_to("/dev/zero")
    words = _refusal(lambda: load_config(root, state))
    [word] = words
    assert "inventory/zero.yaml: larger than 8 MiB, the limit for one configuration" in word
    assert _refusal(lambda: load_config(root, state, cache=True)) == words


@pytest.mark.parametrize("when", ["after the outcome was looked up", "after the file's key"])
def test_a_file_edited_while_a_load_reads_it_is_kept_as_what_that_load_read(
    root: Path, state: dict[str, str], monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """What is kept is what was read, under the key of the bytes read: an edit during a load
    (an operator saving as the daemon reloads) is never taken, at a later load, for the
    file as it was before, nor the other way round."""
    path = _file_of(root, "gw-ubnd-huyen")
    before = path.read_bytes()
    reference = load_config(root, state)
    module, name = (
        (checked_inventory, "read_inventory")
        if when.startswith("after the outcome")
        else (inventory, "_read_inventory_file")
    )
    real = getattr(module, name)
    edited: list[bool] = []

    def editing(*args: object, **kwargs: object) -> object:
        if not edited and args[0] in (path, path.parent):  # the file, or its directory
            edited.append(True)
            _edit(root, "gw-ubnd-huyen", "Cổng mạng", "Cổng mạng mới")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, editing)
    first = load_config(root, state, cache=True)
    monkeypatch.setattr(module, name, real)
    after = load_config(root, state)
    assert after != reference and edited
    # read after the lookup, the file is read as edited; after its key, as its key says
    assert first == (after if module is checked_inventory else reference)
    edited_bytes = path.read_bytes()
    path.write_bytes(before)
    assert load_config(root, state, cache=True) == reference  # the file as it was
    path.write_bytes(edited_bytes)
    assert load_config(root, state, cache=True) == after  # and as it was edited
    assert load_config(root, state, cache=True) == after


def test_readings_of_other_code_are_not_taken(
    root: Path, state: dict[str, str], reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = load_config(root, state, cache=True)
    monkeypatch.setattr(reading_cache, "_code_version", lambda: b"another districtmon")
    reads.clear()
    assert load_config(root, state, cache=True) == reference
    assert len(reads) == FILES
    assert len(_kept(state)) == FILES  # this code's readings, and only those


def test_a_state_directory_that_cannot_hold_readings_costs_only_the_readings(
    root: Path, tmp_path: Path
) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    env = {"STATE_DIRECTORY": str(tmp_path / "state" / "sub")}
    assert load_config(root, env, cache=True) == load_config(root, env)
    assert load_shard(root, Shard(1, 2), env, cache=True) == load_shard(root, Shard(1, 2), env)


def test_the_daemon_keeps_readings_and_a_check_of_the_configuration_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[bool] = []

    def load(directory: Path, shard: Shard | None, *, cache: bool) -> Config:
        asked.append(cache)
        raise ConfigError([])

    monkeypatch.setattr(cli, "load_shard", load)
    assert cli.main(["run", "-c", str(SHIPPED_DIR)]) == 2
    assert cli.main(["check-config", "-c", str(SHIPPED_DIR)]) == 2
    assert asked == [True, False]


@pytest.mark.parametrize("shard", [None, Shard(1, 2), Shard(2, 2), Shard(3, 3)])
def test_a_load_from_the_kept_outcome_is_the_load_from_the_files(
    root: Path, state: dict[str, str], shard: Shard | None
) -> None:
    reference = load_shard(root, shard, state)
    first = load_shard(root, shard, state, cache=True)
    second = load_shard(root, shard, state, cache=True)
    assert first == reference and second == reference
    assert list(second.sites) == list(reference.sites)
    assert list(second.communes) == list(reference.communes)
    assert second.foreign_parents == reference.foreign_parents
    assert second.sites_of_other_shards == reference.sites_of_other_shards
    tag = "whole" if shard is None else f"{shard.index}-of-{shard.count}"
    assert _outcomes(state) == [f"{tag}.checked"]


def test_each_shard_takes_its_own_outcome_and_an_edit_makes_every_one_old(
    root: Path, state: dict[str, str], checks: list[Path]
) -> None:
    """Shards on one state directory keep an outcome each; an edit of any inventory file
    is a new inventory, read and checked again, and the old outcomes are forgotten."""
    first, second = Shard(1, 2), Shard(2, 2)
    loads = [load_config(root, state, share=share, cache=True) for share in (first, second)]
    assert len(checks) == 2 and _outcomes(state) == ["1-of-2.checked", "2-of-2.checked"]
    again = [load_config(root, state, share=share, cache=True) for share in (first, second)]
    assert again == loads and len(checks) == 2  # neither read nor checked anything
    assert set(loads[0].sites).isdisjoint(loads[1].sites)
    bts = root / "inventory" / "bts.yaml"
    bts.write_text(bts.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    assert load_config(root, state, share=first, cache=True) == loads[0]
    assert len(checks) == 3 and _outcomes(state) == ["1-of-2.checked"]


@pytest.mark.parametrize("went", ["credential", "profile"])
def test_what_the_inventory_names_and_went_away_is_refused_though_the_inventory_is_unchanged(
    root: Path, state: dict[str, str], went: str
) -> None:
    """The outcome of the checks depends on the credential names and the profiles: one that
    a site names and that is gone makes the kept outcome old, and the load says so in the
    words of a load from the files."""
    load_config(root, state, cache=True)
    if went == "credential":
        path = root / "credentials.yaml"
        text = path.read_text(encoding="utf-8")
        line = "  mobifone-ro: {version: 2c, community: sim-mobifone}\n"
        assert line in text
        path.write_text(text.replace(line, ""), encoding="utf-8")
    else:
        for name in ("bts-power", "sim-bts"):  # and the one that extends it
            (root / "profiles" / f"{name}.yaml").unlink()
    words = _refusal(lambda: load_config(root, state))
    assert any(f"unknown {went} " in problem for problem in words)
    assert _refusal(lambda: load_config(root, state, cache=True)) == words


def test_a_kind_s_new_default_profile_is_the_load_s_though_the_inventory_is_unchanged(
    root: Path, state: dict[str, str], checks: list[Path]
) -> None:
    """The kept outcome holds each site's profile, its kind's default when it names none
    (snmp.default_profiles): a changed default makes it old."""
    _edit(root, "gw-ubnd-huyen", ", profile: router", "")
    settings = root / "districtmon.yaml"
    text = settings.read_text(encoding="utf-8")
    assert text.count("\nsnmp:\n") == 1

    def defaults(profile: str) -> None:
        line = f"\nsnmp:\n  default_profiles: {{gateway: {profile}}}\n"
        settings.write_text(text.replace("\nsnmp:\n", line), encoding="utf-8")

    def profile(config: Config) -> str | None:
        probe = config.sites["gw-ubnd-huyen"].probe
        assert isinstance(probe, SnmpProbe)
        return probe.profile

    defaults("router")
    for _ in range(2):
        assert profile(load_config(root, state, cache=True)) == "router"
    assert len(checks) == 1  # the second load took the outcome
    defaults("mikrotik")
    assert profile(load_config(root, state, cache=True)) == "mikrotik"
    assert load_config(root, state, cache=True) == load_config(root, state)


def test_a_new_secret_is_the_load_s_though_the_outcome_is_kept(
    root: Path, state: dict[str, str], checks: list[Path]
) -> None:
    """Secrets are read at every load, never kept: a community changed in the file or in
    the environment is the one the daemon uses, with the inventory's outcome taken."""
    load_config(root, state, cache=True)
    path = root / "credentials.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("community: sim-vnpt}", "community: new-vnpt}"), encoding="utf-8")
    env = {**state, "DISTRICTMON_SNMP_RTV_RO_COMMUNITY": "from-the-environment"}
    config = load_config(root, env, cache=True)
    assert len(checks) == 1  # the outcome was taken
    assert config == load_config(root, env)
    communities = {name: credential.community for name, credential in config.credentials.items()}
    assert communities["vnpt-ro"] is not None and communities["rtv-ro"] is not None
    assert communities["vnpt-ro"].reveal() == "new-vnpt"
    assert communities["rtv-ro"].reveal() == "from-the-environment"


def test_neither_an_outcome_nor_a_reading_holds_a_secret(root: Path, state: dict[str, str]) -> None:
    env = {**state, "DISTRICTMON_SNMP_RTV_RO_COMMUNITY": "from-the-environment"}
    for share in (None, Shard(1, 2), Shard(2, 2)):
        load_config(root, env, share=share, cache=True)
    secrets = secret_values(load_credentials(root / "credentials.yaml", env, []), env)
    assert {"sim-vnpt", "sim-broker-password", "from-the-environment"} <= secrets
    kept = list((Path(state["STATE_DIRECTORY"]) / reading_cache.DIRECTORY_NAME).iterdir())
    assert len(_outcomes(state)) == 3 and len(kept) > 3
    for path in kept:
        data = path.read_bytes()
        assert not [secret for secret in secrets if secret.encode() in data], path.name


def test_an_inventory_with_a_mistake_keeps_no_outcome(root: Path, state: dict[str, str]) -> None:
    path = root / "inventory" / "bts.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("port: 1161", "port: 99999", 1), encoding="utf-8")
    for _ in range(2):
        assert _refusal(lambda: load_config(root, state, cache=True)) == _refusal(
            lambda: load_config(root, state)
        )
    assert _outcomes(state) == []
