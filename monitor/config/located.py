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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.events import (
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
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

    # An item of a streamed list read only in part (see ItemStream): where its text is, to
    # read it whole if it is wanted after all (read_passage). None for every other mapping.
    passage: Passage | None = None

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


@dataclass(frozen=True, slots=True)
class Passage:
    """Where one item of a file's text is: the file's text itself (shared by every passage
    of the file, not copied) and the item's first and last character, its first line and
    column (0-based, as the parser counts them)."""

    text: str
    start: int
    end: int
    line: int
    column: int


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


def load_yaml(
    path: Path,
    problems: list[ConfigProblem],
    *,
    sensitive: bool = False,
    stream: Mapping[str, ItemStream] | None = None,
    data: bytes | None = None,
) -> object:
    """Parse one YAML file into YamlMap / YamlList / scalars; None for an empty file. With
    `data`, the file's bytes as the caller read them (`read_bounded`): what is parsed is
    what it read, though the file may have changed since.

    With `stream`, each item of a top-level list named there may go to its reader as soon as
    it is parsed, and the list in the tree is then an empty StreamedList: a province's sites
    are read one by one instead of all kept as a tree first. Only a file that is read
    without a problem is streamed (the items went to the reader in order, all of them, and
    `problems` is left alone); any other gives the whole tree as ever, and the caller drops
    what its reader took of it before that was known.

    Problems that leave a usable tree (duplicate keys, a bad tag on one value) are appended to
    `problems`, and the value in question becomes BROKEN; a file that cannot be read or parsed
    raises YamlReadError. With `sensitive`, quoted fragments of parser messages are masked:
    they may quote a secret.
    """
    text = _read_text(path, read_bounded(path) if data is None else data, sensitive)
    try:
        return _plain_tree(text, stream or {})
    except (_Unusual, yaml.YAMLError):
        pass  # the full reading below says what is wrong, or builds what is unusual
    return _read_fully(text, path, problems, sensitive, "")


def _read_fully(
    text: str, path: Path, problems: list[ConfigProblem], sensitive: bool, key: str
) -> object:
    """`text` composed and built the full way (`key`: the path of its top value), which says
    what is wrong at its line; YamlReadError when it does not parse."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _Builder(loader, path, problems, sensitive).value(node, key)
    except yaml.YAMLError as error:
        raise YamlReadError(_syntax_problem(path, text, error, sensitive)) from None
    finally:
        loader.dispose()


def read_bounded(path: Path) -> bytes:
    """A configuration file's bytes, at most MAX_FILE_BYTES of them, whatever the file
    claims to be (a FIFO, /dev/zero); YamlReadError, naming the file, for one that cannot be
    read or is larger."""
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
    return data


def _read_text(path: Path, data: bytes, sensitive: bool) -> str:
    """Strict UTF-8 (a BOM is tolerated): a mis-encoded Vietnamese name must not slip through."""
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


# --- the fast reading of an ordinary file -------------------------------------------------

#: Takes one item of a streamed list as soon as it is parsed: (value, line, key path).
ItemReader = Callable[[object, int, str], None]
#: The keys of a mapping read in part, each with what of its value is read (None: all).
Keeps = Mapping[str, "Keeps | None"]


@dataclass(frozen=True, slots=True)
class ItemStream:
    """Where the items of a streamed list go (see load_yaml's `stream`), and which of them
    need not be read whole.

    An item that is a mapping opening with `id: <text>` whose id `passes_over` accepts is
    read only as far as the keys of `keeps` (a key whose value is a mapping read so in turn
    names its own `keeps`; None: read whole): the values of its other keys are parsed (the
    file must still be YAML) but not built, and the mapping goes to `take` holding only the
    kept keys, the lines of all of them, and its Passage to read it whole later. A shard
    reads so the sites of other shards: about half the cost of a site is building and
    reading it, which a shard of N then spends on 1/N of them."""

    take: ItemReader
    passes_over: Callable[[str], bool] | None = None
    keeps: Keeps = field(default_factory=dict)


def read_passage(passage: Passage, file: Path, key: str, problems: list[ConfigProblem]) -> object:
    """The item of a Passage (at `key` in its file) read whole, as if with its file: the same
    values at the same lines, the same problems in `problems`."""
    text = " " * passage.column + passage.text[passage.start : passage.end]
    try:
        return _moved(_plain_tree(text, {}), passage.line)
    except (_Unusual, yaml.YAMLError):
        pass
    text = "\n" * passage.line + text  # the full reading's problems at their lines too
    return _read_fully(text, file, problems, False, key)


def _moved(value: object, lines: int) -> object:
    """`value` with every line it records `lines` further down."""
    if isinstance(value, YamlMap):
        value.line += lines
        for key, line in value.key_lines.items():
            value.key_lines[key] = line + lines
        for item in value.values():
            _moved(item, lines)
    elif isinstance(value, YamlList):
        value.line += lines
        value.item_lines[:] = [line + lines for line in value.item_lines]
        for item in value:
            _moved(item, lines)
    return value


_STR_TAG = "tag:yaml.org,2002:str"
# what a plain scalar may resolve to on the fast path; anything else (`<<`, `=`) is unusual
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null", "timestamp")
)


class StreamedList(YamlList):
    """A top-level list whose items went one by one to an ItemReader as they were parsed
    (see load_yaml's `stream`): it holds none of them."""


class _Unusual(Exception):
    """The file uses what the fast reading leaves to the full one: an anchor, an alias, a
    tag, a merge key, a key that is not plain text, a second document, a duplicate key."""


def _plain_tree(text: str, stream: Mapping[str, ItemStream]) -> object:
    """The tree `_Builder` would give, built straight from the parser's events.

    Composing PyYAML's node tree and then walking it costs about four times this, and most
    of the memory a large inventory takes while it is read: every node is kept until the
    whole file has been composed. Here each value goes into its YamlMap or YamlList as soon
    as it is parsed, and a plain scalar seen before (a kind, a commune, a credential, a
    port) is resolved once per file and shared. Only files that the full reading would take
    without a word are built here: whatever could give a problem, or needs anchors, aliases,
    tags or merges, raises _Unusual (or the parser's YAMLError), and the caller reads the
    file the full way, which says what is wrong with the same words as ever.
    """
    loader = _LOADER(text)
    try:
        return _build_from_events(loader, text, stream)
    finally:
        loader.dispose()


# One loop over the parser's events, kept flat: it runs once per value of a province.
def _build_from_events(
    loader: yaml.SafeLoader | yaml.CSafeLoader, text: str, stream: Mapping[str, ItemStream]
) -> object:
    get_event: Callable[[], Any] = loader.get_event
    resolve = loader.resolve
    constructors = loader.yaml_constructors
    resolved: dict[str, object] = {}
    get_event()  # StreamStartEvent
    event = get_event()
    if event.__class__ is StreamEndEvent:
        return None
    # (container, is_map, pending key, its line, the container's own line) of each open one
    stack: list[tuple[Any, bool, str | None, int, int]] = []
    container: Any = None  # the YamlMap or YamlList being filled
    is_map = False
    key: str | None = None
    key_line = 0
    root: object = None
    streamed: StreamedList | None = None  # the list whose items go to `take`
    take: ItemReader | None = None
    streamed_key = ""
    taken = 0
    passes_over: Callable[[str], bool] | None = None
    item_keeps: Keeps = MappingProxyType({})
    skimmed: YamlMap | None = None  # the mapping being read only in part: an item, or in one
    keeps: Keeps = item_keeps  # what of it is read
    outer: list[tuple[YamlMap, Keeps]] = []  # the skimmed mappings that hold this one
    item_mark: Any = None  # where the last item of the streamed list began
    value: object
    while True:
        event = get_event()
        kind = event.__class__
        if kind is ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Unusual
            scalar = event.value
            plain = event.implicit[0]
            if is_map:
                if key is None:
                    if (plain and scalar == "<<") or scalar in container.key_lines:
                        raise _Unusual
                    key, key_line = scalar, event.start_mark.line + 1
                    continue
                if skimmed is not None and container is skimmed and key not in keeps:
                    skimmed.key_lines[key] = key_line
                    key = None
                    continue
            else:  # a value in a map is placed at its key's line; an item at its own
                line = event.start_mark.line + 1
            if plain:
                try:
                    value = resolved[scalar]
                except KeyError:
                    tag = resolve(ScalarNode, scalar, (True, False))  # type: ignore[no-untyped-call]
                    if tag == _STR_TAG:
                        value = scalar
                    elif tag in _PLAIN_TAGS:
                        try:
                            node = ScalarNode(tag, scalar)
                            value = constructors[tag](loader, node)
                        except (yaml.YAMLError, ValueError, TypeError):
                            raise _Unusual from None
                    else:
                        raise _Unusual from None
                    resolved[scalar] = value
            else:
                value = scalar
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or event.tag is not None or (is_map and key is None):
                raise _Unusual
            if skimmed is not None and container is skimmed and key not in keeps:
                assert key is not None  # a value in a mapping comes after its key
                _skip_collection(get_event)
                skimmed.key_lines[key] = key_line
                key = None
                continue
            if container is streamed:
                item_mark = event.start_mark
            line = event.start_mark.line + 1
            stack.append((container, is_map, key, key_line, line))
            if kind is MappingStartEvent:
                inner = YamlMap(line)
                if skimmed is not None and container is skimmed:
                    assert key is not None
                    nested = keeps[key]
                    if nested is not None:
                        outer.append((skimmed, keeps))
                        skimmed, keeps = inner, nested
                container, is_map = inner, True
            elif len(stack) == 2 and is_map and key is not None and key in stream and not take:
                streamed = container = StreamedList(line)
                items = stream[key]
                take, streamed_key, is_map = items.take, key, False
                passes_over, item_keeps = items.passes_over, items.keeps
            else:
                container, is_map = YamlList(line), False
            key = None
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = container
            if skimmed is not None and container is skimmed:
                if outer:
                    skimmed, keeps = outer.pop()
                else:
                    start = item_mark.index
                    skimmed.passage = Passage(text, start, event.end_mark.index,
                                              item_mark.line, item_mark.column)  # fmt: skip
                    skimmed = None
            container, is_map, key, key_line, line = stack.pop()
        elif kind is DocumentEndEvent:
            break
        else:  # an alias
            raise _Unusual
        if container is None:
            root = value
        elif is_map:
            container[key] = value
            container.key_lines[key] = key_line
            if (
                key == "id"
                and passes_over is not None
                and len(container) == 1
                and stack[-1][0] is streamed
                and value.__class__ is str
                and passes_over(value)
            ):
                skimmed, keeps = container, item_keeps
            key = None
        elif container is streamed:
            assert take is not None
            take(value, line, item_key(streamed_key, taken))
            taken += 1
        else:
            container.append(value)
            container.item_lines.append(line)
    if get_event().__class__ is not StreamEndEvent:
        raise _Unusual  # a second document: the full reading refuses it
    return root


def _skip_collection(get_event: Callable[[], Any]) -> None:
    """Parse past the collection just opened, building nothing; what the fast reading leaves
    to the full one (an anchor, a tag, an alias) is as unusual here as anywhere."""
    depth = 1
    while depth:
        event = get_event()
        kind = event.__class__
        if kind is MappingEndEvent or kind is SequenceEndEvent:
            depth -= 1
        elif kind is ScalarEvent or kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Unusual
            if kind is not ScalarEvent:
                depth += 1
        else:  # an alias
            raise _Unusual
