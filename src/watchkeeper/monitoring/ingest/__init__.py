"""Alert ingestion: other monitoring tools (Prometheus Alertmanager, Zabbix, Uptime Kuma, any
JSON sender) post their alerts here with a per-source token scoped to one client; each alert
enters the same alert table, deduplicated by key (docs/monitoring.md, "Alerts from other
tools")."""
