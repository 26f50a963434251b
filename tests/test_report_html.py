"""`districtmon report --format html`: the monthly page the office prints, read back with
html.parser, against a ledger the test writes with outages it knows.

The expected figures are worked out here by hand from those outages (seconds, a 30-day
November), not by the report code: availability over the counted time (unreachable and
maintenance time left out, unreachable charged to the parent), outages, down site-time, MTTR,
the longest outage; written as the office writes them: dd/mm/yyyy, a decimal comma.
"""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.core.model import Commune, Owner, Site, SnmpProbe, State, Transition
from monitor.ledger.writer import Ledger
from monitor.report.build import month_window

ZONE = "Asia/Ho_Chi_Minh"
START, END = month_window("2025-11", ZONE)  # 2025-10-31T17:00Z .. 2025-11-30T17:00Z
DAY = 86400.0
MONTH = 30 * DAY
DASH = "\u2013"  # as the inventory's names write it
RTV = f"Đài Truyền thanh {DASH} Truyền hình huyện"

# site, kind, commune, owner, parent
SITES = [
    ("bts-a", "bts", "thanh-nua", "viettel", None),
    ("bts-b", "bts", "thanh-nua", "vnpt", None),
    ("gw-c", "gateway", "na-tau", "district-it", None),
    ("radio-d", "radio_station", "na-tau", "dien-bien-rtv", "gw-c"),
]
# (site, state, seconds after the month's start)
CHANGES = [
    *[(site, State.UP, 0.0) for site, *_ in SITES],
    ("bts-a", State.DOWN, 1 * DAY),  # 600 s
    ("bts-a", State.UP, 1 * DAY + 600),
    ("bts-a", State.DOWN, 10 * DAY),  # 1200 s
    ("bts-a", State.UP, 10 * DAY + 1200),
    ("gw-c", State.DOWN, 5 * DAY),  # an hour; the station behind it is unreachable meanwhile
    ("radio-d", State.UNREACHABLE, 5 * DAY),
    ("gw-c", State.UP, 5 * DAY + 3600),
    ("radio-d", State.UP, 5 * DAY + 3600),
    ("radio-d", State.MAINTENANCE, 20 * DAY),  # two hours of planned work
    ("radio-d", State.UP, 20 * DAY + 7200),
]


async def write_ledger(path: Path) -> None:
    now = [START]
    ledger = await Ledger.open(path, clock=lambda: now[0])
    await ledger.sync_sites(
        [
            Site(id, kind, f"Điểm {id}", commune, owner, 0.0, 0.0, SnmpProbe("127.0.0.1"), parent)
            for id, kind, commune, owner, parent in SITES
        ],
        [Commune("thanh-nua", "Thanh Nưa", 0, 0), Commune("na-tau", "Nà Tấu", 0, 0)],
        [
            Owner("viettel", "Viettel", "operator"),
            Owner("vnpt", "VNPT / VinaPhone", "operator"),
            Owner("district-it", f"Trung tâm Văn hóa {DASH} Thông tin huyện", "agency"),
            Owner("dien-bien-rtv", RTV, "broadcaster"),
        ],
    )
    for site, state, at in CHANGES:
        ledger.record(Transition(site, state, START + at, State.UNKNOWN))
    now[0] = END
    await ledger.close(at=END)


