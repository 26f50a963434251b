"""districtmon: watches a district's base stations, broadcast sites and agency networks."""

__version__ = "0.1.0"
