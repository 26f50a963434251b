"""Device profiles and the SNMP settings as configuration: the shipped ones load, sites name
them, and every mistake is refused with file, line and key; SNMPv3 credentials likewise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_config import BTS, COMMUNITY, broken, edit, errors, load, snmp_probe, write_config

from monitor.cli.summary import summarize
from monitor.config.credentials import env_var
from monitor.config.load import load_config
from monitor.config.settings import TrapSettings

SHIPPED = Path(__file__).parents[1] / "config"

GOOD = """\
description: a test profile
values:
  - name: battery_volts
    oid: 1.3.6.1.2.1.33.1.2.5.0
    scale: 0.1
  - name: mains_ok
    oid: 1.3.6.1.2.1.33.1.4.1.0
    map: {5: 0, default: 1}
tables:
  - name: interfaces
    labels:
      if: [1.3.6.1.2.1.31.1.1.1.1, 1.3.6.1.2.1.2.2.1.2]
    columns:
      - name: if_oper_up
        oid: 1.3.6.1.2.1.2.2.1.8
        map: {1: 1, default: 0}
      - name: if_in_octets_total
        oid: 1.3.6.1.2.1.31.1.1.1.6
        type: counter64
health:
  - reason: "battery at {battery_volts} V"
    when: {battery_volts: {below: 47}}
  - reason: "WAN {if} down"
    when: {if_oper_up: {equals: 0}}
    where: {if: "wan.*"}
traps:
  - oid: 1.3.6.1.2.1.33.2.1
    degraded: on battery
