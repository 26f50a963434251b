"""Planned maintenance: the file's schema with file:line errors, occurrences in local time, the
command line, and the pipeline holding sites exactly from a window's start to its end."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.cli.main import main
from monitor.config.load import load_config
from monitor.config.maintenance import window_from_spec
from monitor.config.problems import ConfigError
from monitor.core.model import Site, SnmpProbe
from monitor.ledger.windows import read_ledger_windows
from monitor.state.windows import Schedule

ROOT = Path(__file__).parents[1]
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target)
    (target / "maintenance.yaml").unlink(missing_ok=True)
    settings = target / "districtmon.yaml"
    # no default timezone: windows must name their own (one test adds it back)
    lines = settings.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith("timezone:")]
    kept.append(f"ledger: {{path: {tmp_path / 'l.sqlite'}}}")
    settings.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return target


def write(config_dir: Path, text: str) -> Path:
    path = config_dir / "maintenance.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir)
    return [str(p) for p in caught.value.problems]


def test_the_shipped_example_and_a_valid_file_load(config_dir: Path) -> None:
    shutil.copy(ROOT / "config" / "maintenance.yaml", config_dir / "maintenance.yaml")
    shipped = load_config(config_dir).maintenance
    assert shipped and all(w.source == "config" for w in shipped)
    write(
        config_dir,
        """
timezone: Asia/Ho_Chi_Minh
windows:
  - id: viettel-weekly
    owners: [viettel]
    reason: Bảo dưỡng định kỳ
    weekly: {days: [tue], start: "02:00", end: "04:00"}
  - id: fibre-works
    communes: thanh-nua
    start: 2025-03-04 01:00
    end: 2025-03-04T03:30:00+07:00
""",
    )
    weekly, works = load_config(config_dir).maintenance
    assert (weekly.selector, weekly.targets, weekly.days, weekly.reason) == (
        "owner",
        ("viettel",),
        (1,),
        "Bảo dưỡng định kỳ",
    )
    assert works.start == dt.datetime(2025, 3, 4, 1, 0, tzinfo=HCM).timestamp()
    assert works.end == dt.datetime(2025, 3, 3, 20, 30, tzinfo=dt.UTC).timestamp()


def test_a_broken_file_is_refused_whole_with_every_problem_placed(config_dir: Path) -> None:
    write(
        config_dir,
        """windows:
  - id: a
    sites: [no-such-site]
    start: 2025-03-04T01:00+07:00
    end: 2025-03-04T03:00+07:00
  - id: b
    owners: [viettel]
    weekly: {days: [tue], start: 2:00, end: "04:00"}
    timezone: Asia/Ho_Chi_Minh
  - id: c
    kinds: [bts]
    daily: {start: "02:00", end: "03:00"}
  - id: d
    communes: [thanh-nua]
    start: 2025-03-04T03:00+07:00
    end: 2025-03-04T01:00+07:00
  - id: a
    kinds: [tower]
    weekly: {days: [tue, funday], start: "01:00", end: "02:00"}
    timezone: Mars/Olympus
