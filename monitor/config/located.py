"""YAML that remembers where every value came from, and typed reading that reports, not raises.

PyYAML's constructors throw positions away and silently keep the last of two equal keys. A
configuration error that cannot say `file:line: key.path` is slow to act on, and a duplicated key
is nearly always a copy-paste slip that would quietly drop half an entry. So we compose the node
tree ourselves (safe loader only: YAML can never build Python objects here) and turn it into
plain dicts and lists that carry 1-based line numbers.

`Fields` is the other half: typed getters over one mapping that append a `ConfigProblem` and
return None instead of raising, so that a validator keeps going and reports every error at once.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

# libyaml when PyYAML was built with it (much faster); both compose the same node tree.
_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
SLUG_RULE = "must be a slug ([a-z0-9][a-z0-9-]*, at most 64 characters)"

T = TypeVar("T")


class _Broken:
    """The value of a node that was already reported (bad tag, self-referring alias). Getters
    skip it silently, so that one mistake gives one message."""

    def __repr__(self) -> str:
        return "BROKEN"


BROKEN = _Broken()


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration, placed so that an operator can go and fix it.

    `line` is 1-based, None when the problem is about a whole file (missing, unreadable).
    `key` is the key path inside the file (`sites[3].probe.snmp.port`), "" for the file itself.
    """

    file: Path
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        place = str(self.file) if self.line is None else f"{self.file}:{self.line}"
        return f"{place}: {self.key}: {self.message}" if self.key else f"{place}: {self.message}"

    def sort_key(self) -> tuple[str, int]:
        """File, then line: the order in which someone would walk through and fix them."""
        return (str(self.file), self.line or 0)


