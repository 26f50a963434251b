"""Asking sites how they are: SNMP (snmp/), ICMP, TCP, HTTP and DNS (reach/), pushed MQTT
telemetry (mqtt/). Probes return observations and plain counts; they know nothing of
Prometheus or SQLite, and the three kinds never import one another. Imports `config`, `core`."""
