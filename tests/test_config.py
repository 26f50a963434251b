"""Configuration loading and validation: every error at once, each placed by file, line and key.

Each error test writes the small valid configuration below into tmp_path, breaks one thing and
checks the complete message list, so that a test also pins that one mistake gives one message
(no cascade of follow-on errors). Line numbers in the assertions count lines of these texts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from monitor.cli.main import main
from monitor.cli.summary import summarize
from monitor.config.credentials import Secret, env_var
from monitor.config.load import Config, find_config_dir, load_config
from monitor.config.problems import ConfigError
from monitor.config.settings import HttpSettings, PollSettings, StateSettings
from monitor.core.model import DnsProbe, HttpProbe, MqttProbe, Probe, SnmpProbe

SHIPPED = Path(__file__).parents[1] / "config"

SETTINGS = """\
http:
  listen: 127.0.0.1:9877
ledger:
  path: var/ledger.sqlite
poll:
  interval_seconds: 60
  timeout_seconds: 2
  retries: 1
  max_in_flight: 256
state:
  down_after: 3
  up_after: 2
"""

COMMUNITY = "Zq7-very-secret-community-9x"

CREDENTIALS = f"""\
snmp:
  district-ro:
    version: 2c
    community: {COMMUNITY}
"""

COMMUNES = """\
communes:
  - id: thanh-nua
    name: Thanh Nưa
    lat: 21.452
    lon: 103.003
    areas: [Bản Ta Pô, Bản Pa Pốm]
  - id: muong-phang
    name: Mường Phăng
    lat: 21.461
    lon: 103.132
"""

OWNERS = """\
owners:
  - id: viettel
    name: Viettel
    kind: operator
  - id: dien-bien-rtv
    name: Đài Truyền thanh - Truyền hình huyện Điện Biên
    kind: broadcaster
"""

SITES = """\
sites:
  - id: gw-thanh-nua
    kind: gateway
    name: Gateway UBND Thanh Nưa
    commune: thanh-nua
    owner: viettel
    lat: 21.4501
    lon: 103.0101
    probe:
      snmp:
        address: 127.1.0.1
        credential: district-ro
  - id: bts-vtl-thanh-nua-01
    kind: bts
    name: BTS Viettel Thanh Nưa 01
    commune: thanh-nua
    owner: viettel
    lat: 21.4502
    lon: 103.0102
    parent: gw-thanh-nua
    probe:
      snmp:
        address: 127.1.0.2
        port: 1161
        credential: district-ro
  - id: loa-thanh-nua-01
    kind: loudspeaker
    name: Cụm loa Thanh Nưa 01
    commune: thanh-nua
    owner: dien-bien-rtv
    lat: 21.4503
    lon: 103.0103
    parent: gw-thanh-nua
    covers: [Bản Ta Pô]
    probe:
      snmp: {address: loa-01.thanh-nua.example, port: 1162, credential: district-ro}
"""

FILES = {
    "districtmon.yaml": SETTINGS,
    "credentials.yaml": CREDENTIALS,
    "inventory/communes.yaml": COMMUNES,
    "inventory/owners.yaml": OWNERS,
    "inventory/sites.yaml": SITES,
}

BTS = " (site 'bts-vtl-thanh-nua-01')"
GW = " (site 'gw-thanh-nua')"
LOA = " (site 'loa-thanh-nua-01')"


def write_config(root: Path, replace: dict[str, str] | None = None) -> Path:
    """The valid configuration, with the files named in `replace` given other texts."""
    files = FILES | (replace or {})
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def broken(root: Path, name: str, old: str, new: str) -> Path:
    write_config(root)
    edit(root / name, old, new)
    return root


def errors(root: Path, environ: dict[str, str] | None = None) -> list[str]:
    """Every problem of the configuration at `root`, as printed, with `root/` cut off."""
    with pytest.raises(ConfigError) as caught:
        load_config(root, environ or {})
    return [str(problem).removeprefix(f"{root}/") for problem in caught.value.problems]


def load(root: Path, environ: dict[str, str] | None = None) -> Config:
    return load_config(root, environ or {})


def snmp_probe(config: Config, site: str) -> SnmpProbe:
    """The probe of `site`, which the test's configuration makes an SNMP one."""
    probe = config.sites[site].probe
    assert isinstance(probe, SnmpProbe), probe
    return probe


def community(config: Config, credential: str) -> str:
    """The revealed community of a v1/v2c credential."""
    secret = config.credentials[credential].community
    assert secret is not None, f"{credential} has no community"
    return secret.reveal()