"""


def with_profile(tmp_path: Path, text: str = GOOD, name: str = "test-power") -> Path:
    root = write_config(tmp_path, {f"profiles/{name}.yaml": text})
    edit(
        root / "inventory/sites.yaml",
        "        port: 1161\n        credential: district-ro\n",
        f"        port: 1161\n        credential: district-ro\n        profile: {name}\n",
    )
    return root


def profile_errors(tmp_path: Path, old: str, new: str) -> list[str]:
    assert GOOD.count(old) == 1, old
    return errors(with_profile(tmp_path, GOOD.replace(old, new)))


def test_the_shipped_profiles_and_district_load_and_sites_name_them() -> None:
    config = load_config(SHIPPED, {})
    assert set(config.profiles) >= {"bts-power", "router", "radio-transmitter", "linux-host"}
    by_kind = {
        kind: {
            snmp_probe(config, site.id).profile
            for site in config.sites.values()
            if site.kind == kind
        }
        for kind in ("bts", "gateway", "radio_station")
    }
    assert by_kind == {
        "bts": {"bts-power"},
        "gateway": {"router"},
        "radio_station": {"radio-transmitter"},
    }
    assert config.snmp.engine == "gufo"
    assert config.snmp.traps == TrapSettings("127.0.0.1", 1162, ("district-trap",))


def test_a_site_names_a_profile_and_the_config_carries_it(tmp_path: Path) -> None:
    config = load(with_profile(tmp_path))
    assert snmp_probe(config, "bts-vtl-thanh-nua-01").profile == "test-power"
    profile = config.profiles["test-power"]
    assert [spec.name for spec in profile.scalars] == ["battery_volts", "mains_ok"]
    assert profile.get_oids[2:] == ("1.3.6.1.2.1.33.1.2.5.0", "1.3.6.1.2.1.33.1.4.1.0")
    assert profile.tables[0].walked == (
        "1.3.6.1.2.1.2.2.1.8",
        "1.3.6.1.2.1.31.1.1.1.6",
        "1.3.6.1.2.1.31.1.1.1.1",
        "1.3.6.1.2.1.2.2.1.2",
    )
    assert profile.traps["1.3.6.1.2.1.33.2.1"].action == "degraded"
    # neither rule nor trap names a code: each gets the one derived from its reason
    assert [rule.code for rule in profile.health] == ["battery_at_v", "wan_down"]
    assert profile.traps["1.3.6.1.2.1.33.2.1"].code == "on_battery"


def test_a_rule_or_trap_names_its_code(tmp_path: Path) -> None:
    text = GOOD.replace(
        '  - reason: "battery at {battery_volts} V"\n',
        '  - reason: "battery at {battery_volts} V"\n    code: battery_low\n',
    ).replace("    degraded: on battery\n", "    degraded: on battery\n    code: on_battery_trap\n")
    profile = load(with_profile(tmp_path, text)).profiles["test-power"]
    assert profile.health[0].code == "battery_low"
    assert profile.traps["1.3.6.1.2.1.33.2.1"].code == "on_battery_trap"


def test_every_shipped_rule_and_state_trap_names_its_code() -> None:
    """Codes are what alert rules match: the shipped ones are written out, never derived
    (rewording a reason must not rename the series a page depends on)."""
    config = load_config(SHIPPED, {})
    for name in config.profiles:
        doc = yaml.safe_load((SHIPPED / "profiles" / f"{name}.yaml").read_text())
        for rule in doc.get("health", []):
            assert "code" in rule, (name, rule["reason"])
        for trap in doc.get("traps", []):
            assert ("code" in trap) != ("poll" in trap), (name, trap["oid"])
    mappings = yaml.safe_load((SHIPPED / "mqtt" / "mappings.yaml").read_text())
    for name, profile in mappings["profiles"].items():
        for rule in profile.get("health", []):
            assert "code" in rule, (name, rule["reason"])
    codes = {rule.code for p in config.profiles.values() for rule in p.health}
    assert codes >= {"on_battery", "battery_low", "cabinet_hot", "door_open", "smoke_alarm"}
    assert codes >= {"wan_down", "transmitter_off_air"}


def test_an_unknown_profile_is_refused_where_the_site_names_it(tmp_path: Path) -> None:
    root = with_profile(tmp_path)
    edit(root / "inventory/sites.yaml", "profile: test-power", "profile: bts-powr")
    assert errors(root) == [
        "inventory/sites.yaml:26: sites[1].probe.snmp.profile: unknown profile 'bts-powr' "
        f"(no bts-powr.yaml among the profiles); did you mean 'test-power'?{BTS}"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    scale: 0.1\n",
            "    scale: 0.1\n    type: float\n",
            "profiles/test-power.yaml:6: values[0].type: must be one of gauge, counter32, "
            "counter64, timeticks, text; got 'float'",
        ),
        (
            "oid: 1.3.6.1.2.1.33.1.2.5.0",
            "oid: upsBatteryVoltage",
            "profiles/test-power.yaml:4: values[0].oid: must be a numeric OID like "
            "1.3.6.1.2.1.33.1.2.5.0, got 'upsBatteryVoltage'",
        ),
        (
            "  - name: if_in_octets_total",
            "  - name: if_in_octets",
            "profiles/test-power.yaml:17: tables[0].columns[1].name: a counter64 is a counter: "
            "its name must end in _total",
        ),
        (
            "  - name: mains_ok",
            "  - name: battery_volts",
            "profiles/test-power.yaml:6: values[1].name: value 'battery_volts' is defined twice "
            "(first at line 3)",
        ),
        (
            "    when: {battery_volts: {below: 47}}",
            "    when: {battery_voltz: {below: 47}}",
            "profiles/test-power.yaml:22: health[0].when.battery_voltz: unknown value (not in "
            "this profile's values or columns)",
        ),
        (
            "    when: {battery_volts: {below: 47}}",
            "    when: {battery_volts: {below: low}}",
            "profiles/test-power.yaml:22: health[0].when.battery_volts.below: must be a number, "
            "got 'low'",
        ),
        (
            '    where: {if: "wan.*"}',
            '    where: {if: "wan.*("}',
            "profiles/test-power.yaml:25: health[1].where.if: not a valid regular expression: "
            "missing ), unterminated subpattern at position 5",
        ),
        (
            '  - reason: "battery at {battery_volts} V"',
            '  - reason: "battery at {battery_volts.__class__} V"',
            "profiles/test-power.yaml:21: health[0].reason: placeholder "
            "{battery_volts.__class__} must be a value or label of this rule (battery_volts, "
            "mains_ok, reboots_total, snmp_values_malformed, snmp_values_missing, sys_name, "
            "uptime_seconds), without format or conversion",
        ),
        (
            "    degraded: on battery",
            "    degraded: on battery\n    poll: true",
            "profiles/test-power.yaml:27: traps[0]: needs exactly one of: degraded, down, poll",
        ),
        (
            '  - reason: "battery at {battery_volts} V"\n',
            '  - reason: "battery at {battery_volts} V"\n    code: maintenance\n',
            "profiles/test-power.yaml:22: health[0].code: 'maintenance' is a fixed reason code "
            "of districtmon (see monitor/core/reasons.py); name what this rule finds",
        ),
        (
            "    degraded: on battery",
            "    degraded: on battery\n    code: On Battery",
            "profiles/test-power.yaml:29: traps[0].code: a reason code is [a-z][a-z0-9_]*, at "
            "most 48 characters, got 'On Battery'",
        ),
        (
            "    degraded: on battery",
            "    poll: true\n    code: on_battery",
            "profiles/test-power.yaml:29: traps[0].code: a poll trap has no reason of its own: "
            "the poll decides",
        ),
        (
            "  - name: battery_volts\n",
            "  - name: uptime_seconds\n",
            "profiles/test-power.yaml:3: values[0].name: 'uptime_seconds' is a value every "
            "SNMP site has already",
        ),
    ],
)
def test_profile_mistakes_are_refused_with_file_line_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    found = profile_errors(tmp_path, old, new)
    assert expected in found, found


def test_one_name_means_one_kind_of_series_across_profiles(tmp_path: Path) -> None:
    other = "values:\n  - name: if_oper_up\n    oid: 1.3.6.1.2.1.2.1.0\n"
    root = with_profile(tmp_path)
    (root / "profiles/zz-other.yaml").write_text(other)
    assert errors(root) == [
        "profiles/zz-other.yaml:2: values[0].name: 'if_oper_up' is a gauge with labels (if) in "
        "test-power.yaml:14; one name must mean one kind of series"
    ]


def test_a_broken_profile_refuses_the_whole_config_without_follow_on_errors(
    tmp_path: Path,
) -> None:
    root = with_profile(tmp_path, "values: [\n")
    [problem] = errors(root)
    assert problem.startswith("profiles/test-power.yaml:")
    assert "invalid YAML" in problem


def test_snmp_settings_choose_engine_profiles_dir_and_trap_receiver(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    with (root / "districtmon.yaml").open("a") as settings:
        settings.write(
            "snmp:\n  engine: pysnmp\n  profiles: devices\n"
            "  traps:\n    listen: 127.0.0.1:11162\n    credentials: [district-ro]\n"
        )
    (root / "devices").mkdir()
    (root / "devices/gw.yaml").write_text(GOOD)
    config = load(root)
    assert config.snmp.engine == "pysnmp"
    assert set(config.profiles) == {"gw"}
    assert config.snmp.traps == TrapSettings("127.0.0.1", 11162, ("district-ro",))


def test_snmp_settings_mistakes_are_placed(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    with (root / "districtmon.yaml").open("a") as settings:
        settings.write(
            "snmp:\n  engine: netsnmp\n"
            "  traps:\n    listen: 127.0.0.1\n    credentials: [district-rw]\n"
        )
    assert errors(root) == [
        "districtmon.yaml:14: snmp.engine: must be one of gufo, pysnmp; got 'netsnmp'; "
        "did you mean 'pysnmp'?",
        "districtmon.yaml:16: snmp.traps.listen: must be host:port (port 1..65535), "
        "got '127.0.0.1'",
        "districtmon.yaml:17: snmp.traps.credentials[0]: unknown credential 'district-rw' "
        "(not in credentials.yaml); did you mean 'district-ro'?",
    ]


# --- SNMPv3 credentials --------------------------------------------------------------------

V3 = """\
snmp:
  district-ro:
    version: 2c
    community: {community}
  bts-v3:
    version: 3
    user: districtmon
    auth_protocol: SHA-256
    auth_key: auth-Zq7-very-secret
    priv_protocol: AES-256
    priv_key: priv-Zq7-very-secret
    engine_id: 0x80001f8880aabbccdd
