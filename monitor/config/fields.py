"""Typed reading of one YAML mapping that reports, not raises.

`Fields` wraps one mapping of the located tree (monitor/config/located.py): every getter
appends a `ConfigProblem` and returns None instead of raising, so that a validator keeps going
and reports every error at once. `open_document` is the one way a file of the configuration
is opened: parse it, report what could not be, and hand back its top mapping.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from monitor.config.located import (
    BROKEN,
    ItemStream,
    YamlList,
    YamlMap,
    child_key,
    item_key,
    load_yaml,
)
from monitor.config.problems import ConfigProblem, YamlReadError
from monitor.config.suggest import CUTOFF, SENSITIVE_CUTOFF, closest, did_you_mean
from monitor.core.kinds import kind_of

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
SLUG_RULE = "must be a slug ([a-z0-9][a-z0-9-]*, at most 64 characters)"
# What every key of districtmon's files looks like; an unknown key that does not is shown
# nowhere, in any file: it is more likely a secret pasted on the wrong line than a typo.
_KEY_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

T = TypeVar("T")


def is_slug(text: str) -> bool:
    """Ids and names that end up in metric labels, URLs and environment variable names."""
    return _SLUG.fullmatch(text) is not None


def describe(value: object) -> str:
    """A value as the operator wrote it, short; for messages about what was expected."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return kind_of(value)


@dataclass(slots=True)
class Sink:
    """Where problems of one file go."""

    file: Path
    problems: list[ConfigProblem]
    sensitive: bool = False  # the file holds secrets: messages name kinds of values, not values
    # Words of a sensitive file's schema: a key that is one of them may be shown all the same.
    public: frozenset[str] = frozenset()

    def show(self, value: object) -> str:
        return kind_of(value) if self.sensitive else describe(value)

    def add(self, line: int | None, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, line, key, message))


@dataclass(frozen=True, slots=True)
class Located(Generic[T]):
    """A value with the line and key path it was read from, for checks made later."""

    value: T
    line: int
    key: str


