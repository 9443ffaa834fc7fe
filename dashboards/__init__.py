"""The stack generator: dashboards, rules and every config of the monitoring stack, from Python.

Rooms, by what you came to change:

- ``config``: the one typed configuration object (YAML overrides it); every selector, job, threshold and
  feature switch lives there and nowhere else;
- ``catalogs``: what the service really exposes (its metrics, Keycloak's, its log fields and stream labels);
- ``queries``: PromQL, LogQL and SQL as pure functions of the config;
- ``grafana``: the house panel layer, the four dashboards and Grafana's provisioning;
- ``stack``: the other artifacts (Prometheus and its rules, Alertmanager, Loki, Alloy, docker-compose,
  PostgreSQL init, the Keycloak demo realm);
- ``validate``: every check the build runs before it writes (PromQL, LogQL, SQL, panels, rules, Alloy),
  and the live check against running datasources;
- ``build``, ``registry``, ``serialise``: the CLI, the list of artifacts, the one serialiser.
"""
