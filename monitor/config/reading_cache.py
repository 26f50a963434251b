"""What each inventory file read to, kept on disk between loads, as Python keeps .pyc files.

Reading a province is the most of a load's time (100,000 sites: about 10 s of CPU, 4 of them
the YAML parser's alone), and most loads read files that have not changed since the last:
a restart, a reload after one file was edited, every shard of the same inventory. A file
whose bytes, path and reading code are those of a kept reading is not read again: its
entries are taken from the kept one. Only readings without a problem are kept, so that a
file with a mistake is read, and its mistake said, at every load, in the same words.

A kept reading is pickled: whoever can write the cache's directory can make the daemon run
code of their choosing, as whoever can write its ledger's directory can make it lie. The
directory is made for the daemon's user alone (0700, next to the ledger), and a file there
owned by another user, or writable by others, is not read. Anything wrong with the cache (a
full disk, a directory it may not write, a file cut short) only costs the reading it would
have saved: a load never fails for it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from monitor.config import pickled
from monitor.config.located import read_bounded
from monitor.config.problems import YamlReadError

#: The cache's directory, beside the ledger (the daemon's state).
DIRECTORY_NAME = "inventory-cache"
_SUFFIX = ".reading"


@functools.cache
def _code_version() -> bytes:
    """A digest of the code a reading depends on (the configuration's and the model's
    modules) and of the interpreter: a kept reading is the reading of this code, or none."""
    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).resolve().parents[1]
    for folder in ("config", "core"):
        for source in sorted((package / folder).glob("*.py")):
            digest.update(source.name.encode())
            digest.update(source.read_bytes())
    return digest.digest()


class ReadingCache:
    """Readings of inventory files by their bytes, path and reading code; with another
    `suffix`, other readings of the inventory under keys of their own (checked_inventory.py)."""

    def __init__(
        self, directory: Path, by_fields: tuple[type[Any], ...] = (), suffix: str = _SUFFIX
    ) -> None:
        self.directory = directory
        self.by_fields = by_fields  # the readings' own dataclasses (see pickled.dumps)
        self.suffix = suffix

    def key(self, path: Path) -> str | None:
        """The key of `path`'s reading as it stands now; None when it cannot be read (the
        reading that follows says why)."""
        found = self.read(path)
        return None if found is None else found[0]

    def read(self, path: Path) -> tuple[str, bytes] | None:
        """`path`'s bytes as they are now (read as any configuration file is: at most the
        limit of one), and the key of their reading: a reading made of other bytes than
        those its key was taken of would be taken for theirs at a later load. None when the
        file cannot be read (the reading that follows says why)."""
        try:
            data = read_bounded(path)
        except YamlReadError:
            return None
        digest = hashlib.sha256(_code_version())
        digest.update(os.fsencode(path))
        digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest(), data

    def get(self, key: str) -> object | None:
        """The reading kept under `key`, or None: none kept, or none to trust."""
        path = self.directory / (key + self.suffix)
        try:
            with path.open("rb") as file:
                status = os.fstat(file.fileno())
                if status.st_uid != os.getuid() or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                    return None
                try:
                    reading: object = pickled.load(file)
                    return reading
                except OSError:
                    raise
                except Exception:  # cut short, or from another build: as if never kept
                    pass
        except OSError:
            return None
        with contextlib.suppress(OSError):
            path.unlink()
        return None

    def put(self, key: str, reading: object) -> None:
        """Keep `reading` under `key`, whole or not at all (written aside, then renamed)."""
        try:
            data = pickled.dumps(reading, self.by_fields)
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".part")
            try:
                with os.fdopen(handle, "wb") as file:  # mkstemp makes it 0600
                    file.write(data)
                os.replace(name, self.directory / (key + self.suffix))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(name)
                raise
        except Exception:  # a disk full or forbidden, or a reading pickle refuses: unkept
            return

    def keep_only(self, keys: Collection[str]) -> None:
        """Forget the readings of files as they no longer are: each edit leaves one. A key
        `k` keeps the readings under `k` and under `k.<anything>` (the checks of each shard
        of one inventory, checked_inventory.py), of this cache's suffix only."""
        try:
            kept = list(self.directory.glob("*" + self.suffix))
        except OSError:
            return
        wanted = set(keys)
        for path in kept:
            if path.name.split(".", 1)[0] not in wanted:
                with contextlib.suppress(OSError):
                    path.unlink()
