"""Words for the kind of a value, the same in every message that says what was expected.

A configuration file, an MQTT payload and an SNMP answer all end up in messages of the form
"must be a number, got text". The words come from here, so that the three never disagree, and
they name the kind, never the value: the value may be a secret, or untrusted input.
"""

from __future__ import annotations

from collections.abc import Mapping


def kind_of(value: object) -> str:
    """`null`, `a boolean`, `an integer`, `a number`, `text`, `a mapping`, `a list`, or
    `a <type>` for anything else."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str | bytes | bytearray):  # an SNMP OCTET STRING is text to a reader
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"
