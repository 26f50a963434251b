"""The availability objectives of the configuration as series: one per kind
(`districtmon_objective_ratio`) and the one each site is held to
(`districtmon_site_objective_ratio`, its own `objective:` or its kind's); and what each kind
is called (`districtmon_kind_info`), so that dashboards offer kinds by name as they offer
communes and owners.

The alert rules (config/prometheus/alerts.yml) and the SLA dashboard compare availability
with these series instead of numbers of their own, so the objective lives in one place, the
configuration, and a change there moves the alert threshold, the dashboard's colours and the
error budget at once. The values change only with the configuration, so the text is made
once for the sites and objectives of the last load or reload and served as the same bytes
until either is swapped (a scrape at 20,000 sites wrote 20,000 unchanged lines through
prometheus-client every time: about 0.15 s of CPU, a sixth of what the daemon spent on
scrapes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

from monitor.core.model import KIND_NAMES_VI, Site
from monitor.expose.site_metrics import SITE_LABELS, site_label_values
from monitor.expose.textformat import KeptText, render


def site_objective(site: Site, objectives: Mapping[str, float]) -> float | None:
    """What `site` is held to: its own objective, else its kind's (None: neither is set)."""
    if site.objective is not None:
        return site.objective
    return objectives.get(site.kind)


class ObjectiveCollector(KeptText[tuple[Mapping[str, Site], Mapping[str, float]]]):
    """Reads the current sites (they are swapped whole on a reload) and the objectives the
    daemon was last configured with (`objectives`, set again on a reload); its text is kept
    while both are the same objects."""

    def __init__(self, sites: Callable[[], Mapping[str, Site]], objectives: Mapping[str, float]):
        super().__init__()
        self._sites = sites
        self.objectives = objectives

    def version(self) -> tuple[Mapping[str, Site], Mapping[str, float]]:
        return (self._sites(), self.objectives)

    def make_text(self, version: tuple[Mapping[str, Site], Mapping[str, float]]) -> bytes:
        return render(self._families(*version))

    def collect(self) -> Iterator[Metric]:
        return self._families(self._sites(), self.objectives)

    def _families(
        self, sites: Mapping[str, Site], objectives: Mapping[str, float]
    ) -> Iterator[Metric]:
        kinds = GaugeMetricFamily(
            "districtmon_objective",
            "30-day availability objective of each kind of site (districtmon.yaml "
            "`objectives:`), a share 0..1.",
            labels=["kind"],
            unit="ratio",
        )
        for kind, objective in objectives.items():
            kinds.add_metric([kind], objective)
        yield kinds
        per_site = GaugeMetricFamily(
            "districtmon_site_objective",
            "30-day availability objective a site is held to: its own `objective:` in the "
            "inventory, else its kind's; a share 0..1.",
            labels=list(SITE_LABELS),
            unit="ratio",
        )
        for site in sites.values():
            value = site_objective(site, objectives)
            if value is not None:
                per_site.add_metric(site_label_values(site), value)
        yield per_site
        names = InfoMetricFamily(
            "districtmon_kind",
            "What each kind of site is called (Vietnamese), value always 1.",
            labels=["kind"],
        )
        for kind, name in KIND_NAMES_VI.items():
            names.add_metric([kind], {"name": name})
        yield names
