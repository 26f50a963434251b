"""The monthly report as a printable HTML page, in Vietnamese: what the district office files and
hands on, per commune, per owner (the operators, the radio-TV station, the agencies) and per
kind of site.

One self-contained page: the styles are inline and name only fonts a machine has (no font,
script or image from the network), so it prints the same on an office computer that is
offline. Dates are the office's: dd/mm/yyyy, times 24-hour, in the report's time zone;
numbers are written the Vietnamese way, with a decimal comma (99,950). The figures are those
of the other formats (build.py): availability over the counted time, outages, MTTR.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from zoneinfo import ZoneInfo

from monitor.config.settings import DEFAULT_IN_SERVICE
from monitor.report import render
from monitor.report.build import Gap, Report, Row
from monitor.report.indicators import Indicator

# Sections of the page, in order: (the report's `by`, section title, first column's title).
SECTIONS = (
    ("commune", "Theo xã, thị trấn", "Xã, thị trấn"),
    ("owner", "Theo đơn vị chủ quản (nhà mạng, đài truyền thanh, cơ quan)", "Đơn vị chủ quản"),
    ("kind", "Theo loại hạ tầng", "Loại hạ tầng"),
)

# The kinds of site as the office names them (core.model.KIND_NAMES is English).
KIND_NAMES_VI = {
    "bts": "Trạm thu phát sóng di động (BTS)",
    "radio_station": "Đài truyền thanh",
    "loudspeaker": "Cụm loa truyền thanh",
    "gateway": "Cổng mạng LAN của cơ quan",
    "video_endpoint": "Điểm cầu truyền hình trực tuyến",
    "post_point": "Điểm Bưu điện - Văn hóa xã",
    "portal": "Dịch vụ trực tuyến",
}

GAP_CAUSES_VI = {
    "not running": "chưa hoạt động",
    "stopped": "dừng có kế hoạch",
    "crashed": "dừng đột ngột",
    "no heartbeat": "mất tín hiệu hoạt động",
}

COLUMNS = (
    "Số điểm",
    "Độ khả dụng (%)",
    "Số lần gián đoạn",
    "Tổng thời gian gián đoạn",
    "Thời gian khắc phục trung bình (MTTR)",
    "Lần gián đoạn dài nhất",
)

STYLE = """
@page { size: A4 landscape; margin: 14mm 12mm; }
body { font-family: "Times New Roman", "Liberation Serif", "DejaVu Serif", serif;
       font-size: 12pt; color: #000; margin: 0 auto; max-width: 277mm; }
header { text-align: center; margin-bottom: 8mm; }
header h1 { font-size: 15pt; text-transform: uppercase; margin: 0 0 2mm; }
header p { margin: 1mm 0; }
h2 { font-size: 13pt; margin: 7mm 0 2mm; break-after: avoid; }
table { border-collapse: collapse; width: 100%; break-inside: auto; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
th, td { border: 1px solid #000; padding: 1.2mm 2mm; vertical-align: top; }
th { background: #eee; font-weight: bold; text-align: center; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; }
.notes { font-size: 10.5pt; margin-top: 6mm; }
.notes li { margin: 1mm 0; }
.signatures { display: flex; justify-content: space-around; margin-top: 12mm;
              text-align: center; break-inside: avoid; }
.signatures p { margin: 1mm 0; }
nav { font-family: sans-serif; font-size: 11pt; margin-bottom: 4mm; }
nav a { margin-right: 6mm; }
@media print { th { background: #eee !important; print-color-adjust: exact; } }
@media print { nav { display: none; } }
"""


def _moment(t: float, zone: ZoneInfo, seconds: bool = False) -> str:
    """dd/mm/yyyy HH:MM (or HH:MM:SS) in `zone`."""
    return dt.datetime.fromtimestamp(t, zone).strftime(
        "%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M"
    )


def number(value: float, places: int) -> str:
    """`value` to `places` decimals, with a decimal comma and a dot between thousands:
    1.234,5 -- as Vietnamese is written."""
    text = f"{value:,.{places}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else number(ratio * 100, 3)


def duration(seconds: float | None) -> str:
    """`2 ngày 04:05:06`, `04:05:06`: the text report's durations, the days in Vietnamese."""
    return render.duration(seconds, day_unit=" ngày")


def period(report: Report) -> str:
    """`tháng 11/2026` when the window is one calendar month in the report's zone, else
    `từ 01/11/2026 00:00 đến 15/11/2026 12:00`."""
    zone = ZoneInfo(report.timezone)
    start = dt.datetime.fromtimestamp(report.start, zone)
    end = dt.datetime.fromtimestamp(report.end, zone)
    following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    midnight = start.time() == dt.time() and end.time() == dt.time()
    if midnight and start.day == 1 and end.date() == following.date():
        return f"tháng {start:%m/%Y}"
    return f"từ {_moment(report.start, zone)} đến {_moment(report.end, zone)}"


def _name(by: str, row: Row) -> str:
    return KIND_NAMES_VI.get(row.key, row.name) if by == "kind" else row.name


def _figures(row: Row) -> list[str]:
    f = row.figures
    return [
        str(row.sites),
        percent(f.availability),
        str(f.outages),
        duration(f.down),
        duration(f.mttr),
        duration(f.longest_outage if f.outages else None),
    ]


def _table(by: str, first: str, report: Report) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for title in ("Mã", first, *COLUMNS))
    lines = [f'<table id="theo-{by}">', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for row in report.rows:
        cells = [f"<td>{escape(row.key)}</td>", f"<td>{escape(_name(by, row))}</td>"]
        cells += [f'<td class="num">{escape(v)}</td>' for v in _figures(row)]
        lines.append(f"<tr>{''.join(cells)}</tr>")
    total = report.total
    cells = ['<td colspan="2">Toàn huyện</td>']
    cells += [f'<td class="num">{escape(v)}</td>' for v in _figures(total)]
    lines += ["</tbody>", f'<tfoot><tr class="total">{"".join(cells)}</tr></tfoot>', "</table>"]
    return "\n".join(lines)


def _gaps(gaps: Sequence[Gap], zone: ZoneInfo) -> str:
    if not gaps:
        return "<li>Hệ thống giám sát hoạt động liên tục trong cả kỳ báo cáo.</li>"
    items = [
        f"<li>Hệ thống giám sát không hoạt động từ {_moment(g.start, zone, True)} đến "
        f"{_moment(g.end, zone, True)} ({escape(GAP_CAUSES_VI.get(g.cause, g.cause))}, "
        f"{duration(g.end - g.start)}): mọi điểm được tính là không xác định.</li>"
        for g in gaps
    ]
    return "\n".join(items)


def _indicators(items: Sequence[Indicator], threshold: float) -> str:
    head = "".join(
        f"<th>{escape(t)}</th>" for t in ("Chỉ tiêu", "Đạt", "Tổng số", "Tỷ lệ (%)", "Chưa đạt")
    )
    lines = ['<table id="chi-tieu">', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for i in items:
        shown = ", ".join(i.short[:SHORT_SHOWN])
        if len(i.short) > SHORT_SHOWN:
            shown += f" và {len(i.short) - SHORT_SHOWN} khác"
        cells = [
            f"<td>{escape(i.label)}</td>",
            f'<td class="num">{i.met}</td>',
            f'<td class="num">{i.of} {escape(i.unit)}</td>',
            f'<td class="num">{escape(percent(i.share))}</td>',
            f"<td>{escape(shown)}</td>",
        ]
        lines.append(f'<tr id="chi-tieu-{escape(i.key)}">{"".join(cells)}</tr>')
    lines += [
        "</tbody>",
        "</table>",
        f"<p>Một điểm được tính là hoạt động khi độ khả dụng trong kỳ đạt từ "
        f"{escape(number(threshold * 100, 1))}% trở lên; đài truyền thanh được tính là phát "
        "sóng theo thời gian hoạt động bình thường (không tính thời gian máy phát ngừng).</p>",
    ]
    return "\n".join(lines)


SHORT_SHOWN = 8


def render_html(
    reports: Sequence[Report],
    made: float,
    indicators: Sequence[Indicator] = (),
    threshold: float = DEFAULT_IN_SERVICE,
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """One page from `reports` of one window, one per `by` of SECTIONS (in any order);
    `made`: when it was drawn up (Unix seconds); the infrastructure indicators first when
    given (they need the inventory); `links` (text, href) on top, for the page the daemon
    serves (to the status page, the months before and after), left out when printed."""
    by_section = {r.by: r for r in reports}
    missing = [by for by, _, _ in SECTIONS if by not in by_section]
    if missing:
        raise ValueError(f"the HTML report needs reports by {', '.join(missing)}")
    first = by_section["commune"]
    zone = ZoneInfo(first.timezone)
    when = period(first)
    nav = "".join(f'<a href="{escape(href)}">{escape(text)}</a>' for text, href in links)
    body = [
        *([f"<nav>{nav}</nav>"] if links else []),
        "<header>",
        "<h1>Báo cáo độ khả dụng hạ tầng thông tin và truyền thông</h1>",
        f"<p><strong>Kỳ báo cáo: {escape(when)}</strong></p>",
        f"<p>Từ {_moment(first.start, zone)} đến {_moment(first.end, zone)} "
        f"(giờ {escape(first.timezone)}); {first.total.sites} điểm được giám sát</p>",
        f"<p>Lập ngày {_moment(made, zone)}</p>",
        "</header>",
    ]
    sections: list[tuple[str, str]] = []
    if indicators:
        sections.append(
            ("Chỉ tiêu hạ tầng thông tin và truyền thông", _indicators(indicators, threshold))
        )
    sections += [(title, _table(by, column, by_section[by])) for by, title, column in SECTIONS]
    for n, (title, table) in enumerate(sections, 1):
        body += [f"<h2>{n}. {escape(title)}</h2>", table]
    warnings = "".join(f"<li>Lưu ý: {escape(w)}</li>" for w in first.warnings)
    running = "".join(
        f"<li>Hệ thống giám sát đang chạy (tín hiệu gần nhất {_moment(beat, zone, True)}): "
        "số liệu của những giây cuối chưa được ghi.</li>"
        for _, beat in first.running
    )
    body += [
        '<section class="notes"><h2>Ghi chú</h2><ul>',
        "<li>Độ khả dụng = (thời gian hoạt động + thời gian hoạt động suy giảm) / (thời gian "
        "của kỳ báo cáo &minus; thời gian không xác định &minus; thời gian bảo trì có kế "
        "hoạch &minus; thời gian không tới được do thiết bị phía trên bị gián đoạn).</li>",
        "<li>Tổng thời gian gián đoạn cộng dồn thời gian của từng điểm (2 điểm, mỗi điểm gián "
        "đoạn 1 giờ: 02:00:00). MTTR: tổng thời gian gián đoạn chia cho số lần gián đoạn. "
        "Lần gián đoạn dài nhất: thời gian thực của lần dài nhất.</li>",
        "<li>Thời gian không tới được được tính cho thiết bị phía trên, không tính cho điểm "
        "phụ thuộc.</li>",
        _gaps(first.gaps, zone),
        running,
        warnings,
        "</ul></section>",
        '<section class="signatures">',
        "<div><p><strong>NGƯỜI LẬP BÁO CÁO</strong></p><p><em>(Ký, ghi rõ họ tên)</em></p></div>",
        "<div><p><strong>LÃNH ĐẠO ĐƠN VỊ</strong></p><p><em>(Ký, ghi rõ họ tên)</em></p></div>",
        "</section>",
    ]
    title = f"Báo cáo độ khả dụng hạ tầng - {when}"
    return (
        '<!DOCTYPE html>\n<html lang="vi">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
