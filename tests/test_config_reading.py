"""How configuration files are read: the fast reading (straight from the parser's events, a
province's sites one by one) gives what the full reading gives, and leaves every file it
cannot take whole to it, so that problems are said once, in the same words, at the same
lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.config import located
from monitor.config.load import load_config
from monitor.config.located import YamlList, YamlMap, load_yaml
from monitor.config.problems import ConfigError

SHIPPED = Path(__file__).parents[1] / "config"
YAML_FILES = sorted(SHIPPED.rglob("*.yaml"))


def _same(fast: object, full: object, where: str) -> None:
    assert type(fast) is type(full), where
    if isinstance(full, YamlMap):
        assert isinstance(fast, YamlMap)
        assert (fast.line, fast.key_lines, list(fast)) == (full.line, full.key_lines, list(full))
        for key in full:
            _same(fast[key], full[key], f"{where}.{key}")
    elif isinstance(full, YamlList):
        assert isinstance(fast, YamlList)
        assert (fast.line, fast.item_lines, len(fast)) == (full.line, full.item_lines, len(full))
        for index, (a, b) in enumerate(zip(fast, full, strict=True)):
            _same(a, b, f"{where}[{index}]")
    else:
        assert fast == full, where


def _full_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def unusual(text: str, stream: object) -> object:
        raise located._Unusual

    monkeypatch.setattr(located, "_plain_tree", unusual)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda path: str(path.relative_to(SHIPPED)))
def test_every_shipped_file_reads_to_the_full_reading_s_tree_line_for_line(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = load_yaml(path, [])
    _full_reading(monkeypatch)
    full = load_yaml(path, [])
    _same(fast, full, path.name)


def test_a_file_that_turns_out_unusual_after_some_sites_says_each_problem_once(
    tmp_path: Path,
) -> None:
    """Sites streamed to the reader before the duplicate key was reached are dropped: the
    full reading reads them again, and the bad port is reported once, not twice."""
    root = tmp_path / "config"
    shutil.copytree(SHIPPED, root)
    bts = root / "inventory" / "bts.yaml"
    lines = bts.read_text(encoding="utf-8").splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if "id: bts-vtl-thanh-nua-01," in line)
    second = next(i for i, line in enumerate(lines) if "id: bts-vtl-thanh-nua-02," in line)
    lines[first] = lines[first].replace("port: 1161", "port: 99999")
    lines[second] = lines[second].replace("kind: bts,", "kind: bts, kind: bts,")
    bts.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(root, {})
    assert [str(problem) for problem in caught.value.problems] == [
        f"{bts}:{first + 1}: sites[0].probe.snmp.port: must be an integer 1..65535, got 99999"
        " (site 'bts-vtl-thanh-nua-01')",
        f"{bts}:{second + 1}: sites[1].kind: duplicate key 'kind' (first at line {second + 1})",
    ]


def test_sites_are_read_the_same_streamed_or_from_the_whole_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = load_config(SHIPPED, {})
    _full_reading(monkeypatch)
    assert load_config(SHIPPED, {}) == fast
