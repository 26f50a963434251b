"""A body that changes only when its sources do, kept compressed rather than plain.

/metrics/availability is 24 MB of text at 20,000 sites that changes once a minute, at a
refresh of the figures. Keeping that text between refreshes, as well as its gzip (2.5 MB)
for Prometheus, cost its whole size in memory. So the server keeps only the gzip, with what
the text was made from (MetricsRegistry.version: the snapshot and the site table, by
identity): a gzip scrape while those are the same objects is served the kept bytes; a plain
one (no Prometheus asks for it) is served them decompressed; a new snapshot makes the text
once, compressing each piece as it is made (render_chunks), so that not even the text of one
refresh is held whole (with its lines it raised the RSS by 26-61 MB at 20,000 sites,
bench/scrape_bench.py's `avail +MB`).
"""

from __future__ import annotations

import threading

from isal import igzip
from prometheus_client import CollectorRegistry

from monitor.expose.gzipparts import gzip_pieces
from monitor.expose.textformat import MetricsRegistry, exposition_chunks


class KeptBody:
    def __init__(self, registry: CollectorRegistry, level: int) -> None:
        self.registry = registry
        self.level = level
        self._kept: tuple[tuple[object, ...], bytes] | None = None
        self._lock = threading.Lock()  # two scrapes of a new snapshot make it once

    def gzip(self) -> bytes:
        with self._lock:
            version = self._version()
            kept = self._kept
            if version is not None and kept is not None and _same(kept[0], version):
                return kept[1]
            body = gzip_pieces(exposition_chunks(self.registry), self.level)
            self._kept = (version, body) if version is not None else None
            return body

    def plain(self) -> bytes:
        version = self._version()
        kept = self._kept
        if version is not None and kept is not None and _same(kept[0], version):
            plain: bytes = igzip.decompress(kept[1])  # type: ignore[no-untyped-call]
            return plain
        return b"".join(exposition_chunks(self.registry))

    def _version(self) -> tuple[object, ...] | None:
        registry = self.registry
        return registry.version() if isinstance(registry, MetricsRegistry) else None


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