"""


def v3_root(tmp_path: Path, old: str = "", new: str = "") -> Path:
    text = V3.format(community=COMMUNITY)
    if old:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return write_config(tmp_path, {"credentials.yaml": text})


def test_a_v3_credential_loads_with_its_protocols_and_secret_keys(tmp_path: Path) -> None:
    credential = load(v3_root(tmp_path)).credentials["bts-v3"]
    assert (credential.version, credential.user, credential.security_level) == (
        "3",
        "districtmon",
        "authPriv",
    )
    assert (credential.auth_protocol, credential.priv_protocol) == ("SHA-256", "AES-256")
    assert credential.auth_key is not None and credential.priv_key is not None
    assert credential.auth_key.reveal() == "auth-Zq7-very-secret"
    assert credential.engine_id == bytes.fromhex("80001f8880aabbccdd")
    assert "Zq7" not in repr(credential)


def test_v3_keys_come_from_the_environment_first(tmp_path: Path) -> None:
    root = v3_root(tmp_path, "    priv_key: priv-Zq7-very-secret\n", "")
    environ = {
        env_var("bts-v3", "auth_key"): "auth-from-environment",
        env_var("bts-v3", "priv_key"): "priv-from-environment",
    }
    credential = load(root, environ).credentials["bts-v3"]
    assert credential.auth_key is not None and credential.priv_key is not None
    assert credential.auth_key.reveal() == "auth-from-environment"
    assert credential.priv_key.reveal() == "priv-from-environment"
    assert env_var("bts-v3", "priv_key") == "DISTRICTMON_SNMP_BTS_V3_PRIV_KEY"


def test_authnopriv_is_a_v3_credential_without_privacy(tmp_path: Path) -> None:
    root = v3_root(tmp_path, "    priv_protocol: AES-256\n    priv_key: priv-Zq7-very-secret\n", "")
    assert load(root).credentials["bts-v3"].security_level == "authNoPriv"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    priv_key: priv-Zq7-very-secret\n",
            "",
            "credentials.yaml:5: snmp.bts-v3.priv_key: no priv_key: set it here or in the "
            "environment variable DISTRICTMON_SNMP_BTS_V3_PRIV_KEY",
        ),
        (
            "auth_key: auth-Zq7-very-secret",
            "auth_key: short",
            "credentials.yaml:9: snmp.bts-v3.auth_key: must be at least 8 characters "
            "(RFC 3414); it is shorter",
        ),
        (
            "auth_protocol: SHA-256",
            "auth_protocol: SHA3",
            "credentials.yaml:8: snmp.bts-v3.auth_protocol: must be one of MD5, SHA, SHA-224, "
            "SHA-256, SHA-384, SHA-512; got text; did you mean 'SHA'?",
        ),
        (
            "    auth_protocol: SHA-256\n    auth_key: auth-Zq7-very-secret\n",
            "",
            "credentials.yaml:8: snmp.bts-v3.priv_protocol: privacy needs authentication: "
            "set auth_protocol too",
        ),
        (
            "    user: districtmon\n",
            "",
            "credentials.yaml:5: snmp.bts-v3.user: is required for version 3",
        ),
        (
            "    user: districtmon\n",
            "    user: districtmon\n    community: public\n",
            "credentials.yaml:8: snmp.bts-v3.community: unknown key (expected one of: version, "
            "user, auth_protocol, auth_key, priv_protocol, priv_key, engine_id)",
        ),
        (
            "engine_id: 0x80001f8880aabbccdd",
            "engine_id: 0x80",
            "credentials.yaml:12: snmp.bts-v3.engine_id: must be 5 to 32 bytes in hex, e.g. "
            "0x80001f8880aabbccdd",
        ),
    ],
)
def test_v3_credential_mistakes_are_placed_and_never_show_a_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    found = errors(v3_root(tmp_path, old, new))
    assert expected in found, found
    assert all("Zq7" not in line and "short" not in line.split(": ", 1)[0] for line in found)


def test_v1_v2c_credentials_refuse_v3_keys(tmp_path: Path) -> None:
    root = broken(tmp_path, "credentials.yaml", "version: 2c\n", "version: 2c\n    user: x\n")
    assert errors(root)[0].startswith("credentials.yaml:4: snmp.district-ro.user: unknown key")


BASE = """\
values:
  - {name: battery_volts, oid: 1.3.6.1.2.1.33.1.2.5.0, scale: 0.1}
  - {name: mains_ok, oid: 1.3.6.1.2.1.33.1.4.1.0, map: {5: 0, default: 1}}
