"""A simulated district: SNMP agents, MQTT publishers, scenarios and live faults on loopback.

`districtmon simulate` brings an inventory to life so that the demo, the tests and the
benchmarks share one faithful source of traffic. The parts, each with one job:

- `clock`: simulated time (wall clock at start, then `--speed` times faster);
- `world`: the physics of the district (power, batteries, links, faults) and the events it
  raises; it knows nothing of SNMP or MQTT;
- `actions`: the fault vocabulary shared by scenarios and the live control;
- `mib`: what each kind of site answers over SNMP (the OID map is in monitor/simulator/README.md);
- `agent`: the SNMP responder (pysnmp's protocol modules over raw UDP sockets);
- `traps`: SNMPv2c notifications sent at the moment of a fault (pysnmp's originator);
- `mqtt`: heartbeats, telemetry and last wills of the sites that report over MQTT; `relay`:
  the broker path that a broker outage cuts;
- `services` (TCP and HTTP listeners), `nameserver` (DNS) and `icmpcut` (pings dropped by an
  nftables table): the sites that are only connected to, asked or pinged, following the world;
- `truth`: the ground truth the world records as it changes (what tests compare with);
- `scenario`: YAML timelines; `control`: the HTTP control and its CLI client;
- `run`: wires them together.
"""
