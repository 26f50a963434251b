"""Pieces of the text format 0.0.4, made by prometheus-client and kept for later scrapes.

prometheus-client formats every sample anew on each scrape (sorting and escaping its labels):
about 6 µs a sample. What changes between two scrapes is the value, seldom the labels. So the
fast renderers (exposition.py, device_metrics.py, availability_metrics.py) ask the library to
render the `{labels} ` part of a sample once, cut it out of the library's own line, and at
scrape time write `name` + that part + the value, formatted by the library's `floatToGoString`.
Nothing here escapes a label value itself: every byte comes from `generate_latest`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

PLACEHOLDER = b"0.0"  # what floatToGoString makes of 0.0: every template sample carries it
_NAME = "x"  # the name of the throw-away family label parts are cut out of


class Families:
    """A stand-in registry: what generate_latest needs is an object with collect()."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def render(families: Iterable[Metric]) -> bytes:
    return generate_latest(Families(families))


def header(family: Metric) -> bytes:
    """The HELP and TYPE lines of `family` (its samples left out)."""
    empty = Metric(family.name, family.documentation, family.type)
    return render([empty])


def label_parts(names: Sequence[str], rows: Sequence[Sequence[str]]) -> list[bytes]:
    """`{labels} ` for each row of label values, as prometheus-client writes it after a
    sample's name (labels sorted, values escaped); one call to the library for all rows."""
    family = GaugeMetricFamily(_NAME, _NAME, labels=list(names))
    for values in rows:
        family.add_metric(list(values), 0.0)
    lines = render([family]).split(b"\n")[2:-1]
    if len(lines) != len(rows):
        raise RuntimeError(f"prometheus-client wrote {len(lines)} lines for {len(rows)} samples")
    start, end = len(_NAME), len(PLACEHOLDER)
    for line in lines:
        if not (line.startswith(b"x{") and line.endswith(b"} " + PLACEHOLDER)):
            raise RuntimeError(f"unexpected sample line from prometheus-client: {line!r}")
    return [line[start:-end] for line in lines]


def sample_name(name: str) -> bytes:
    """A sample's name as prometheus-client writes it (it checks the name, never escapes it
    in the text format: a valid name is written as it is)."""
    family = GaugeMetricFamily(name, _NAME)
    family.add_metric([], 0.0)
    line = render([family]).split(b"\n")[2]
    if line != name.encode() + b" " + PLACEHOLDER:
        raise RuntimeError(f"unexpected sample line from prometheus-client: {line!r}")
    return name.encode()


def _go(value: float) -> bytes:
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text.encode()


ONE = _go(1.0)


def value_text(value: float) -> bytes:
    """floatToGoString's text of `value`. The library writes `repr(value)` for every finite
    value but a positive one whose repr has more than six digits before the point, which it
    spells the Go way: the digits as one mantissa, trailing zeros and point stripped, and the
    exponent (1.5e+06, 1.700000000123e+09). The same steps are taken here on bytes, for
    timestamps and uptimes are that large and the library's call costs ten times as much;
    the infinities and NaN are left to it; 1 is the commonest value and made once. Tests hold
    this equal to the library on every kind of value."""
    if value == 1.0:
        return ONE
    d = float(value)
    if d - d != 0.0:
        return _go(d)
    text = b"%r" % d
    dot = text.find(b".")
    if d <= 0.0 or dot <= 6:
        return text
    mantissa = (text[:1] + b"." + text[1:dot] + text[dot + 1 :]).rstrip(b"0.")
    return b"%se+%02d" % (mantissa, dot - 1)


class Prerendered(Collector):
    """A collector that can also write its own text: `render()` gives the bytes
    generate_latest would give for `collect()` (tests hold the two equal), faster. A
    MetricsRegistry serves it through render(); any other registry through collect()."""

    def render(self) -> bytes:
        raise NotImplementedError

    def render_parts(self) -> list[bytes]:
        """render() in parts to be joined, each the same bytes object from one scrape to the
        next while it did not change (gzipparts.py keeps their compressed bytes)."""
        return [self.render()]

    def render_chunks(self) -> Iterator[bytes]:
        """render() in pieces made one after the other, for a caller that compresses each as
        it comes (keptbody.py) and so never holds the whole text: a collector with a large
        text it does not keep makes it a piece at a time."""
        yield from self.render_parts()

    def version(self) -> tuple[object, ...] | None:
        """What the text is made from, compared object by object by identity: while they are
        the same objects the text is the same (None: not known, the text must be made)."""
        return None

    def update(self) -> int:
        """Make ahead, between scrapes, the text of what changed since the last call, so that
        a scrape finds it made; how many sites' text was made (the default: none)."""
        return 0