# --- a valid configuration ---------------------------------------------------------------------


def test_valid_config_loads_into_model_objects(tmp_path: Path) -> None:
    config = load(write_config(tmp_path))
    assert config.http == HttpSettings("127.0.0.1", 9877)
    assert config.poll == PollSettings(60.0, 2.0, 1, 256)
    assert config.state == StateSettings(3, 2)
    assert config.ledger_path == tmp_path / "var/ledger.sqlite"
    assert list(config.sites) == ["gw-thanh-nua", "bts-vtl-thanh-nua-01", "loa-thanh-nua-01"]
    assert config.communes["thanh-nua"].name == "Thanh Nưa"
    assert config.communes["thanh-nua"].areas == ("Bản Ta Pô", "Bản Pa Pốm")
    assert config.owners["dien-bien-rtv"].kind == "broadcaster"
    bts = config.sites["bts-vtl-thanh-nua-01"]
    bts_probe = snmp_probe(config, bts.id)
    assert (bts.parent, bts_probe.port, bts_probe.credential) == (
        "gw-thanh-nua",
        1161,
        "district-ro",
    )
    assert snmp_probe(config, "gw-thanh-nua").port == 161
    assert config.sites["loa-thanh-nua-01"].covers == ("Bản Ta Pô",)
    assert snmp_probe(config, "loa-thanh-nua-01").address == "loa-01.thanh-nua.example"
    assert community(config, "district-ro") == COMMUNITY
    assert config.credentials["district-ro"].version == "2c"


def test_integers_are_accepted_where_numbers_are_wanted(tmp_path: Path) -> None:
    config = load(write_config(tmp_path))
    assert isinstance(config.poll.interval_seconds, float)
    assert isinstance(config.sites["gw-thanh-nua"].lat, float)


def test_every_setting_is_optional_and_the_ledger_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load(write_config(tmp_path / "cfg", {"districtmon.yaml": "{}  # every default\n"}))
    assert config.http == HttpSettings()
    assert config.poll == PollSettings()
    assert config.state == StateSettings()
    assert config.ledger_path == tmp_path / "var/ledger.sqlite"


def test_an_absolute_ledger_path_is_kept(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "path: var/", "path: /srv/dm/")
    assert load(root).ledger_path == Path("/srv/dm/ledger.sqlite")


def test_site_probe_overrides_are_read(tmp_path: Path) -> None:
    overrides = "port: 1161\n        interval_seconds: 30\n        timeout_seconds: 1.5\n"
    root = broken(
        tmp_path, "inventory/sites.yaml", "port: 1161\n", overrides + "        retries: 0\n"
    )
    probe = snmp_probe(load(root), "bts-vtl-thanh-nua-01")
    assert (probe.interval_seconds, probe.timeout_seconds, probe.retries) == (30.0, 1.5, 0)


def test_http_listen_accepts_ipv6_in_brackets(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "127.0.0.1:9877", "'[::1]:9000'")
    assert load(root).http == HttpSettings("::1", 9000)


