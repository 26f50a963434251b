"""Deciding each site's state: the pipeline, the evaluator, the maintenance overlay and the
windows it applies, the poll scheduler, and the live snapshot the HTTP thread reads.
Imports `probes` (observations), `config`, `core`; never SQLite or Prometheus."""
