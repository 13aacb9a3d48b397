"""Outbox subscriptions of the monitoring app (imported by MonitoringConfig.ready)."""
