"""The model every layer shares (sites, observations, states, transitions), the availability
arithmetic, and the small helpers any layer may use: words for kinds of values, rate-limited
logging, the log format. Imports nothing of districtmon."""
