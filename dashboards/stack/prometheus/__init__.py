"""Prometheus, rules and Alertmanager as code: ``prometheus/`` is generated from this package.

- ``scrape``: prometheus.yml and its remote_write (Mimir/Thanos) variant;
- ``recording``: recording rules for what dashboards query often;
- ``slo``: burn-rate window table, its scaling math, SLO specs -> recording rules and alerts;
- ``alerts``: target, app, Keycloak and audit alerts, each with its promtool cases;
- ``rules``: the typed rule model, the runbook pass and the promtool test renderer;
- ``check``: the build's validator (PromQL parsed and checked against the catalogs);
- ``alertmanager``: routing by severity, inhibition, webhook receivers;
- ``artifacts``: registers every file with the registry (listed in ``dashboards.build.GENERATORS``).
"""
