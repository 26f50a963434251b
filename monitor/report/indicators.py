"""The district's infrastructure indicators over a period, from the ledger: the figures the office
writes in its periodic report on information and communication infrastructure (BTS in service
by operator, communes with fibre to the commune centre, 3G/4G coverage, radio stations on air,
residential areas with working loudspeakers, agencies online, communes on the meeting system,
post points), computed from what was measured instead of copied from last period's report.

A site is *in service* over the period when its availability (up or degraded, over the time
the monitor could count) reaches the threshold (districtmon.yaml `indicators.in_service`,
default 0.99). A radio station is *on air* on its up time only: its profile makes it degraded
exactly when the transmitter is off air. A site the period holds no counted time of (never
watched, or in maintenance throughout) is not in service: the indicator cannot vouch for it.

Each indicator names what fell short, so the figure can be checked and acted on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from monitor.config.load import Config
from monitor.config.settings import DEFAULT_IN_SERVICE
from monitor.core.availability import Figures
from monitor.core.model import Site


@dataclass(frozen=True, slots=True)
class Indicator:
    key: str  # stable, for machines: bts:viettel, communes_fibre, ...
    label: str  # as the office's report words it (Vietnamese)
    met: int
    of: int
    unit: str
    short: tuple[str, ...]  # the ids (sites, communes, areas) that fell short

    @property
    def share(self) -> float | None:
        return self.met / self.of if self.of else None


def infrastructure(
    config: Config, per_site: Mapping[str, Figures], threshold: float = DEFAULT_IN_SERVICE
) -> list[Indicator]:
    """The indicators of the inventory in `config`, given each site's figures over the period
    (`per_site`: site id -> Figures; a site missing from it was not watched)."""

    def in_service(site: Site) -> bool:
        found = per_site.get(site.id)
        if found is None or found.counted <= 0:
            return False
        if site.kind == "radio_station":
            return found.up / found.counted >= threshold
        return found.availability is not None and found.availability >= threshold

    sites = list(config.sites.values())
    of_kind: dict[str, list[Site]] = {}
    for site in sites:
        of_kind.setdefault(site.kind, []).append(site)
    found: list[Indicator] = []
    operators = [o for o in config.owners.values() if o.kind == "operator"]
    for operator in operators:
        theirs = [s for s in of_kind.get("bts", []) if s.owner == operator.id]
        if theirs:
            found.append(
                _count(
                    f"bts:{operator.id}",
                    f"BTS hoạt động — {operator.name}",
                    "BTS",
                    theirs,
                    in_service,
                )
            )
    communes = list(config.communes)
    found.append(_communes_fibre(config, communes, of_kind.get("gateway", []), in_service))
    found.append(_communes_mobile(communes, of_kind.get("bts", []), in_service))
    found.append(
        _count(
            "radio_on_air",
            "Đài truyền thanh phát sóng",
            "đài",
            of_kind.get("radio_station", []),
            in_service,
        )
    )
    found.append(_areas(config, of_kind.get("loudspeaker", []), in_service))
    found.append(_agencies(config, of_kind.get("gateway", []), in_service))
    found.append(
        _communes_with(
            "communes_meeting",
            "Xã kết nối hệ thống hội nghị trực tuyến",
            communes,
            of_kind.get("video_endpoint", []),
            in_service,
        )
    )
    found.append(
        _count(
            "post_points",
            "Điểm bưu điện văn hóa xã kết nối",
            "điểm",
            of_kind.get("post_point", []),
            in_service,
        )
    )
    return found


def _count(
    key: str, label: str, unit: str, sites: list[Site], in_service: Callable[[Site], bool]
) -> Indicator:
    short = tuple(s.id for s in sites if not in_service(s))
    return Indicator(key, label, len(sites) - len(short), len(sites), unit, short)


def _communes_fibre(
    config: Config, communes: list[str], gateways: list[Site], in_service: Callable[[Site], bool]
) -> Indicator:
    """A commune is connected when every gateway that brings the line into it (its parent is
    outside the commune, or it has none) was in service: a commune without one is not."""
    short: list[str] = []
    for commune in communes:
        entries = [g for g in gateways if g.commune == commune and _enters(config, g)]
        if not entries or not all(in_service(g) for g in entries):
            short.append(commune)
    return _of_communes(
        "communes_fibre", "Xã có đường truyền cáp quang đến trung tâm xã", communes, short
    )


def _enters(config: Config, gateway: Site) -> bool:
    parent = None if gateway.parent is None else config.sites.get(gateway.parent)
    if parent is None and gateway.parent is not None:
        parent = config.sites_of_other_shards.get(gateway.parent)
    return parent is None or parent.commune != gateway.commune


def _communes_mobile(
    communes: list[str],
    bts: list[Site],
    in_service: Callable[[Site], bool],
) -> Indicator:
    """Covered: every operator that has BTS in the district has at least one in the commune in
    service."""
    present = sorted({s.owner for s in bts})
    short = [
        c
        for c in communes
        if not all(
            any(s.commune == c and s.owner == op and in_service(s) for s in bts) for op in present
        )
    ]
    return _of_communes(
        "communes_mobile", "Xã được phủ sóng 3G/4G (mỗi nhà mạng có BTS hoạt động)", communes, short
    )


def _communes_with(
    key: str, label: str, communes: list[str], sites: list[Site], in_service: Callable[[Site], bool]
) -> Indicator:
    short = [c for c in communes if not any(s.commune == c and in_service(s) for s in sites)]
    return _of_communes(key, label, communes, short)


def _of_communes(key: str, label: str, communes: list[str], short: list[str]) -> Indicator:
    return Indicator(key, label, len(communes) - len(short), len(communes), "xã", tuple(short))


def _areas(config: Config, clusters: list[Site], in_service: Callable[[Site], bool]) -> Indicator:
    """Residential areas of the communes covered by at least one cluster in service; an area a
    cluster names but its commune does not list is not counted (the inventory's check says so)."""
    every = [(c.id, area) for c in config.communes.values() for area in c.areas]
    covered = {
        (cluster.commune, area)
        for cluster in clusters
        if in_service(cluster)
        for area in cluster.covers
    }
    short = tuple(f"{commune}/{area}" for commune, area in every if (commune, area) not in covered)
    return Indicator(
        "loudspeaker_areas",
        "Thôn, bản có loa truyền thanh hoạt động",
        len(every) - len(short),
        len(every),
        "thôn/bản",
        short,
    )


def _agencies(
    config: Config, gateways: list[Site], in_service: Callable[[Site], bool]
) -> Indicator:
    """Each gateway of an agency is the way one of its LANs (a department, a commune People's
    Committee) reaches the Internet: it counts when in service."""
    agencies = {o.id for o in config.owners.values() if o.kind == "agency"}
    theirs = [g for g in gateways if g.owner in agencies]
    return _count(
        "agencies_online",
        "Mạng LAN của cơ quan có Internet băng rộng hoạt động",
        "mạng LAN",
        theirs,
        in_service,
    )
