"""Refusals that say how to fix: "did you mean" for keys, ids and names, a mis-indented line
explained where it is, one message per missing name however many sites use it, and nothing
of a secret ever quoted while helping."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_config import BTS, COMMUNITY, SITES, broken, edit, errors, write_config

from monitor.cli.main import main
from monitor.config.indentation import explain
from monitor.config.load import load_config
from monitor.config.problems import ConfigError
from monitor.core.model import SnmpProbe

SHIPPED = Path(__file__).parents[1] / "config"


# --- did you mean ------------------------------------------------------------------------------


def test_a_misspelt_key_is_named_with_the_key_it_misspells_and_once(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "    commune: thanh-nua\n    owner: viettel\n    lat: 21.4502",
        "    comune: thanh-nua\n    owner: viettel\n    lat: 21.4502",
    )
    [problem] = errors(root)  # not also "commune: is required"
    assert problem.startswith(
        "inventory/sites.yaml:16: sites[1].comune: unknown key; did you mean 'commune'? "
    )
    assert problem.endswith(BTS)


def test_misspelt_references_get_the_id_they_most_likely_mean(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "owner: dien-bien-rtv", "owner: dien-bien-tv")
    edit(
        root / "inventory/sites.yaml",
        "    parent: gw-thanh-nua\n    probe",
        "    parent: gw-than-nua\n    probe",
    )
    edit(root / "inventory/sites.yaml", "kind: gateway", "kind: gatway")
    assert errors(root) == [
        "inventory/sites.yaml:3: sites[0].kind: must be one of bts, radio_station, loudspeaker, "
        "gateway, video_endpoint, post_point, portal; got 'gatway'; did you mean 'gateway'? "
        "(site 'gw-thanh-nua')",
        "inventory/sites.yaml:20: sites[1].parent: unknown parent 'gw-than-nua'; "
        f"did you mean 'gw-thanh-nua'?{BTS}",
        "inventory/sites.yaml:30: sites[2].owner: unknown owner 'dien-bien-tv'; "
        "did you mean 'dien-bien-rtv'? (site 'loa-thanh-nua-01')",
    ]


def test_a_name_like_no_known_one_gets_no_suggestion(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "owner: dien-bien-rtv", "owner: bưu-điện")
    [problem] = errors(root)
    assert "unknown owner 'bưu-điện'" in problem and "did you mean" not in problem


@pytest.fixture
def district(tmp_path: Path) -> Path:
    """A copy of the shipped district, to break."""
    return shutil.copytree(SHIPPED, tmp_path / "config")


def first_line(path: Path, needle: str) -> str:
    return next(line for line in path.read_text(encoding="utf-8").splitlines() if needle in line)


def test_the_misspellings_of_the_issue_each_name_what_was_meant(district: Path) -> None:
    """`vietel`, `bts-powr`, `gw-distric-core` in the shipped district: one message each."""
    bts, agencies = district / "inventory" / "bts.yaml", district / "inventory" / "agencies.yaml"
    line = first_line(bts, "id: bts-vtl-thanh-nua-01,")
    edit(
        bts, line, line.replace("owner: viettel", "owner: vietel").replace("bts-power", "bts-powr")
    )
    line = first_line(agencies, "parent: gw-district-core")
    edit(agencies, line, line.replace("gw-district-core", "gw-distric-core"))
    found = errors(district)
    assert len(found) == 3, found
    assert any(
        "unknown parent 'gw-distric-core'; did you mean 'gw-district-core'?" in f for f in found
    )
    assert any("unknown owner 'vietel'; did you mean 'viettel'?" in f for f in found)
    assert any(
        "unknown profile 'bts-powr'" in f and "did you mean 'bts-power'?" in f for f in found
    )


def test_a_removed_credential_is_one_message_naming_its_sites_and_their_number(
    district: Path,
) -> None:
    users = [
        site.id
        for site in load_config(SHIPPED, {}).sites.values()
        if isinstance(site.probe, SnmpProbe) and site.probe.credential == "viettel-ro"
    ]
    assert len(users) > 5
    credentials = district / "credentials.yaml"
    edit(credentials, first_line(credentials, "viettel-ro:") + "\n", "")
    [problem] = errors(district)
    first = users[0]
    assert problem.startswith("inventory/bts.yaml:")
    named = f"named by {len(users)} sites: '{first}' (bts.yaml:"
    assert f"unknown credential 'viettel-ro' (not in credentials.yaml), {named}" in problem
    assert problem.endswith(f" and {len(users) - 5} more")
    assert all(f"'{site}'" in problem for site in users[:5])


def test_maintenance_targets_and_trap_credentials_get_suggestions(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    (root / "maintenance.yaml").write_text(
        "windows:\n  - id: works\n    owners: [vietel]\n"
        "    start: 2025-03-04 01:00\n    end: 2025-03-04 03:00\n    timezone: UTC\n",
        encoding="utf-8",
    )
    [problem] = errors(root)
    assert "unknown owner 'vietel'; did you mean 'viettel'? (window 'works')" in problem


def test_check_config_prints_the_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "owner: dien-bien-rtv", "owner: dien-bien-tv")
    assert main(["check-config", "-c", str(root)]) == 2
    assert "did you mean 'dien-bien-rtv'?" in capsys.readouterr().err


# --- secrets stay secret while helping ---------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        # a community pasted as a key, in an entry and at the top of the file
        f"snmp:\n  district-ro:\n    version: 2c\n    community: x\n    {COMMUNITY}: 1\n",
        f"snmp:\n  district-ro: {{version: 2c, community: x}}\n{COMMUNITY}: 1\n",
        # a community pasted over a key name
        f"snmp:\n  district-ro:\n    version: 2c\n    {COMMUNITY}\n",
        # mis-indented secrets
        f"snmp:\n  district-ro:\n    version: 2c\n     community: {COMMUNITY}\n",
        f"snmp:\n  district-ro:\n    version: 2c\n   community: {COMMUNITY}\n",
        f"snmp:\n  district-ro:\n  version: 2c\n    community: {COMMUNITY}\n",
    ],
)
def test_no_suggestion_or_explanation_quotes_a_secret(tmp_path: Path, credentials: str) -> None:
    root = write_config(tmp_path, {"credentials.yaml": credentials})
    found = errors(root)
    assert found
    assert all(COMMUNITY not in line and "9x" not in line for line in found), found


def test_a_misspelt_key_of_a_credential_is_named_with_its_fix_but_not_its_value(
    tmp_path: Path,
) -> None:
    credentials = f"snmp:\n  district-ro:\n    version: 2c\n    comunity: {COMMUNITY}\n"
    root = write_config(tmp_path, {"credentials.yaml": credentials})
    assert errors(root) == [
        "credentials.yaml:4: snmp.district-ro.comunity: unknown key; did you mean 'community'? "
        "(expected one of: version, community)"
    ]


def test_a_key_like_no_known_one_is_not_shown_in_a_file_of_secrets(tmp_path: Path) -> None:
    credentials = f"snmp:\n  district-ro:\n    version: 2c\n    community: x\n    {COMMUNITY}: 1\n"
    root = write_config(tmp_path, {"credentials.yaml": credentials})
    assert errors(root) == [
        "credentials.yaml:5: snmp.district-ro.***: unknown key, not shown (this file holds "
        "secrets) (expected one of: version, community)"
    ]


# --- mis-indentation ---------------------------------------------------------------------------


def shifted(text: str, line: int, by: int) -> str:
    """`text` with its `line` (1-based) moved `by` columns (left when negative)."""
    lines = text.splitlines()
    lines[line - 1] = lines[line - 1][-by:] if by < 0 else " " * by + lines[line - 1]
    return "\n".join(lines) + "\n"


def test_a_line_indented_too_deep_is_explained_at_that_line(tmp_path: Path) -> None:
    # line 15 of SITES is `    name: BTS Viettel Thanh Nưa 01`, under `kind: bts`
    root = write_config(tmp_path, {"inventory/sites.yaml": shifted(SITES, 15, 2)})
    assert errors(root) == [
        "inventory/sites.yaml:15: mis-indented: 'name' is indented 6 spaces, deeper than "
        "'kind' (line 14), which has a value already; move it to 4, beside 'kind'"
    ]


def test_a_first_key_indented_too_shallow_is_explained_at_its_line_not_the_next(
    tmp_path: Path,
) -> None:
    # line 23 is `        address: 127.1.0.2`, the first key under `snmp:` (line 22); the
    # parser stumbles only on line 24
    root = write_config(tmp_path, {"inventory/sites.yaml": shifted(SITES, 23, -2)})
    assert errors(root) == [
        "inventory/sites.yaml:23: mis-indented: 'address' is indented 6 spaces, but the line "
        "after it 8 spaces; move 'address' to 8 like it (or the line after it to 6)"
    ]


def test_an_item_out_of_line_with_the_items_above(tmp_path: Path) -> None:
    root = write_config(tmp_path, {"inventory/sites.yaml": shifted(SITES, 13, 1)})
    assert errors(root) == [
        "inventory/sites.yaml:13: mis-indented: the '- ' of this item is indented 3 spaces, but "
        "the items above have theirs at 2 (line 2); move it to 2"
    ]


def test_tabs_and_colons_in_values_are_named() -> None:
    assert explain("a:\n\tb: 1\n", 2, 0, "found character that cannot start any token") == (
        2,
        "indented with a tab: YAML indents with spaces only",
    )
    assert explain("a:\n  b: c: d\n", 2, 6, "mapping values are not allowed here") == (
        2,
        "a value holding ': ' must be quoted, e.g. name: 'A: B'",
    )


def test_in_a_file_of_secrets_lines_are_named_by_number_not_by_key(tmp_path: Path) -> None:
    credentials = f"snmp:\n  district-ro:\n    version: 2c\n      community: {COMMUNITY}\n"
    root = write_config(tmp_path, {"credentials.yaml": credentials})
    assert errors(root) == [
        "credentials.yaml:4: mis-indented: this line is indented 6 spaces, deeper than line 3, "
        "which has a value already; move it to 4, beside line 3"
    ]


@pytest.mark.parametrize("by", [-2, -1, 1, 2])
def test_every_line_moved_is_explained_and_named(tmp_path: Path, by: int) -> None:
    """Each line of a valid inventory moved by `by` columns: where YAML can no longer read
    the file, the refusal explains the indentation and names the moved line (at it, or as
    `line N` in the words); never the parser's bare words."""
    refused = 0
    for number, line in enumerate(SITES.splitlines(), start=1):
        if by < 0 and not line.startswith(" " * -by):
            continue
        root = write_config(
            tmp_path / f"{number}", {"inventory/sites.yaml": shifted(SITES, number, by)}
        )
        try:
            load_config(root, {})
        except ConfigError as error:
            syntax = [p for p in error.problems if p.key == "" and "sites.yaml" in str(p.file)]
            if not syntax:
                continue  # still YAML: the schema refused it (unknown key...)
            refused += 1
            [problem] = syntax
            assert problem.message.startswith("mis-indented: "), (number, problem)
            assert problem.line == number or f"(line {number})" in problem.message, (
                number,
                problem,
            )
    assert refused >= 20
