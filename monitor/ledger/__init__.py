"""The uptime ledger in SQLite: schema and migrations, the writer task, records, rollups,
windows stored from the command line, and the read side (views, recent availability).
The only layer that knows SQLite. Imports `state`, `probes`, `config`, `core`."""
