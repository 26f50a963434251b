"""The daemon's kept readings of its inventory: a load from them is the load from the files,
an unchanged file is not read again, and nothing wrong with them costs more than the reading
they would have saved (the figures are bench/config_bench.py's)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import monitor.cli.main as cli
from monitor.config import inventory, reading_cache
from monitor.config.load import Config, load_config
from monitor.config.problems import ConfigError
from monitor.config.shards import Shard, load_shard, shard_of

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


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The inventory files read from their text, in this process, from now on."""
    read: list[Path] = []
    real = inventory._read_inventory_file

    def counted(path: Path, *args: object) -> None:
        read.append(path)
        real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(inventory, "_read_inventory_file", counted)
    return read


def _kept(env: dict[str, str]) -> list[Path]:
    return sorted((Path(env["STATE_DIRECTORY"]) / reading_cache.DIRECTORY_NAME).glob("*.reading"))


def _edit(root: Path, site: str, old: str, new: str) -> Path:
    """Replace `old` by `new` on the line of the inventory that defines `site`; its file."""
    marker = f"id: {site},"
    [path] = [p for p in (root / "inventory").glob("*.yaml") if marker in p.read_text("utf-8")]
    text = path.read_text(encoding="utf-8")
    [line] = [line for line in text.splitlines() if marker in line]
    assert old in line
    path.write_text(text.replace(line, line.replace(old, new, 1)), encoding="utf-8")
    return path


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


def test_an_unchanged_inventory_is_not_read_again_and_an_edited_file_only_is(
    root: Path, state: dict[str, str], reads: list[Path]
) -> None:
    load_config(root, state, cache=True)
    assert len(reads) == FILES
    reads.clear()
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
    assert load_config(root, state, cache=True) == reference
    assert len(reads) == 2  # those two files were read from their text
    reads.clear()
    assert load_config(root, state, cache=True) == reference
    assert not reads  # both were kept anew, for the daemon's user alone
    assert all(path.stat().st_mode & 0o077 == 0 for path in _kept(state))


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