tables:
  - name: input
    index: line
    columns:
      - {name: input_volts, oid: 1.3.6.1.2.1.33.1.3.3.1.3}
health:
  - reason: on battery
    when: {mains_ok: {equals: 0}}
"""


def test_a_profile_extends_a_base_overriding_values_columns_and_dropping_some(
    tmp_path: Path,
) -> None:
    child = """\
extends: base-ups
vendor: Acme
detect: {sys_object_id: 1.3.6.1.4.1.99998, sys_descr: "^Acme"}
drop: [battery_volts]
values:
  - {name: mains_ok, oid: 1.3.6.1.4.1.99998.1.0, map: {1: 1, default: 0}}
  - name: load_watts
    oid: 1.3.6.1.4.1.99998.2.0
    absent: [-1]
    fallback: [{oid: 1.3.6.1.4.1.99998.3.0, scale: 1000}]
  - {name: load_kilowatts_check, ratio: [load_watts, mains_ok], export: false}
tables:
  - name: input
    columns:
      - {name: input_volts, oid: 1.3.6.1.2.1.33.1.3.3.1.3, scale: 0.1}
"""
    root = write_config(tmp_path, {"profiles/base-ups.yaml": BASE, "profiles/acme-ups.yaml": child})
    profile = load(root).profiles["acme-ups"]
    assert profile.extends == "base-ups" and profile.vendor == "Acme"
    assert [s.name for s in profile.scalars] == ["mains_ok", "load_watts", "load_kilowatts_check"]
    assert profile.scalars[0].oid == "1.3.6.1.4.1.99998.1.0"  # overridden in place
    assert profile.scalars[1].absent == frozenset({-1})
    assert profile.scalars[1].fallbacks[0].scale.value == 1000
    assert profile.hidden == {"load_kilowatts_check"}
    (volts,) = profile.tables[0].columns
    assert volts.scale.value == 0.1 and profile.tables[0].index == "line"
    assert [rule.reason for rule in profile.health] == ["on battery"]  # inherited
    assert profile.detect is not None and profile.detect.sys_object_ids == ("1.3.6.1.4.1.99998",)


def test_an_extending_profile_keeps_the_codes_of_the_base_rules(tmp_path: Path) -> None:
    """Inherited rules keep their codes (given or derived); a rule of the child with the
    reason of a base rule takes its place, one with its code only is added beside it (rules
    that mean the same may share a code), and a rule on a dropped value goes with it."""
    base = BASE.replace(
        "health:\n",
        "health:\n  - reason: input low\n    code: input_low\n"
        "    when: {input_volts: {below: 200}}\n",
    )
    child = """\