class YamlReadError(Exception):
    """The file could not be read or parsed at all: there is no tree to validate."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class YamlMap(dict[str, object]):
    """A YAML mapping (keys are always text) with the line of the mapping and of each key."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class YamlList(list[object]):
    """A YAML sequence with the line of the sequence and of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


def child_key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def item_key(path: str, index: int) -> str:
    return f"{path}[{index}]"


def load_yaml(path: Path, problems: list[ConfigProblem], *, sensitive: bool = False) -> object:
    """Parse one YAML file into YamlMap / YamlList / scalars; None for an empty file.

    Problems that leave a usable tree (duplicate keys, a bad tag on one value) are appended to
    `problems`, and the value in question becomes BROKEN; a file that cannot be read or parsed
    raises YamlReadError. With `sensitive`, quoted fragments of parser messages are masked:
    they may quote a secret.
    """
    text = _read_text(path, sensitive)
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _Builder(loader, path, problems, sensitive).value(node, "")
    except yaml.YAMLError as error:
        raise YamlReadError(_syntax_problem(path, text, error, sensitive)) from None
    finally:
        loader.dispose()


def _read_text(path: Path, sensitive: bool) -> str:
    """Strict UTF-8 (a BOM is tolerated): a mis-encoded Vietnamese name must not slip through."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise YamlReadError(ConfigProblem(path, None, "", "file not found")) from None
    except OSError as error:
        message = f"cannot read: {error.strerror or error}"
        raise YamlReadError(ConfigProblem(path, None, "", message)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = "" if sensitive else f" (byte 0x{data[error.start]:02x})"
        message = f"not valid UTF-8{byte}; save the file as UTF-8"
        raise YamlReadError(ConfigProblem(path, line, "", message)) from None


def _syntax_problem(path: Path, text: str, error: yaml.YAMLError, sensitive: bool) -> ConfigProblem:
    """Only the parser's own words, never its snippet of the file: that may hold a secret."""
    line: int | None = None
    if isinstance(error, yaml.MarkedYAMLError):
        message = error.problem or "invalid YAML"
        if error.problem_mark is not None:
            line = error.problem_mark.line + 1
        if error.context:
            where = error.context_mark
            at = (
                f" at line {where.line + 1}" if where is not None and where.line + 1 != line else ""
            )
            message = f"{message} ({error.context}{at})"
    elif isinstance(error, ReaderError):
        message = error.reason
        if isinstance(error.position, int):
            line = text[: error.position].count("\n") + 1
    else:
        message = "invalid YAML"
    if sensitive:
        message = _QUOTED.sub("'***'", message)
    return ConfigProblem(path, line, "", f"invalid YAML: {message}")


class _Builder:
    """Node tree to values. Aliases give the same object twice (never rebuilt, so an alias
    bomb costs nothing); an alias inside its own anchor is reported instead of recursing."""

    def __init__(
        self,
        loader: yaml.SafeLoader | yaml.CSafeLoader,
        file: Path,
        problems: list[ConfigProblem],
        sensitive: bool,
    ) -> None:
        self._loader = loader
        self._file = file
        self._problems = problems
        self._sensitive = sensitive
        self._built: dict[int, object] = {}
        self._building: set[int] = set()

    def _problem(self, node: Node, key: str, message: str) -> None:
        self._problems.append(ConfigProblem(self._file, node.start_mark.line + 1, key, message))

    def value(self, node: Node, path: str) -> object:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        ident = id(node)
        if ident in self._built:
            return self._built[ident]
        if ident in self._building:
            self._problem(node, path, "an alias refers to the collection that contains it")
            return BROKEN
        self._building.add(ident)
        try:
            result = self._collection(node, path)
        finally:
            self._building.discard(ident)
        self._built[ident] = result
        return result

    def _scalar(self, node: ScalarNode, path: str) -> object:
        if node.tag not in yaml.SafeLoader.yaml_constructors:  # e.g. `!vault ...`
            self._problem(node, path, f"unsupported YAML tag '{node.tag}'")
            return BROKEN
        try:
            return self._loader.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError) as error:  # `!!int abc`, `!!binary @`
            message = getattr(error, "problem", None) or f"not a valid {node.tag} value"
            if self._sensitive:  # the parser's message may quote the value
                message = _QUOTED.sub("'***'", message)
            self._problem(node, path, message)
            return BROKEN

    def _collection(self, node: Node, path: str) -> object:
        if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
            return self._mapping(node, path)
        if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
            return self._sequence(node, path)
        self._problem(node, path, f"unsupported YAML tag '{node.tag}'")
        return BROKEN

    def _sequence(self, node: SequenceNode, path: str) -> YamlList:
        result = YamlList(node.start_mark.line + 1)
        for index, item in enumerate(node.value):
            result.append(self.value(item, item_key(path, index)))
            result.item_lines.append(item.start_mark.line + 1)
        return result

    def _mapping(self, node: MappingNode, path: str) -> YamlMap:
        result = YamlMap(node.start_mark.line + 1)
        merged: list[YamlMap] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, path, "a key must be plain text")
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in result:
                first = result.key_lines[key]
                message = f"duplicate key '{key}' (first at line {first})"
                self._problem(key_node, child_key(path, key), message)
                continue
            result[key] = self.value(value_node, child_key(path, key))
            result.key_lines[key] = line
        for source in merged:  # `<<: [*a, *b]`: explicit keys win, then a, then b
            for key, value in source.items():
                if key not in result:
                    result[key] = value
                    result.key_lines[key] = source.line_of(key)
        return result

    def _merge_sources(self, node: Node, path: str) -> list[YamlMap]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        found: list[YamlMap] = []
        for source in sources:
            value = self.value(source, path) if isinstance(source, Node) else None
            if isinstance(value, YamlMap):
                found.append(value)
            else:
                self._problem(node, path, "a merge key (<<) needs a mapping or a list of them")
        return found


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


def kind_of(value: object) -> str:
    """The YAML kind of a value without the value itself: safe to print for a secret."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


@dataclass(slots=True)
class Sink:
    """Where problems of one file go."""

    file: Path
    problems: list[ConfigProblem]
    sensitive: bool = False  # the file holds secrets: messages name kinds of values, not values

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
        """Unknown keys are errors (a typo must not silently mean 'use the default')."""
        for key in self.node:
            if key not in known:
                self.problem(key, f"unknown key (expected one of: {', '.join(known)})")
        for key in required:
            if key not in self.node:
                self.sink.add(self.node.line, self.key(key), "is required" + self.subject)

    def has(self, key: str) -> bool:
        return key in self.node

    def get(self, key: str) -> object:
        """The raw value; BROKEN when absent too, since both mean 'nothing to check here'."""
        return self.node.get(key, BROKEN)

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
        self.problem(key, f"must be one of {', '.join(options)}; got {self.sink.show(value)}")
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
