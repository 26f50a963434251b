"""Pushed telemetry: the broker connection, message ingest, heartbeat silence, and the counts
the exposition renders."""
