"""`./dev demo`: the shipped district brought to life by `districtmon simulate`, watched by the
daemon, scraped by a real Prometheus with the shipped rules, whose alerts a real Alertmanager
routes with the shipped routing to a local receiver that writes every notification down.

A developer tool, not part of the installed package: it runs from a checkout
(`python -m monitor.simulator.demo`), reads the shipped files of config/ and writes only under var/.
"""
