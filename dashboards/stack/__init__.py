"""The stack's configs besides Grafana: Prometheus, rules and Alertmanager; Loki; Alloy; docker-compose;
the PostgreSQL init script; the Keycloak demo realm. Each module registers its artifacts with the build."""
