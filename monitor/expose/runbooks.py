"""The alert runbooks, served by the daemon that raised the alerts.

Every alert rule links to `http://<the daemon's listener>/runbooks/<alertname>`, so a page
points at an address that exists wherever the daemon is installed, whatever the network.
The text is config/prometheus/runbooks.md, shipped inside the package (the file in the
package is a link to that one, resolved when the wheel is built), one `## AlertName` section
per alert.

It is served as written, each section in a `<pre>`: markdown is readable as plain text, and
rendering it would mean a parser (a dependency, or one of our own) for a page of lists and
bold words. A section's anchor is its alert name lower-cased, as the links always were.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from importlib import resources

PACKAGED = "runbooks.md"
_SECTION = re.compile(r"^## (\S+)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Section:
    alert: str  # as the rules name it: BtsDown
    text: str  # the section as written, its heading included

    @property
    def anchor(self) -> str:
        return self.alert.lower()


@dataclass(frozen=True, slots=True)
class Runbooks:
    """The runbooks split at their `## AlertName` headings: what comes before the first is
    the introduction."""

    intro: str
    sections: tuple[Section, ...]

    @classmethod
    def parse(cls, text: str) -> Runbooks:
        starts = [m.start() for m in _SECTION.finditer(text)]
        names = _SECTION.findall(text)
        ends = [*starts[1:], len(text)]
        sections = tuple(
            Section(name, text[start:end].strip("\n"))
            for name, start, end in zip(names, starts, ends, strict=True)
        )
        intro = text[: starts[0]] if starts else text
        return cls(intro.strip("\n"), sections)

    def find(self, alert: str) -> Section | None:
        """The section of an alert, its name in any case (links say `btsdown`)."""
        wanted = alert.lower()
        return next((s for s in self.sections if s.anchor == wanted), None)

    def html(self) -> str:
        index = "\n".join(
            f'<li><a href="#{s.anchor}">{html.escape(s.alert)}</a></li>' for s in self.sections
        )
        sections = "\n".join(
            f'<section id="{s.anchor}"><pre>{html.escape(s.text)}</pre></section>'
            for s in self.sections
        )
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>districtmon runbooks</title>
<style>
body {{ font-family: sans-serif; margin: 1em auto; max-width: 60em; padding: 0 1em; }}
pre {{ white-space: pre-wrap; font-size: 0.95em; line-height: 1.35; }}
section {{ border-top: 1px solid #ccc; padding-top: 0.5em; }}
section:target {{ background: #fff8dc; }}
ul {{ columns: 3; }}
</style>
</head>
<body>
<pre>{html.escape(self.intro)}</pre>
<ul>
{index}
</ul>
{sections}
</body>
</html>
"""


def load_packaged() -> Runbooks | None:
    """The runbooks installed with the package; None when the file is missing (a broken
    install: the daemon still monitors, /runbooks says what is missing)."""
    try:
        text = resources.files("monitor.expose").joinpath(PACKAGED).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return Runbooks.parse(text)
