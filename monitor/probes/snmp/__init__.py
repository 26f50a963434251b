"""SNMP: the poller, the engine interface and its two engines (gufo_snmp, pysnmp), value
decoding, counters, health rules, and the trap receiver and its routing."""