V = TypeVar("V", bound=tuple[object, ...])


class KeptText(Prerendered, Generic[V]):
    """A Prerendered whose text is made from what `version()` gives, alone: made once per
    version (its objects compared by identity) and served as the same bytes until one of
    them is swapped. KEEP_TEXT False: made at each render, not kept (for a caller that keeps
    it in another form, by `version()`)."""

    KEEP_TEXT = True

    def __init__(self) -> None:
        self._kept_lock = threading.Lock()
        self._kept: tuple[V, bytes] | None = None

    def version(self) -> V:
        raise NotImplementedError

    def make_text(self, version: V) -> bytes:
        raise NotImplementedError

    def render(self) -> bytes:
        version = self.version()
        with self._kept_lock:
            kept = self._kept
            if kept is None or not all(map(_same, kept[0], version)):
                kept = (version, self.make_text(version))
                if self.KEEP_TEXT:
                    self._kept = kept
            return kept[1]


def _same(a: object, b: object) -> bool:
    return a is b


class MetricsRegistry(CollectorRegistry):
    """The daemon's registry. Collectors that render themselves (Prerendered) are kept
    apart: `collect()` still yields every family (the reference rendering), `exposition_parts()`
    writes the others through prometheus-client and appends the prerendered text."""

    def __init__(self, auto_describe: bool = False) -> None:
        super().__init__(auto_describe=auto_describe)
        self._prerendered: list[Prerendered] = []
        self._library = 0  # collectors rendered by prometheus-client

    def register(self, collector: Collector) -> None:
        if isinstance(collector, Prerendered):
            with self._lock:
                self._prerendered.append(collector)
            return
        super().register(collector)
        with self._lock:
            self._library += 1

    def unregister(self, collector: Collector) -> None:
        if isinstance(collector, Prerendered):
            with self._lock:
                self._prerendered.remove(collector)
            return
        super().unregister(collector)
        with self._lock:
            self._library -= 1

    def version(self) -> tuple[object, ...] | None:
        """What the whole text is made from (Prerendered.version), when every collector
        knows it; None otherwise."""
        with self._lock:
            if self._library:
                return None
            prerendered = list(self._prerendered)
        found: list[object] = []
        for collector in prerendered:
            version = collector.version()
            if version is None:
                return None
            found.extend(version)
        return tuple(found)

    def _library_collect(self) -> Iterator[Metric]:
        yield from super().collect()

    def collect(self) -> Iterator[Metric]:
        yield from self._library_collect()
        with self._lock:
            prerendered = list(self._prerendered)
        for collector in prerendered:
            yield from collector.collect()

    def update(self) -> int:
        """`update()` of every collector that renders itself."""
        with self._lock:
            prerendered = list(self._prerendered)
        return sum(collector.update() for collector in prerendered)

    def exposition_parts(self) -> list[bytes]:
        with self._lock:
            prerendered = list(self._prerendered)
        library = generate_latest(Families(self._library_collect()))
        return [library, *(part for collector in prerendered for part in collector.render_parts())]

    def exposition_chunks(self) -> Iterator[bytes]:
        """exposition_parts(), each collector's text a piece at a time (render_chunks)."""
        with self._lock:
            prerendered = list(self._prerendered)
        yield generate_latest(Families(self._library_collect()))
        for collector in prerendered:
            yield from collector.render_chunks()


def exposition_chunks(registry: CollectorRegistry) -> Iterator[bytes]:
    """The text of `registry` in pieces made one after the other (see render_chunks)."""
    if isinstance(registry, MetricsRegistry):
        yield from registry.exposition_chunks()
    else:
        yield generate_latest(registry)


def exposition_parts(registry: CollectorRegistry) -> list[bytes]:
    """The text of `registry`, in parts to be joined: fast for a MetricsRegistry,
    generate_latest for any other."""
    if isinstance(registry, MetricsRegistry):
        return registry.exposition_parts()
    return [generate_latest(registry)]
