"""Grafana dashboards as code: the district wall, per-site, drill and ingest-health dashboards."""