extends: base-ups
health:
  - reason: "input line {line} at {input_volts} V"
    code: input_low
    when: {input_volts: {below: 190}}
  - reason: on battery
    code: mains_lost
    when: {mains_ok: {equals: 0}}
"""
    dropping = "extends: base-ups\ndrop: [mains_ok]\n"
    root = write_config(
        tmp_path,
        {
            "profiles/base-ups.yaml": base,
            "profiles/acme-ups.yaml": child,
            "profiles/bare-ups.yaml": dropping,
        },
    )
    profiles = load(root).profiles
    assert [(r.code, r.reason) for r in profiles["base-ups"].health] == [
        ("input_low", "input low"),
        ("on_battery", "on battery"),
    ]
    assert [(r.code, r.reason) for r in profiles["acme-ups"].health] == [
        ("input_low", "input low"),
        ("input_low", "input line {line} at {input_volts} V"),
        ("mains_lost", "on battery"),
    ]
    assert [r.code for r in profiles["bare-ups"].health] == ["input_low"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"a.yaml": "extends: nothing-here\n"},
            "profiles/a.yaml:1: extends: no profile 'nothing-here' to extend",
        ),
        (
            {"a.yaml": "extends: b\n", "b.yaml": "extends: a\n"},
            "profiles/b.yaml:1: extends: profiles extend each other in a circle: a -> b -> a",
        ),
        (
            {"a.yaml": "values:\n  - {name: x_bytes, sum: [y_bytes, z_bytes]}\n"},
            "profiles/a.yaml:2: values[0].sum[0]: 'y_bytes' is not among the values of this "
            "profile above",
        ),
        (
            {"a.yaml": "values:\n  - {name: x, oid: 1.3.6.1.2.1.1.7.0, absent: [1.5]}\n"},
            "profiles/a.yaml:2: values[0].absent: must be raw values (integers or text), got 1.5",
        ),
        (
            {"a.yaml": "values:\n  - {name: x, oid: 1.3.6.1.2.1.1.7.0, fallback: [{scale: 2}]}\n"},
            "profiles/a.yaml:2: values[0].fallback[0].oid: is required",
        ),
        (
            {"a.yaml": "values:\n  - {name: x, oid: 1.3.6.1.2.1.1.7.0}\ndrop: [x]\n"},
            "profiles/a.yaml:3: drop: only a profile that extends another can drop its values",
        ),
        (
            {"a.yaml": "detect: {catch_all: true}\n"},
            "profiles/a.yaml:1: detect: needs at least one of: sys_object_id, sys_descr, has",
        ),
        (
            {"a.yaml": "values:\n  - {name: x, oid: 1.3.6.1.2.1.1.7.0, only_if: {y: 1}}\n"},
            "profiles/a.yaml:2: values[0].only_if: only a table column can be kept on some rows",
        ),
        (
            {
                "a.yaml": "tables:\n  - name: t\n    columns:\n"
                "      - {name: v, oid: 1.3.6.1.2.1.99.1.1.1.4}\n"
                "      - {name: s, sensor: [v, v]}\n"
            },
            "profiles/a.yaml:5: tables[0].columns[1].sensor: sensor takes exactly 3 values",
        ),
        (
            {"a.yaml": "values:\n  - {name: x, sum: [a, b], oid: 1.3.6.1.2.1.1.7.0}\n"},
            "profiles/a.yaml:2: values[0].oid: a derived value (sum) has no oid",
        ),
        (
            {"a.yaml": "values:\n  - {name: x, oid: 1.3.6.1.2.1.1.7.0, export: no-thanks}\n"},
            "profiles/a.yaml:2: values[0].export: must be true or false, got 'no-thanks'",
        ),
        (
            {"a.yaml": "detect: {sys_descr: '(unclosed'}\n"},
            "profiles/a.yaml:1: detect.sys_descr: not a valid regular expression",
        ),
        (
            {"a.yaml": "detect: {has: [1.3.6.1.2.1.1.1.0, not-an-oid]}\n"},
            "profiles/a.yaml:1: detect.has: must be a numeric OID or a list of them, "
            "got 'not-an-oid'",
        ),
        (
            {"a.yaml": "extends: b\ndrop: [nothing]\n", "b.yaml": "values: []\n"},
            "profiles/a.yaml:2: drop[0]: 'nothing' is not a value of b",
        ),
        (
            {
                "a.yaml": "extends: b\ntables:\n  - name: t\n"
                "    labels: {x: 1.3.6.1.2.1.2.2.1.2}\n",
                "b.yaml": "tables:\n  - name: t\n    columns:\n"
                "      - {name: v, oid: 1.3.6.1.2.1.2.2.1.8}\n",
            },
            "profiles/a.yaml:4: tables[0].labels: labels differ from the base table's (index): "
            "override its columns too (v)",
        ),
        (
            {
                "a.yaml": "values:\n  - {name: x_total, sum: [a, b]}\n"
                "  - {name: a, oid: 1.3.6.1.2.1.1.7.0}\n"
            },
            "profiles/a.yaml:2: values[0].sum[0]: 'a' is not among the values of this profile "
            "above",
        ),
        (
            {"auto.yaml": "values: []\n"},
            "profiles/auto.yaml: a profile file name must be a slug other than auto",
        ),
    ],
)
def test_language_mistakes_are_refused_with_file_line_and_key(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    root = write_config(tmp_path, {f"profiles/{name}": text for name, text in files.items()})
    found = errors(root)
    assert any(problem.startswith(expected) for problem in found), found


def test_auto_and_a_default_profile_per_kind_are_read_and_shown_by_check_config(
    tmp_path: Path,
) -> None:
    root = with_profile(tmp_path, GOOD.replace("description: a test profile\n", DETECTING))
    with (root / "districtmon.yaml").open("a") as settings:
        settings.write("snmp:\n  default_profiles: {gateway: auto}\n")
    config = load(root)
    assert config.snmp.default_profiles == {"gateway": "auto"}
    assert snmp_probe(config, "gw-thanh-nua").profile == "auto"  # named none: its kind's
    assert snmp_probe(config, "bts-vtl-thanh-nua-01").profile == "test-power"  # its own
    assert snmp_probe(config, "loa-thanh-nua-01").profile is None  # no default for its kind
    summary = summarize(config)
    assert "snmp profiles: test-power (1 sites), auto (1 sites: detected at the first poll)" in (
        summary
    )
    assert "  default by kind: gateway auto" in summary
    assert (
        "  auto picks test-power: sysObjectID under 1.3.6.1.4.1.99998; "
        "sysDescr matching '^Acme UPS'" in summary
    )


DETECTING = """\
description: a test profile
detect: {sys_object_id: 1.3.6.1.4.1.99998, sys_descr: "^Acme UPS"}
"""


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        (
            "{gateway: no-such}",
            "districtmon.yaml:14: snmp.default_profiles.gateway: unknown profile 'no-such'",
        ),
        (
            "{gatway: auto}",
            "districtmon.yaml:14: snmp.default_profiles.gatway: not a kind of site",
        ),
    ],
)
def test_default_profile_mistakes_are_placed(tmp_path: Path, defaults: str, expected: str) -> None:
    root = with_profile(tmp_path)
    with (root / "districtmon.yaml").open("a") as settings:
        settings.write(f"snmp:\n  default_profiles: {defaults}\n")
    found = errors(root)
    assert any(problem.startswith(expected) for problem in found), found
