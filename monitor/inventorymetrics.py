"""Names of communes and owners as info series: `districtmon_commune_info{commune, name}` and
`districtmon_owner_info{owner, name, kind}`.

Site series carry ids only (`commune="muong-phang"`), which is what joins and dashboards key
on; people read "Mường Phăng". Alert texts and dashboard legends join these series on the id
to show the name, so the Vietnamese names travel with the data instead of being copied into
every rule file.

The collector runs in the HTTP thread and reads the configuration through a callable, so a
reload (which swaps the daemon's `Config` whole, in one assignment) is seen at the next
scrape without any lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.config import Config


class InventoryCollector(Collector):
    def __init__(self, config: Callable[[], Config]) -> None:
        self._config = config

    def collect(self) -> Iterator[Metric]:
        config = self._config()
        communes = InfoMetricFamily(
            "districtmon_commune",
            "Communes of the inventory with their names, value always 1.",
            labels=["commune"],
        )
        for commune in config.communes.values():
            communes.add_metric([commune.id], {"name": commune.name})
        owners = InfoMetricFamily(
            "districtmon_owner",
            "Owners of the inventory with their names and kinds, value always 1.",
            labels=["owner"],
        )
        for owner in config.owners.values():
            owners.add_metric([owner.id], {"name": owner.name, "kind": owner.kind})
        yield communes
        yield owners
