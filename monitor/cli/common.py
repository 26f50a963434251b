"""What the commands share: how they find the configuration and how they fail."""

from __future__ import annotations

import argparse
import sys

from monitor.config.load import Config, find_config_dir, load_config
from monitor.config.problems import ConfigError

CONFIG_HELP = "configuration directory (default: ./config, then /etc/districtmon)"


def fail(message: str) -> int:
    print(f"districtmon: {message}", file=sys.stderr)
    return 2


def config_or_none(args: argparse.Namespace, needed: bool) -> Config | None:
    """The configuration when it is asked for or needed; ConfigError propagates only then."""
    try:
        return load_config(find_config_dir(args.config))
    except ConfigError:
        if needed or args.config is not None:
            raise
        return None
