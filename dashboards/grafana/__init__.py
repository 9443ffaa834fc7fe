"""Grafana: the house panel layer over grafanalib, the four dashboards, provisioning, and their registration."""
