"""The running daemon: wiring every layer together (daemon.py), reloads and stops, and the
systemd notify protocol. Imports every layer below; never the simulator."""