def test_an_inventory_without_sites_is_allowed_when_it_says_so(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    (root / "inventory/sites.yaml").write_text("sites: []  # none yet\n", encoding="utf-8")
    config = load(root)
    assert config.sites == {}
    assert len(config.communes) == 2


def test_an_emptied_inventory_file_is_refused_not_read_as_no_sites(tmp_path: Path) -> None:
    root = write_config(tmp_path, {"inventory/sites.yaml": "# the sites moved to bts.yaml\n"})
    assert errors(root) == [
        "inventory/sites.yaml: the file is empty; if it is meant to hold nothing, say so: sites: []"
    ]


def test_an_emptied_communes_file_gives_one_message_not_one_per_site(tmp_path: Path) -> None:
    root = write_config(tmp_path, {"inventory/communes.yaml": ""})
    assert errors(root) == [
        "inventory/communes.yaml: the file is empty; if it is meant to hold nothing, say so: "
        "sites: []"
    ]


def test_an_inventory_directory_without_files_is_refused(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    for path in (root / "inventory").iterdir():
        path.unlink()
    [problem] = errors(root)
    assert problem.startswith("inventory: no *.yaml file in the inventory directory; ")
    assert "sites: []" in problem


@pytest.mark.parametrize("text", ["", "# tuned later\n", "---\n"])
def test_an_empty_settings_file_is_refused_with_how_to_take_the_defaults(
    tmp_path: Path, text: str
) -> None:
    root = write_config(tmp_path, {"districtmon.yaml": text})
    assert errors(root) == [
        "districtmon.yaml: the file is empty; write {} in it to take every default "
        "(see config/README.md)"
    ]


def test_inventory_files_are_read_in_name_order(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    (root / "inventory/sites.yaml").rename(root / "inventory/b.yaml")
    extra = SITES.replace("gw-thanh-nua", "gw-a").replace("bts-vtl", "bts-a").replace("loa-", "a-")
    (root / "inventory/a.yaml").write_text(extra.replace("127.1", "127.9"), encoding="utf-8")
    assert list(load(root).sites)[:4] == [
        "gw-a",
        "bts-a-thanh-nua-01",
        "a-thanh-nua-01",
        "gw-thanh-nua",
    ]


def test_yaml_merge_keys_and_anchors_are_supported(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "      snmp:\n        address: 127.1.0.1\n        credential: district-ro\n",
        "      snmp: &probe\n        address: 127.1.0.1\n        credential: district-ro\n",
    )
    edit(
        root / "inventory/sites.yaml",
        "snmp: {address: loa-01.thanh-nua.example, port: 1162, credential: district-ro}",
        "snmp: {<<: *probe, address: 127.1.0.3}",
    )
    probe = snmp_probe(load(root), "loa-thanh-nua-01")
    assert (probe.address, probe.port, probe.credential) == ("127.1.0.3", 161, "district-ro")


# --- one test per kind of error ----------------------------------------------------------------


def test_unknown_key_in_a_site_names_file_line_path_and_site(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "port: 1161", "prot: 1161")
    expected = (
        "expected one of: address, port, credential, interval_seconds, timeout_seconds, retries, "
        "profile"
    )
    assert errors(root) == [
        f"inventory/sites.yaml:24: sites[1].probe.snmp.prot: unknown key; did you mean 'port'? "
        f"({expected}){BTS}"
    ]


def test_unknown_key_in_settings(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "  retries: 1", "  retry: 1")
    assert errors(root) == [
        "districtmon.yaml:8: poll.retry: unknown key; did you mean 'retries'? "
        "(expected one of: interval_seconds, timeout_seconds, retries, max_in_flight)"
    ]


def test_unknown_top_level_key_in_an_inventory_file(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/owners.yaml", "owners:", "owner:")
    assert errors(root)[0] == (
        "inventory/owners.yaml:1: owner: unknown key; did you mean 'owners'? "
        "(expected one of: communes, owners, sites)"
    )


def test_wrong_type_is_reported_with_the_value(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "lat: 21.4502", "lat: north")
    assert errors(root) == [
        f"inventory/sites.yaml:18: sites[1].lat: must be a number, got 'north'{BTS}"
    ]


def test_a_boolean_is_not_an_integer(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "retries: 1", "retries: true")
    assert errors(root) == ["districtmon.yaml:8: poll.retries: must be an integer >= 0, got true"]


def test_a_number_where_text_is_wanted_suggests_quoting(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/owners.yaml", "name: Viettel", "name: 1234")
    assert errors(root) == [
        "inventory/owners.yaml:3: owners[0].name: must be text, got 1234 "
        "(quote it to make it text) (owner 'viettel')"
    ]


def test_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "    probe:\n      snmp:\n        address: 127.1.0.1\n        credential: district-ro\n",
        "    probe: snmp\n",
    )
    assert errors(root) == [
        f"inventory/sites.yaml:9: sites[0].probe: must be a mapping, got 'snmp'{GW}"
    ]


def test_missing_required_key_is_reported_at_its_entry(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "    lat: 21.4502\n", "")
    assert errors(root) == [f"inventory/sites.yaml:13: sites[1].lat: is required{BTS}"]


def test_id_must_be_a_slug(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/communes.yaml", "id: muong-phang", "id: Muong_Phang")
    assert errors(root) == [
        "inventory/communes.yaml:7: communes[1].id: must be a slug "
        "([a-z0-9][a-z0-9-]*, at most 64 characters), got 'Muong_Phang'"
    ]


def test_duplicate_site_id_across_files_names_both_places(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    again = SITES.replace("127.1.0", "127.1.9")
    (root / "inventory/sites2.yaml").write_text(again, encoding="utf-8")
    assert errors(root) == [
        "inventory/sites2.yaml:2: sites[0].id: duplicate site id 'gw-thanh-nua' "
        "(first defined at sites.yaml:2)",
        "inventory/sites2.yaml:13: sites[1].id: duplicate site id 'bts-vtl-thanh-nua-01' "
        "(first defined at sites.yaml:13)",
        "inventory/sites2.yaml:26: sites[2].id: duplicate site id 'loa-thanh-nua-01' "
        "(first defined at sites.yaml:26)",
    ]


def test_duplicate_commune_id_in_one_file(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/communes.yaml", "id: muong-phang", "id: thanh-nua")
    assert errors(root) == [
        "inventory/communes.yaml:7: communes[1].id: duplicate commune id 'thanh-nua' "
        "(first defined at communes.yaml:2)"
    ]


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    root = broken(
        tmp_path, "inventory/sites.yaml", "port: 1161\n", "port: 1161\n        port: 1163\n"
    )
    assert errors(root) == [
        "inventory/sites.yaml:25: sites[1].probe.snmp.port: duplicate key 'port' (first at line 24)"
    ]


def test_unknown_commune(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "commune: thanh-nua\n    owner: viettel\n    lat: 21.4502",
        "commune: thanh-nu\n    owner: viettel\n    lat: 21.4502",
    )
    assert errors(root) == [
        f"inventory/sites.yaml:16: sites[1].commune: unknown commune 'thanh-nu'; "
        f"did you mean 'thanh-nua'?{BTS}"
    ]


def test_unknown_owner(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "owner: dien-bien-rtv", "owner: vtv")
    assert errors(root) == [f"inventory/sites.yaml:30: sites[2].owner: unknown owner 'vtv'{LOA}"]


def test_unknown_parent(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "    parent: gw-thanh-nua\n    probe",
        "    parent: gw-thanh-nau\n    probe",
    )
    assert errors(root) == [
        f"inventory/sites.yaml:20: sites[1].parent: unknown parent 'gw-thanh-nau'; "
        f"did you mean 'gw-thanh-nua'?{BTS}"
    ]


def test_parent_cycle_is_reported_once_with_its_path(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "lon: 103.0101\n",
        "lon: 103.0101\n    parent: loa-thanh-nua-01\n",
    )
    assert errors(root) == [
        "inventory/sites.yaml:9: sites[0].parent: parent cycle: "
        "gw-thanh-nua -> loa-thanh-nua-01 -> gw-thanh-nua"
    ]


def test_a_site_cannot_be_its_own_parent(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "lon: 103.0101\n",
        "lon: 103.0101\n    parent: gw-thanh-nua\n",
    )
    assert errors(root) == [
        "inventory/sites.yaml:9: sites[0].parent: parent cycle: gw-thanh-nua -> gw-thanh-nua"
    ]


def test_bad_address(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "127.1.0.2", "127.1.0.300")
    assert errors(root) == [
        "inventory/sites.yaml:23: sites[1].probe.snmp.address: "
        f"must be an IP address or a host name, got '127.1.0.300'{BTS}"
    ]


@pytest.mark.parametrize(
    "address", ["::1", "fe80::1%eth0", "10.0.0.1", "snmp-1.example.org", "localhost"]
)
def test_good_addresses(tmp_path: Path, address: str) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "127.1.0.2", f"'{address}'")
    assert snmp_probe(load(root), "bts-vtl-thanh-nua-01").address == address


@pytest.mark.parametrize(
    "address", ["under_score.example", "-lead.example", "a..b", "10.0.0", "x" * 64]
)
def test_bad_addresses(tmp_path: Path, address: str) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "127.1.0.2", f"'{address}'")
    assert errors(root)[0].startswith(
        "inventory/sites.yaml:23: sites[1].probe.snmp.address: must be"
    )


def test_bad_port_has_the_readme_message(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "port: 1161", "port: 70000")
    assert errors(root) == [
        "inventory/sites.yaml:24: sites[1].probe.snmp.port: "
        f"must be an integer 1..65535, got 70000{BTS}"
    ]


def test_port_zero_in_a_flow_mapping(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "port: 1162", "port: 0")
    assert errors(root) == [
        "inventory/sites.yaml:36: sites[2].probe.snmp.port: "
        f"must be an integer 1..65535, got 0{LOA}"
    ]


def test_site_kind_must_be_known(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "kind: bts", "kind: tower")
    assert errors(root) == [
        "inventory/sites.yaml:14: sites[1].kind: must be one of bts, radio_station, loudspeaker, "
        f"gateway, video_endpoint, post_point, portal; got 'tower'{BTS}"
    ]


def test_owner_kind_must_be_known(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/owners.yaml", "kind: operator", "kind: telco")
    assert errors(root) == [
        "inventory/owners.yaml:4: owners[0].kind: must be one of operator, agency, broadcaster; "
        "got 'telco' (owner 'viettel')"
    ]


def test_latitude_and_longitude_ranges(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/communes.yaml", "lat: 21.452", "lat: 121.452")
    edit(root / "inventory/communes.yaml", "lon: 103.132", "lon: -190")
    assert errors(root) == [
        "inventory/communes.yaml:4: communes[0].lat: "
        "must be a number -90..90, got 121.452 (commune 'thanh-nua')",
        "inventory/communes.yaml:10: communes[1].lon: "
        "must be a number -180..180, got -190 (commune 'muong-phang')",
    ]


def test_covers_only_on_loudspeakers(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "    parent: gw-thanh-nua\n    probe",
        "    parent: gw-thanh-nua\n    covers: [Bản Ta Pô]\n    probe",
    )
    assert errors(root) == [
        "inventory/sites.yaml:21: sites[1].covers: "
        f"only loudspeaker sites may list covers (kind is 'bts'){BTS}"
    ]


def test_covers_must_be_areas_of_the_sites_own_commune(tmp_path: Path) -> None:
    root = broken(
        tmp_path, "inventory/sites.yaml", "covers: [Bản Ta Pô]", "covers: [Bản Ta Pô, Bản Phăng]"
    )
    assert errors(root) == [
        "inventory/sites.yaml:34: sites[2].covers[1]: "
        f"'Bản Phăng' is not an area of commune 'thanh-nua'{LOA}"
    ]


def test_covers_compare_names_whatever_their_unicode_form(tmp_path: Path) -> None:
    decomposed = "Ba\u0309n Ta Po\u0302"  # "Bản Ta Pô" typed with combining accents
    root = broken(
        tmp_path, "inventory/sites.yaml", "covers: [Bản Ta Pô]", f"covers: [{decomposed}]"
    )
    assert load(root).sites["loa-thanh-nua-01"].covers == ("Bản Ta Pô",)


def test_area_names_are_unique_within_a_commune(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/communes.yaml",
        "[Bản Ta Pô, Bản Pa Pốm]",
        "[Bản Ta Pô, Bản Pa Pốm, Bản Ta Pô]",
    )
    assert errors(root) == [
        "inventory/communes.yaml:6: communes[0].areas[2]: 'Bản Ta Pô' is listed twice "
        "(first at line 6) (commune 'thanh-nua')"
    ]


def test_missing_credential_reference(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "port: 1161\n        credential: district-ro",
        "port: 1161\n        credential: district-rw",
    )
    assert errors(root) == [
        "inventory/sites.yaml:25: sites[1].probe.snmp.credential: unknown credential 'district-rw' "
        f"(not in credentials.yaml); did you mean 'district-ro'?{BTS}"
    ]


def test_a_credential_without_community_names_the_environment_variable(tmp_path: Path) -> None:
    root = broken(tmp_path, "credentials.yaml", f"    community: {COMMUNITY}\n", "")
    assert errors(root) == [
        "credentials.yaml:2: snmp.district-ro.community: no community: set it here or in the "
        "environment variable DISTRICTMON_SNMP_DISTRICT_RO_COMMUNITY"
    ]


def test_snmp_version_must_be_1_2c_or_3(tmp_path: Path) -> None:
    root = broken(tmp_path, "credentials.yaml", "version: 2c", "version: 4")
    assert errors(root) == ["credentials.yaml:3: snmp.district-ro.version: must be 1, 2c or 3"]


def test_snmp_version_1_may_be_written_as_a_number(tmp_path: Path) -> None:
    root = broken(tmp_path, "credentials.yaml", "version: 2c", "version: 1")
    assert load(root).credentials["district-ro"].version == "1"


@pytest.mark.parametrize(
    ("listen", "line"),
    [
        ("127.0.0.1", 2),
        ("127.0.0.1:0", 2),
        ("::1:9877", 2),
        ("'[127.0.0.1]:80'", 2),
        ("host name:80", 2),
    ],
)
def test_http_listen_must_be_host_and_port(tmp_path: Path, listen: str, line: int) -> None:
    root = broken(tmp_path, "districtmon.yaml", "127.0.0.1:9877", listen)
    [problem] = errors(root)
    assert problem.startswith(
        f"districtmon.yaml:{line}: http.listen: must be host:port (IPv6 as [::1]:9877"
    )


def test_intervals_and_timeouts_must_be_positive(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "interval_seconds: 60", "interval_seconds: 0")
    edit(root / "districtmon.yaml", "timeout_seconds: 2", "timeout_seconds: -1.5")
    edit(root / "districtmon.yaml", "max_in_flight: 256", "max_in_flight: 0")
    assert errors(root) == [
        "districtmon.yaml:6: poll.interval_seconds: must be a number > 0, got 0",
        "districtmon.yaml:7: poll.timeout_seconds: must be a number > 0, got -1.5",
        "districtmon.yaml:9: poll.max_in_flight: must be an integer >= 1, got 0",
    ]


def test_state_thresholds_are_at_least_one_and_retries_not_negative(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "down_after: 3", "down_after: 0")
    edit(root / "districtmon.yaml", "up_after: 2", "up_after: 1.5")
    edit(root / "districtmon.yaml", "retries: 1", "retries: -1")
    assert errors(root) == [
        "districtmon.yaml:8: poll.retries: must be an integer >= 0, got -1",
        "districtmon.yaml:11: state.down_after: must be an integer >= 1, got 0",
        "districtmon.yaml:12: state.up_after: must be an integer >= 1, got 1.5",
    ]


def test_site_probe_overrides_are_validated_like_poll_settings(tmp_path: Path) -> None:
    overrides = "port: 1161\n        interval_seconds: 0\n        retries: -2\n"
    root = broken(tmp_path, "inventory/sites.yaml", "port: 1161\n", overrides)
    assert errors(root) == [
        "inventory/sites.yaml:25: sites[1].probe.snmp.interval_seconds: "
        f"must be a number > 0, got 0{BTS}",
        "inventory/sites.yaml:26: sites[1].probe.snmp.retries: "
        f"must be an integer >= 0, got -2{BTS}",
    ]


def test_an_unknown_probe_type_is_named_with_the_supported_ones(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "snmp: {address: loa-01.thanh-nua.example, port: 1162, credential: district-ro}",
        "ping: {address: loa-01.thanh-nua.example}",
    )
    assert errors(root) == [
        "inventory/sites.yaml:36: sites[2].probe.ping: unknown probe type 'ping' "
        f"(supported: snmp, icmp, tcp, http, dns, mqtt){LOA}"
    ]


def test_a_probe_has_exactly_one_type(tmp_path: Path) -> None:
    root = broken(
        tmp_path,
        "inventory/sites.yaml",
        "      snmp: {address: loa-01",
        "      mqtt: {}\n      snmp: {address: loa-01",
    )
    assert errors(root) == [
        "inventory/sites.yaml:36: sites[2].probe: "
        f"must name exactly one probe type (snmp, icmp, tcp, http, dns, mqtt), got 2{LOA}",
    ]


def test_missing_inventory_directory(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    for path in (root / "inventory").iterdir():
        path.unlink()
    (root / "inventory").rmdir()
    assert errors(root) == ["inventory: inventory directory not found"]


def test_missing_settings_file(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    (root / "districtmon.yaml").unlink()
    assert errors(root) == ["districtmon.yaml: file not found"]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    root = broken(
        tmp_path, "inventory/owners.yaml", "    kind: operator\n", "    kind: [operator\n"
    )
    [problem] = errors(root)
    assert problem.startswith("inventory/owners.yaml:5: invalid YAML: ")


def test_a_syntax_error_does_not_cascade_into_unknown_references(tmp_path: Path) -> None:
    """Sites refer to communes of a file that cannot be read: only the syntax error is shown."""
    root = broken(
        tmp_path, "inventory/communes.yaml", "  - id: muong-phang", "  - id: [muong-phang"
    )
    [problem] = errors(root)
    assert problem.startswith("inventory/communes.yaml:")


def test_an_unsupported_yaml_tag_gives_one_message(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/sites.yaml", "port: 1161", "port: !port 1161")
    assert errors(root) == [
        "inventory/sites.yaml:24: sites[1].probe.snmp.port: unsupported YAML tag '!port'"
    ]


def test_an_alias_inside_its_own_anchor_is_reported(tmp_path: Path) -> None:
    root = broken(tmp_path, "inventory/communes.yaml", "areas: [", "areas: &a [*a, ")
    assert errors(root) == [
        "inventory/communes.yaml:6: communes[0].areas[0]: "
        "an alias refers to the collection that contains it"
    ]


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    legacy = "Đài".encode("cp1258")  # a file saved in the old Windows Vietnamese code page
    (root / "inventory/owners.yaml").write_bytes(OWNERS.encode().replace("Đài".encode(), legacy))
    [problem] = errors(root)
    assert problem.startswith("inventory/owners.yaml:6: not valid UTF-8")


def test_several_errors_in_several_files_are_all_reported_at_once(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "up_after: 2", "up_after: 0")
    edit(root / "credentials.yaml", "version: 2c", "version: 4")
    edit(root / "inventory/communes.yaml", "lon: 103.003", "lon: east")
    edit(root / "inventory/owners.yaml", "kind: broadcaster", "kind: radio")
    edit(root / "inventory/sites.yaml", "port: 1161", "port: 70000")
    edit(root / "inventory/sites.yaml", "owner: dien-bien-rtv", "owner: vtv")
    found = errors(root)
    assert [line.split(": ")[0] for line in found] == [
        "credentials.yaml:3",
        "districtmon.yaml:12",
        "inventory/communes.yaml:5",
        "inventory/owners.yaml:7",
        "inventory/sites.yaml:24",
        "inventory/sites.yaml:30",
    ]


def test_messages_name_files_as_the_directory_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken(tmp_path / "cfg", "inventory/sites.yaml", "port: 1161", "port: 70000")
    edit(tmp_path / "cfg/credentials.yaml", "version: 2c", "version: 4")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(Path("cfg"), {})
    assert [str(problem).split(": ")[0] for problem in caught.value.problems] == [
        "cfg/credentials.yaml:3",
        "cfg/inventory/sites.yaml:24",
    ]


def test_config_error_prints_one_problem_per_line(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "up_after: 2", "up_after: 0")
    edit(root / "districtmon.yaml", "down_after: 3", "down_after: 0")
    with pytest.raises(ConfigError) as caught:
        load(root)
    assert str(caught.value).splitlines() == [str(p) for p in caught.value.problems]
    assert str(caught.value).startswith(f"{root}/districtmon.yaml:11: state.down_after: ")


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        f"snmp:\n  district-ro:\n    version: 4\n    community: {COMMUNITY}\n    extra: 1\n",
        f"snmp:\n  district-ro:\n    version: 2c\n    community: '{COMMUNITY}\n",
        f"snmp:\n  district-ro:\n    version: 2c\n    community: *{COMMUNITY}\n",
        f"snmp:\n  district-ro:\n    version: 2c\n    community: !vault {COMMUNITY}\n",
        f"snmp:\n  district-ro: {COMMUNITY}\n",
        f"snmp:\n  district-ro:\n    version: 2c\n    community: [{COMMUNITY}]\n",
        f"snmp:\n  district-ro:\n    version: 2c\n    community: {COMMUNITY}\n  Bad Name: {{}}\n",
        f"{COMMUNITY}\n",
        f"snmp:\n  district-ro:\n    version: 2c\n  community: {COMMUNITY}\n",
        f"snmp:\n  district-ro:\n    version: 2c\n    community: {COMMUNITY}\n    community: x\n",
    ],
)
def test_secrets_never_appear_in_error_messages(tmp_path: Path, credentials: str) -> None:
    root = write_config(tmp_path, {"credentials.yaml": credentials})
    found = errors(root)
    assert found
    assert all(COMMUNITY not in line for line in found), found
    assert all("9x" not in line for line in found), found


def test_secret_in_a_non_utf8_credentials_file_is_not_shown(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    (root / "credentials.yaml").write_bytes(CREDENTIALS.encode().replace(b"very", b"v\xffry"))
    [problem] = errors(root)
    assert problem == "credentials.yaml:4: not valid UTF-8; save the file as UTF-8"


def test_secrets_never_appear_in_the_summary_or_repr(tmp_path: Path) -> None:
    config = load(write_config(tmp_path), {env_var("district-ro"): "env-" + COMMUNITY})
    for text in (
        summarize(config),
        repr(config),
        str(config.credentials),
        f"{config.credentials['district-ro'].community}",
    ):
        assert COMMUNITY not in text


def test_secret_reveals_only_on_request() -> None:
    secret = Secret("hunter2")
    assert (repr(secret), str(secret), f"{secret}", f"{secret:>5}") == (
        "***",
        "***",
        "***",
        "***",
    )
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2")
    assert secret != Secret("hunter3")


def test_environment_overrides_the_file_community(tmp_path: Path) -> None:
    environ = {"DISTRICTMON_SNMP_DISTRICT_RO_COMMUNITY": "from-env"}
    config = load(write_config(tmp_path), environ)
    assert community(config, "district-ro") == "from-env"


def test_a_credential_may_take_its_community_from_the_environment_only(tmp_path: Path) -> None:
    root = broken(tmp_path, "credentials.yaml", f"    community: {COMMUNITY}\n", "")
    config = load(root, {"DISTRICTMON_SNMP_DISTRICT_RO_COMMUNITY": "from-env"})
    assert community(config, "district-ro") == "from-env"


def test_an_empty_environment_variable_does_not_override(tmp_path: Path) -> None:
    config = load(write_config(tmp_path), {"DISTRICTMON_SNMP_DISTRICT_RO_COMMUNITY": ""})
    assert community(config, "district-ro") == COMMUNITY


def test_env_var_name_follows_the_readme() -> None:
    assert env_var("district-ro") == "DISTRICTMON_SNMP_DISTRICT_RO_COMMUNITY"


# --- finding the directory, the summary, the command -------------------------------------------


def test_find_config_dir_prefers_the_explicit_argument(tmp_path: Path) -> None:
    write_config(tmp_path / "config")
    (tmp_path / "other").mkdir()
    assert find_config_dir("other", tmp_path) == tmp_path / "other"
    assert find_config_dir(None, tmp_path) == tmp_path / "config"


def test_find_config_dir_falls_back_to_the_system_directory(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    assert find_config_dir(None, tmp_path, system_dir=tmp_path / "etc") == tmp_path / "etc"
    with pytest.raises(ConfigError, match="no configuration"):
        find_config_dir(None, tmp_path, system_dir=tmp_path / "absent")
    with pytest.raises(ConfigError, match="not a directory"):
        find_config_dir("absent", tmp_path)


def test_summary_gives_totals_and_tables(tmp_path: Path) -> None:
    text = summarize(load(write_config(tmp_path)))
    lines = text.splitlines()
    for line in ("sites: 3", "communes: 2", "bts: 1", "gateway: 1", "loudspeaker: 1", "portal: 0"):
        assert line in lines
    assert "areas covered by loudspeakers: 1 (50%)" in lines
    assert any("Thanh Nưa" in line and line.rstrip().endswith("3") for line in lines)
    assert any("Đài Truyền thanh - Truyền hình huyện Điện Biên" in line for line in lines)


def test_check_config_prints_the_summary_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISTRICTMON_SNMP_DISTRICT_RO_COMMUNITY", raising=False)
    assert main(["check-config", "-c", str(write_config(tmp_path))]) == 0
    assert "sites: 3" in capsys.readouterr().out.splitlines()


def test_check_config_lists_the_problems_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISTRICTMON_SNMP_DISTRICT_RO_COMMUNITY", raising=False)
    root = broken(tmp_path, "inventory/sites.yaml", "port: 1161", "port: 70000")
    assert main(["check-config", "-c", str(root)]) != 0
    captured = capsys.readouterr()
    assert "sites.yaml:24: sites[1].probe.snmp.port: must be an integer 1..65535" in captured.err
    assert COMMUNITY not in captured.out + captured.err


# --- the shipped example district --------------------------------------------------------------


def test_the_shipped_district_loads_with_230_bts_in_25_communes() -> None:
    config = load_config(SHIPPED, {})
    kinds = Counter(site.kind for site in config.sites.values())
    assert kinds["bts"] == 230
    assert len(config.communes) == 25
    assert {site.commune for site in config.sites.values() if site.kind == "bts"} == set(
        config.communes
    )
    lines = summarize(config).splitlines()
    assert "bts: 230" in lines
    assert "communes: 25" in lines
    assert f"sites: {len(config.sites)}" in lines


def test_the_shipped_district_polls_loopback_only() -> None:
    config = load_config(SHIPPED, {})
    assert all(
        probe_host(site.probe).startswith("127.")
        for site in config.sites.values()
        if not isinstance(site.probe, MqttProbe)
    )
    assert config.mqtt.host.startswith("127.")


def probe_host(probe: Probe) -> str:
    """The address a probe sends to."""
    if isinstance(probe, HttpProbe):
        return urlsplit(probe.url).hostname or ""
    if isinstance(probe, DnsProbe):
        return probe.server
    assert not isinstance(probe, MqttProbe), "an MQTT site is listened to, not sent to"
    return probe.address


def test_the_shipped_loudspeakers_report_over_mqtt_and_stations_are_polled() -> None:
    config = load_config(SHIPPED, {})
    speakers = [site for site in config.sites.values() if site.kind == "loudspeaker"]
    assert len(speakers) == 71
    assert all(isinstance(site.probe, MqttProbe) for site in speakers)
    assert all(
        isinstance(site.probe, SnmpProbe)
        for site in config.sites.values()
        if site.kind in ("bts", "radio_station", "gateway")
    )
    assert set(config.mqtt.profiles) >= {"loudspeaker", "radio_station"}
    assert config.mqtt.base_topic(speakers[0]) == f"dienbien/thanh-nua/loudspeaker/{speakers[0].id}"
