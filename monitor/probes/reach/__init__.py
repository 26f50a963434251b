"""What speaks no SNMP: ICMP echo, TCP connect, HTTP(S) and DNS probes."""
