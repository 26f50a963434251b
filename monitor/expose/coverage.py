"""Which residential areas a working loudspeaker cluster reaches now: the figure the status
page shows per commune. A cluster works as the dashboards' rule says
(commune:districtmon_site_covered_areas_up:sum); an area two clusters reach is one area here,
where the rule's sum counts it twice and caps the share at 100%, so that the page never says
an area is reached that no working cluster names."""

from __future__ import annotations

from monitor.core.model import Site, State
from monitor.state.live import SiteView


def working_cluster(view: SiteView) -> bool:
    """A cluster reaches its areas while it answers (up or degraded) and reports no amplifier
    fault: the definition of commune:districtmon_site_covered_areas_up:sum (the dashboards'
    rule), so that the page and Grafana count the same clusters."""
    answers = view.state in (State.UP, State.DEGRADED)
    return answers and view.values.get("amplifier_ok") != 0


def coverage(areas: tuple[str, ...], mine: list[tuple[Site, SiteView]]) -> dict[str, object]:
    """The commune's residential areas (`areas`) a working cluster of `mine` reaches now."""
    clusters = [(site, view) for site, view in mine if site.kind == "loudspeaker"]
    reached = {area for site, view in clusters if working_cluster(view) for area in site.covers}
    return {
        "areas": len(areas),
        "covered": sum(1 for area in areas if area in reached),
        "uncovered": [area for area in areas if area not in reached],
        "clusters": len(clusters),
        "clusters_working": sum(1 for _, view in clusters if working_cluster(view)),
    }