""",
    )
    found = problems(config_dir)
    text = "\n".join(found)
    assert "maintenance.yaml:2: windows[a].sites: unknown site 'no-such-site'" in text
    assert 'maintenance.yaml:8: windows[1].weekly.start: must be a time "HH:MM" (quote it' in text
    assert "maintenance.yaml:10: windows[2]: a recurring window needs a timezone" in text
    assert "maintenance.yaml:16: windows[3].end: must be after start (window 'd')" in text
    assert "maintenance.yaml:17: windows[4].id: duplicate window id 'a'" in text
    assert "maintenance.yaml:18: windows[4].kinds[0]: unknown kind 'tower'" in text
    assert "maintenance.yaml:19: windows[4].weekly.days[1]: unknown day 'funday'" in text
    assert "maintenance.yaml:20: windows[4].timezone: unknown time zone 'Mars/Olympus'" in text


def test_a_weekly_window_occurs_at_its_local_hours() -> None:
    window = window_from_spec(
        {
            "id": "w",
            "kinds": "bts",
            "weekly": {"days": ["tue"], "start": "02:00", "end": "04:00"},
            "timezone": "Asia/Ho_Chi_Minh",
        }
    )
    monday = dt.datetime(2024, 6, 3, tzinfo=dt.UTC).timestamp()
    [(start, end)] = window.occurrences(monday, monday + 7 * 86400)
    # Tuesday 02:00 in Hồ Chí Minh time is Monday 19:00 UTC
    assert start == dt.datetime(2024, 6, 3, 19, 0, tzinfo=dt.UTC).timestamp()
    assert end - start == 7200


def test_a_daily_window_may_cross_midnight_and_is_bounded_by_from_and_until() -> None:
    window = window_from_spec(
        {
            "id": "n",
            "kinds": ["loudspeaker"],
            "daily": {"start": "23:30", "end": "00:30"},
            "from": "2024-06-02",
            "until": "2024-06-03",
            "timezone": "Asia/Ho_Chi_Minh",
        }
    )
    t0 = dt.datetime(2024, 6, 1, tzinfo=HCM).timestamp()
    found = window.occurrences(t0, t0 + 5 * 86400)
    assert [dt.datetime.fromtimestamp(s, HCM).strftime("%d %H:%M") for s, _ in found] == [
        "02 23:30",
        "03 23:30",
    ]
    assert all(e - s == 3600 for s, e in found)


def test_recurring_windows_keep_their_wall_clock_hours_across_dst() -> None:
    window = window_from_spec(
        {
            "id": "ny",
            "kinds": "gateway",
            "daily": {"start": "04:00", "end": "05:00"},
            "timezone": "America/New_York",
        }
    )
    zone = ZoneInfo("America/New_York")
    t0 = dt.datetime(2024, 3, 9, tzinfo=zone).timestamp()  # DST begins on 10 March
    starts = [s for s, _ in window.occurrences(t0, t0 + 3 * 86400)]
    assert [dt.datetime.fromtimestamp(s, zone).hour for s in starts] == [4, 4, 4]
    assert [round(starts[1] - starts[0]), round(starts[2] - starts[1])] == [82800, 86400]


def site(site_id: str, commune: str = "c", owner: str = "o", kind: str = "bts") -> Site:
    return Site(site_id, kind, site_id, commune, owner, 0.0, 0.0, SnmpProbe("127.0.0.1"))


def test_a_schedule_holds_the_sites_a_window_targets_and_knows_its_boundaries() -> None:
    sites = [site("a", commune="x"), site("b", owner="vtl"), site("c", kind="gateway")]
    window = window_from_spec(
        {
            "id": "w",
            "owners": ["vtl"],
            "start": "1970-01-01T00:01:40Z",
            "end": "1970-01-01T00:03:20Z",
        }
    )
    schedule = Schedule([window], sites)
    assert schedule.held_by(window) == ["b"]
    assert schedule.covering("b", 100.0) is window and schedule.covering("b", 200.0) is None
    assert schedule.covering("a", 150.0) is None
    assert [t for t, _ in schedule.boundaries(0.0, 1000.0)] == [100.0, 200.0]
    assert schedule.next_boundary(100.0) == 200.0


def run_cli(*args: str) -> int:
    return main(list(args))


def test_the_command_line_adds_lists_and_removes_windows_in_the_ledger(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = load_config(config_dir).ledger_path
    c = str(config_dir)
    add_weekly = ["maintenance", "add", "weekly", "--owner", "viettel", "--weekly", "tue,thu"]
    add_weekly += ["02:00-04:00", "--tz", "Asia/Ho_Chi_Minh", "--reason", "bảo dưỡng", "-c", c]
    assert run_cli(*add_weekly) == 0
    assert "added weekly: tue,thu 02:00-04:00 Asia/Ho_Chi_Minh" in capsys.readouterr().out
    [stored] = read_ledger_windows(ledger)
    assert (stored.id, stored.source, stored.days, stored.reason) == (
        "weekly",
        "ledger",
        (1, 3),
        "bảo dưỡng",
    )
    # the same id twice, an unknown commune, a window without a timezone: refused
    assert run_cli("maintenance", "add", "weekly", "--kind", "bts", "--daily", "01:00-02:00",
                   "--tz", "UTC", "-c", c) == 2  # fmt: skip
    assert "already exists" in capsys.readouterr().err
    assert run_cli("maintenance", "add", "x", "--commune", "nowhere", "--start",
                   "2025-01-01T00:00Z", "--end", "2025-01-01T01:00Z", "-c", c) == 2  # fmt: skip
    assert "unknown commune 'nowhere'" in capsys.readouterr().err
    assert run_cli("maintenance", "add", "y", "--kind", "bts", "--daily", "01:00-02:00",
                   "-c", c) == 2  # fmt: skip
    assert "needs a timezone" in capsys.readouterr().err
    settings = config_dir / "districtmon.yaml"
    settings.write_text(settings.read_text() + "timezone: Asia/Ho_Chi_Minh\n", encoding="utf-8")
    assert run_cli("maintenance", "add", "y", "--kind", "bts", "--daily", "01:00-02:00",
                   "-c", c) == 0  # fmt: skip
    assert "daily 01:00-02:00 Asia/Ho_Chi_Minh" in capsys.readouterr().out
    assert run_cli("maintenance", "remove", "y", "-c", c) == 0
    assert run_cli("maintenance", "list", "-c", c) == 0
    listing = capsys.readouterr().out
    assert "weekly" in listing and "owner: viettel" in listing and "ledger" in listing
    assert run_cli("maintenance", "remove", "weekly", "-c", c) == 0
    assert read_ledger_windows(ledger) == []
    assert run_cli("maintenance", "remove", "weekly", "-c", c) == 2


def test_a_window_from_now_for_two_hours_is_confirmed_to_the_second(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = load_config(config_dir).ledger_path
    before = int(time.time())
    assert run_cli("maintenance", "add", "ups-swap", "--site", "bts-vtl-thanh-nua-01",
                   "--start", "now", "--for", "2h", "--tz", "Asia/Ho_Chi_Minh",
                   "-c", str(config_dir)) == 0  # fmt: skip
    after = time.time()
    out = capsys.readouterr().out
    [stored] = read_ledger_windows(ledger)
    assert stored.start is not None and stored.end is not None
    assert before <= stored.start <= after and stored.start == int(stored.start)
    assert stored.end - stored.start == 7200
    start = dt.datetime.fromtimestamp(stored.start, HCM).isoformat()
    end = dt.datetime.fromtimestamp(stored.end, HCM).isoformat()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", start)  # seconds kept
    assert out == (
        f"added ups-swap: {start} .. {end} (02:00:00), holding site bts-vtl-thanh-nua-01\n"
    )
    assert run_cli("maintenance", "list", "-c", str(config_dir)) == 0
    listing = capsys.readouterr().out
    until = dt.datetime.fromtimestamp(stored.end, HCM).strftime("%Y-%m-%d %H:%M:%S")
    assert f"now, until {until}" in listing


def test_for_takes_durations_and_works_with_recurring_windows(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = load_config(config_dir).ledger_path
    c = str(config_dir)
    assert run_cli("maintenance", "add", "night", "--kind", "loudspeaker", "--daily", "23:30",
                   "--for", "1h15m", "--tz", "Asia/Ho_Chi_Minh", "-c", c) == 0  # fmt: skip
    assert "daily 23:30-00:45 Asia/Ho_Chi_Minh" in capsys.readouterr().out
    assert run_cli("maintenance", "add", "w", "--owner", "viettel", "--weekly", "tue", "02:00",
                   "--for", "90m", "--tz", "UTC", "-c", c) == 0  # fmt: skip
    assert "tue 02:00-03:30 UTC" in capsys.readouterr().out
    assert run_cli("maintenance", "add", "d", "--owner", "viettel", "--start",
                   "2025-03-04T01:00:30+07:00", "--for", "1d", "--tz", "Asia/Ho_Chi_Minh",
                   "-c", c) == 0  # fmt: skip
    assert "2025-03-04T01:00:30+07:00 .. 2025-03-05T01:00:30+07:00 (1d 00:00:00)" in (
        capsys.readouterr().out
    )
    assert len(read_ledger_windows(ledger)) == 3
    refusals = [
        (["--daily", "01:00-02:00", "--for", "1h"], "give an end (01:00-02:00) or --for"),
        (["--daily", "01:00", "--for", "25h"], "whole minutes, under a day"),
        (["--for", "2h"], "--for needs a --start"),
    ]
    for extra, words in refusals:
        assert run_cli("maintenance", "add", "x", "--kind", "bts", "--tz", "UTC", *extra,
                       "-c", c) == 2  # fmt: skip
        assert words in capsys.readouterr().err
    for bad in (["--for", "2 hours"], ["--for", "0m"], ["--end", "now", "--for", "1h"]):
        with pytest.raises(SystemExit):
            run_cli("maintenance", "add", "x", "--kind", "bts", "--start", "now", *bad, "-c", c)
        capsys.readouterr()


def test_an_unknown_target_is_refused_with_a_suggestion(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("maintenance", "add", "x", "--owner", "vietel", "--start", "now",
                   "--for", "1h", "-c", str(config_dir)) == 2  # fmt: skip
    assert "unknown owner 'vietel'; did you mean 'viettel'?" in capsys.readouterr().err
