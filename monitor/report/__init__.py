"""Availability reports read from one ledger or several: built (build.py) and rendered as a
table, CSV or JSON (render.py). Imports `ledger` and below."""
