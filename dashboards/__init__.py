"""Dashboards-as-code: Grafana dashboards, provisioning and their validation, generated from Python."""
