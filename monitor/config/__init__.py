"""Reading and validating the configuration directory: settings, inventory, probe sections,
credentials, SNMP profiles, MQTT settings and telemetry mappings, maintenance windows, shards.
A configuration is taken whole or refused whole (load.py). Imports only `core`."""
