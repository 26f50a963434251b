"""The `districtmon` command line: run, check-config, report, maintenance, and `simulate`,
whose module is imported only when that command runs."""
