"""The configuration's objects as bytes and back, for a forked load's pipe and the inventory
cache: pickle, taught the two things it does slowly or not at all here."""

from __future__ import annotations

import copyreg
import dataclasses
import io
import operator
import pickle
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any, BinaryIO

from monitor.config.fields import Located
from monitor.core.model import (
    Commune,
    DnsProbe,
    HttpProbe,
    IcmpProbe,
    MqttProbe,
    Owner,
    Site,
    SnmpProbe,
    TcpProbe,
)


def _proxy(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


def _reduce_proxy(proxy: MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return (_proxy, (dict(proxy),))


# The objects there is one of per site are sent as their class and fields, and rebuilt by
# their constructor: half the time of pickle's own way for frozen dataclasses (1.5 s
# instead of 3 for 100,000 sites), whose every object it rebuilds through a __setstate__.
_PER_SITE = (Site, SnmpProbe, IcmpProbe, TcpProbe, HttpProbe, DnsProbe, MqttProbe, Commune, Owner)


def _by_fields(cls: type[Any]) -> Callable[[Any], tuple[Any, ...]]:
    names = tuple(field.name for field in dataclasses.fields(cls))
    assert len(names) > 1  # attrgetter of one name gives the value, not a tuple of it
    assert all(field.init and not field.kw_only for field in dataclasses.fields(cls))
    fields = operator.attrgetter(*names)
    return lambda value: (cls, fields(value))


_REDUCERS: dict[type[Any], Callable[[Any], Any]] = {
    **copyreg.dispatch_table,
    MappingProxyType: _reduce_proxy,
    **{cls: _by_fields(cls) for cls in (*_PER_SITE, Located)},
}


def dumps(value: object, by_fields: Iterable[type[Any]] = ()) -> bytes:
    """`value` as bytes, with the dataclasses `by_fields` (of modules this one cannot
    import) sent by their fields too; call within `without_cyclic_gc` for a province (each
    site's fields make a tuple, and each tuple would have the collector walk all that is
    live)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**_REDUCERS, **{cls: _by_fields(cls) for cls in by_fields}}
    pickler.dump(value)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def load(file: BinaryIO) -> Any:
    """What `file` holds, read as the unpickler goes (in pickle's frames of 64 KiB): no copy
    of the whole file waits beside what it is read to."""
    return pickle.load(file)
