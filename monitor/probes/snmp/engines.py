"""The SNMP client engine named in districtmon.yaml (`snmp.engine`), made on demand.

Apart from engine.py, the interface both engines implement, so that neither engine imports the
place that chooses between them: each engine's library is imported only when it is chosen.
"""

from __future__ import annotations

from monitor.config.settings import SNMP_ENGINES
from monitor.probes.snmp.engine import SnmpEngine


def create_engine(name: str) -> SnmpEngine:
    """The engine named in districtmon.yaml (`snmp.engine`)."""
    if name == "gufo":
        from monitor.probes.snmp.gufo_engine import GufoEngine

        return GufoEngine()
    if name == "pysnmp":
        from monitor.probes.snmp.pysnmp_engine import PysnmpEngine

        return PysnmpEngine()
    raise ValueError(f"unknown SNMP engine {name!r} (expected one of: {', '.join(SNMP_ENGINES)})")
