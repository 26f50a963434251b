"""What the daemon serves over HTTP: /metrics (the fast per-site renderer and the collectors
of self, device, availability, trap and MQTT series), /healthz, the JSON API and the alert
runbooks (/runbooks). The only layer that knows prometheus_client; it reads the live
snapshot and ledger figures, never polls. Imports `ledger` and below."""
