"""YAML that remembers where every value came from.

PyYAML's constructors throw positions away and silently keep the last of two equal keys. A
configuration error that cannot say `file:line: key.path` is slow to act on, and a duplicated key
is nearly always a copy-paste slip that would quietly drop half an entry. So we compose the node
tree ourselves (safe loader only: YAML can never build Python objects here) and turn it into
plain dicts and lists that carry 1-based line numbers. Typed reading of that tree is
monitor/config/fields.py's job.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from monitor.config.indentation import explain
from monitor.config.problems import ConfigProblem, YamlReadError

# libyaml when PyYAML was built with it (much faster); both compose the same node tree.
_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
# One configuration file may hold a province (20,000 sites are 3.7 MB of YAML, and parsing
# costs about 75 times the file in memory): a file far past that is a mistake (a log, a dump,
# a device) and must be refused before it is read, not after it has taken the machine.
MAX_FILE_BYTES = 8 * 1024 * 1024


class _Broken:
    """The value of a node that was already reported (bad tag, self-referring alias). Getters
    skip it silently, so that one mistake gives one message."""

    def __repr__(self) -> str:
        return "BROKEN"


BROKEN = _Broken()


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
    """Strict UTF-8 (a BOM is tolerated): a mis-encoded Vietnamese name must not slip through.
    At most MAX_FILE_BYTES are read, whatever the file claims to be (a FIFO, /dev/zero)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise YamlReadError(ConfigProblem(path, None, "", "file not found")) from None
    except OSError as error:
        message = f"cannot read: {error.strerror or error}"
        raise YamlReadError(ConfigProblem(path, None, "", message)) from None
    if len(data) > MAX_FILE_BYTES:
        message = (
            f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, the limit for one "
            "configuration file; split the inventory into several files of inventory/"
        )
        raise YamlReadError(ConfigProblem(path, None, "", message))
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
            mark = error.problem_mark
            explained = explain(text, line, mark.column, message, sensitive=sensitive)
            if explained is not None:
                return ConfigProblem(path, explained[0], "", explained[1])
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