class Fields:
    """One YAML mapping under validation.

    Every getter returns None when the key is absent or its value is wrong; in the second case
    it has recorded a problem. `subject` (e.g. " (site 'bts-01')") is appended to every message
    so that an error deep in an entry still names the entry.
    """

    def __init__(self, sink: Sink, node: YamlMap, path: str, subject: str = "") -> None:
        self.sink = sink
        self.node = node
        self.path = path
        self.subject = subject
        # Known keys that an unknown key of this mapping most likely misspells: a reader
        # does not report them missing as well (see expect).
        self.misspelt: set[str] = set()

    @classmethod
    def of(
        cls, sink: Sink, value: object, line: int, path: str, subject: str = ""
    ) -> Fields | None:
        if isinstance(value, YamlMap):
            return cls(sink, value, path, subject)
        if value is not BROKEN:
            sink.add(line, path, f"must be a mapping, got {sink.show(value)}{subject}")
        return None

    def key(self, key: str) -> str:
        return child_key(self.path, key)

    def line(self, key: str) -> int:
        return self.node.line_of(key)

    def problem(self, key: str, message: str) -> None:
        self.sink.add(self.line(key), self.key(key), message + self.subject)

    def problem_here(self, message: str) -> None:
        self.sink.add(self.node.line, self.path, message + self.subject)

    def expect(self, known: Collection[str], required: Collection[str] = ()) -> None:
        """Unknown keys are errors (a typo must not silently mean 'use the default'), each
        with the known key it most likely misspells. A required key so misspelt is not also
        reported missing: one slip, one message. In a file of secrets, a key like no known
        one is not shown at all: it may be a community pasted on the wrong line; nor, in any
        file, is an unknown key that does not look like a key name (lower case, digits, `_`)."""
        missing = [key for key in required if key not in self.node]
        explained = self.misspelt
        unknown = [key for key in self.node if key not in known]
        if unknown:  # the words of the messages, only when there is one to write
            expected = f"(expected one of: {', '.join(known)})"
            cutoff = SENSITIVE_CUTOFF if self.sink.sensitive else CUTOFF
            absent = [key for key in known if key not in self.node]
        for key in unknown:
            match = closest(key, absent, cutoff) or closest(key, known, cutoff)
            if match is None and self.sink.sensitive and key not in self.sink.public:
                message = f"unknown key, not shown (this file holds secrets) {expected}"
                self.sink.add(self.line(key), self.key("***"), message + self.subject)
                continue
            if match is None and not _KEY_NAME.fullmatch(key):
                message = f"unknown key, not shown (not a key name: a secret?) {expected}"
                self.sink.add(self.line(key), self.key("***"), message + self.subject)
                continue
            hint = "" if match is None else f"; did you mean '{match}'?"
            self.problem(key, f"unknown key{hint} {expected}")
            if match is not None:
                explained.add(match)
        for key in missing:
            if key not in explained:
                self.sink.add(self.node.line, self.key(key), "is required" + self.subject)

    def has(self, key: str) -> bool:
        return key in self.node

    def get(self, key: str) -> object:
        """The raw value; BROKEN when absent too, since both mean 'nothing to check here'."""
        return self.node.get(key, BROKEN)

    def boolean(self, key: str) -> bool | None:
        """true or false (YAML's own booleans only: "yes" in quotes is text, refused)."""
        value = self.get(key)
        if isinstance(value, bool):
            return value
        if self.has(key) and value is not BROKEN:
            self.problem(key, f"must be true or false, got {self.sink.show(value)}")
        return None

    def text(self, key: str) -> str | None:
        """Non-empty text, NFC-normalised so that names typed with combining accents compare
        equal to the same names typed precomposed."""
        value = self.get(key)
        if value is BROKEN:
            return None
        if isinstance(value, str) and value.strip():
            return unicodedata.normalize("NFC", value)
        self.problem(key, self._text_expected(value))
        return None

    def located(self, key: str) -> Located[str] | None:
        """Non-empty text with its line and key path: a name checked against others later."""
        text = self.text(key)
        return None if text is None else Located(text, self.line(key), self.key(key))

    def slug(self, key: str) -> str | None:
        value = self.text(key)
        if value is None or is_slug(value):
            return value
        self.problem(key, f"{SLUG_RULE}, got {self.sink.show(value)}")
        return None

    def choice(self, key: str, options: Collection[str]) -> str | None:
        value = self.text(key)
        if value is None or value in options:
            return value
        hint = did_you_mean(value, options)
        self.problem(key, f"must be one of {', '.join(options)}; got {self.sink.show(value)}{hint}")
        return None

    def number(
        self,
        key: str,
        low: float | None = None,
        high: float | None = None,
        *,
        positive: bool = False,
    ) -> float | None:
        """A finite number; integers are accepted, booleans are not (`true` is no latitude)."""
        value = self.get(key)
        if value is BROKEN:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, f"must be a number, got {self.sink.show(value)}")
            return None
        if not math.isfinite(value):
            self.problem(key, f"must be a finite number, got {self.sink.show(value)}")
            return None
        if positive and value <= 0:
            self.problem(key, f"must be a number > 0, got {self.sink.show(value)}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.problem(key, f"must be a number {low}..{high}, got {self.sink.show(value)}")
            return None
        return float(value)

    def integer(self, key: str, low: int, high: int | None = None) -> int | None:
        value = self.get(key)
        if value is BROKEN:
            return None
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be an integer {bounds}, got {self.sink.show(value)}")
            return None
        if value < low or (high is not None and value > high):
            self.problem(key, f"must be an integer {bounds}, got {self.sink.show(value)}")
            return None
        return value

    def items(self, key: str) -> list[Located[object]] | None:
        value = self.get(key)
        if value is BROKEN:
            return None
        if not isinstance(value, YamlList):
            self.problem(key, f"must be a list, got {self.sink.show(value)}")
            return None
        path = self.key(key)
        return [
            Located(item, value.line_of(index), item_key(path, index))
            for index, item in enumerate(value)
        ]

    def texts(self, key: str) -> list[Located[str]] | None:
        """A list of texts, each unique; each keeps its own line for later reference checks."""
        items = self.items(key)
        if items is None:
            return None
        found: list[Located[str]] = []
        first: dict[str, int] = {}
        for item in items:
            if item.value is BROKEN:
                continue
            if not isinstance(item.value, str) or not item.value.strip():
                self.sink.add(item.line, item.key, self._text_expected(item.value) + self.subject)
                continue
            text = unicodedata.normalize("NFC", item.value)
            if text in first:
                message = f"{self.sink.show(text)} is listed twice (first at line {first[text]})"
                self.sink.add(item.line, item.key, message + self.subject)
                continue
            first[text] = item.line
            found.append(Located(text, item.line, item.key))
        return found

    def _text_expected(self, value: object) -> str:
        if isinstance(value, bool | int | float):
            return f"must be text, got {self.sink.show(value)} (quote it to make it text)"
        if isinstance(value, str):
            return "must not be empty"
        return f"must be text, got {self.sink.show(value)}"

    def mapping(self, key: str, *, null_is_empty: bool = False) -> Fields | None:
        value = self.get(key)
        if value is BROKEN:
            return None
        if value is None and null_is_empty:
            value = YamlMap(self.line(key))
        return Fields.of(self.sink, value, self.line(key), self.key(key), self.subject)


def open_document(
    path: Path,
    problems: list[ConfigProblem],
    *,
    sensitive: bool = False,
    if_empty: str | None = None,
    stream: Mapping[str, ItemStream] | None = None,
    data: bytes | None = None,
) -> Fields | None:
    """The top mapping of one YAML file, ready for typed reading. None when the file cannot
    be read or parsed, or its top is not a mapping: each is reported in `problems`, at its
    line. With `sensitive` (the file holds secrets) no message ever quotes a value.

    An empty file (nothing, or only comments) is an empty mapping, unless `if_empty` says how
    to write one on purpose: then it is refused with that advice. A file emptied by accident
    must not quietly mean "no sites" or "every default". `stream`, `data`: see load_yaml."""
    try:
        root = load_yaml(path, problems, sensitive=sensitive, stream=stream, data=data)
    except YamlReadError as error:
        problems.append(error.problem)
        return None
    if root is None and if_empty is not None:
        problems.append(ConfigProblem(path, None, "", f"the file is empty; {if_empty}"))
        return None
    top = YamlMap(1) if root is None else root
    return Fields.of(Sink(path, problems, sensitive), top, 1, "")


def or_default(value: T | None, default: T) -> T:
    """`value`, or `default` where a getter gave None (absent, or wrong and reported)."""
    return default if value is None else value