class Tables(HTMLParser):
    """Every table of a page by its id: its rows, each a list of the cells' text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._table = self.tables.setdefault(str(dict(attrs)["id"]), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def rows_of(table: list[list[str]]) -> dict[str, dict[str, str]]:
    """Rows by their first cell (the id; the total row: "Toàn huyện"), cells by column title."""
    head, *rows = table
    figures = head[2:]
    out = {}
    for row in rows:
        if row[0] == "Toàn huyện":  # spans the id and name columns
            out[row[0]] = dict(zip(figures, row[1:], strict=True))
        else:
            out[row[0]] = dict(zip(head, row, strict=True))
    return out


def vi_percent(available: float, counted: float) -> str:
    return f"{available / counted * 100:.3f}".replace(".", ",")


@pytest.fixture
def page(tmp_path: Path) -> Tables:
    ledger = tmp_path / "ledger.sqlite"
    asyncio.run(write_ledger(ledger))
    out = tmp_path / "bao-cao-11-2025.html"
    args = ["report", "--month", "2025-11", "--tz", ZONE, "--ledger", str(ledger)]
    assert main([*args, "--format", "html", "-o", str(out)]) == 0
    parser = Tables()
    parser.feed(out.read_text(encoding="utf-8"))
    parser.close()
    return parser


AVAILABILITY = "Độ khả dụng (%)"
OUTAGES = "Số lần gián đoạn"
DOWN = "Tổng thời gian gián đoạn"
MTTR = "Thời gian khắc phục trung bình (MTTR)"
LONGEST = "Lần gián đoạn dài nhất"


def test_the_html_report_gives_each_commune_owner_and_kind_the_ledger_s_figures(
    page: Tables,
) -> None:
    communes = rows_of(page.tables["theo-commune"])
    assert set(communes) == {"thanh-nua", "na-tau", "Toàn huyện"}
    thanh_nua = communes["thanh-nua"]
    assert thanh_nua["Xã, thị trấn"] == "Thanh Nưa" and thanh_nua["Số điểm"] == "2"
    # two BTS for the month; bts-a down 600 s and 1200 s
    assert thanh_nua[AVAILABILITY] == vi_percent(2 * MONTH - 1800, 2 * MONTH)  # 99,965
    assert (thanh_nua[OUTAGES], thanh_nua[DOWN]) == ("2", "00:30:00")
    assert (thanh_nua[MTTR], thanh_nua[LONGEST]) == ("00:15:00", "00:20:00")
    # the gateway down an hour; the station behind it unreachable then (charged to the
    # gateway, left out of its own count) and in maintenance two hours
    na_tau = communes["na-tau"]
    counted = 2 * MONTH - 3600 - 7200
    assert na_tau[AVAILABILITY] == vi_percent(counted - 3600, counted)  # 99,930
    assert (na_tau[OUTAGES], na_tau[DOWN], na_tau[MTTR]) == ("1", "01:00:00", "01:00:00")
    total = communes["Toàn huyện"]
    counted = 4 * MONTH - 3600 - 7200
    assert total["Số điểm"] == "4"
    assert total[AVAILABILITY] == vi_percent(counted - 5400, counted)  # 99,948
    assert (total[OUTAGES], total[DOWN], total[MTTR]) == ("3", "01:30:00", "00:30:00")
    assert total[LONGEST] == "01:00:00"

    owners = rows_of(page.tables["theo-owner"])
    assert owners["viettel"][AVAILABILITY] == vi_percent(MONTH - 1800, MONTH)  # 99,931
    assert owners["vnpt"][AVAILABILITY] == "100,000"
    assert (owners["vnpt"][OUTAGES], owners["vnpt"][MTTR]) == ("0", "-")
    assert owners["district-it"][AVAILABILITY] == vi_percent(MONTH - 3600, MONTH)  # 99,861
    assert owners["dien-bien-rtv"][AVAILABILITY] == "100,000"
    assert owners["dien-bien-rtv"]["Đơn vị chủ quản"] == RTV
    assert owners["Toàn huyện"] == total

    kinds = rows_of(page.tables["theo-kind"])
    assert set(kinds) == {"bts", "gateway", "radio_station", "Toàn huyện"}
    assert kinds["bts"]["Loại hạ tầng"] == "Trạm thu phát sóng di động (BTS)"
    assert kinds["bts"][AVAILABILITY] == thanh_nua[AVAILABILITY]
    assert kinds["gateway"][MTTR] == "01:00:00"
    assert kinds["radio_station"][AVAILABILITY] == "100,000"


def test_the_html_report_dates_the_month_as_the_office_writes_it_and_loads_nothing(
    page: Tables,
) -> None:
    text = " ".join(" ".join(page.text).split())
    assert "Kỳ báo cáo: tháng 11/2025" in text
    assert "Từ 01/11/2025 00:00 đến 01/12/2025 00:00 (giờ Asia/Ho_Chi_Minh)" in text
    assert "4 điểm được giám sát" in text
    assert "Hệ thống giám sát hoạt động liên tục trong cả kỳ báo cáo." in text
    html = next(attrs for tag, attrs in page.tags if tag == "html")
    assert html.get("lang") == "vi"
    # printable offline: nothing fetched, no script
    assert not [tag for tag, _ in page.tags if tag in ("script", "link", "img", "iframe")]
    assert not [a for _, attrs in page.tags for a in attrs if a in ("src", "href")]
    assert any(tag == "style" for tag, _ in page.tags)  # its styles are its own
    assert "url(" not in text and "@import" not in text
