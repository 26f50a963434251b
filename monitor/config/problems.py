"""What is wrong with a configuration, placed so that an operator can go and fix it.

A configuration is taken whole or refused whole. Every reader appends `ConfigProblem`s (file,
line, key path, message) and goes on; whoever loads the whole raises one `ConfigError` holding
all of them, in the order someone would walk through the files to fix them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


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


class ConfigError(Exception):
    """The configuration is refused; `problems` lists every reason, in file and line order."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=ConfigProblem.sort_key)
        super().__init__(*self.problems)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)

    def refusal(self, what: str) -> str:
        """`<what> refused (N problems):` and one indented line per problem, for a terminal."""
        lines = [f"{what} refused ({len(self.problems)} problems):"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)
